package tp

import (
	"context"
	"fmt"
	"reflect"
)

// HandleCall registers fn as the CALL handler of name (under r's prefix,
// as RouteCallFunc would name it), with its types checked by the
// compiler. Any function value serves: a generic function's instance, a
// closure, or a method value, which keeps its receiver (a controller's
// state is shared by every call). fn's error may be a *Status (its code
// reaches the caller) or any error (CodeInternal, with its text). It
// returns the route.
func HandleCall[Arg, Res any](r *Router, name string, fn func(CallCtx, *Arg) (Res, error), plugins ...Plugin) string {
	if fn == nil {
		panic(fmt.Sprintf("tp: HandleCall %q with a nil function", name))
	}
	h := &Handler{name: r.join(name), isCall: true, argType: reflect.TypeFor[Arg](), plugins: r.plugins.with(plugins...),
		alloc: allocWithArg[Arg],
		invoke: func(c *handlerCtx, arg reflect.Value) (any, *Status) {
			res, err := fn(c, arg.Interface().(*Arg))
			if st := toStatus(err); !st.OK() {
				return nil, st
			}
			return res, nil
		}}
	r.register(h, false)
	return h.name
}

// HandlePush registers fn as the PUSH handler of name, as HandleCall does
// for CALLs. A PUSH has no reply: fn's error is logged.
func HandlePush[Arg any](r *Router, name string, fn func(PushCtx, *Arg) error, plugins ...Plugin) string {
	if fn == nil {
		panic(fmt.Sprintf("tp: HandlePush %q with a nil function", name))
	}
	h := &Handler{name: r.join(name), argType: reflect.TypeFor[Arg](), plugins: r.plugins.with(plugins...),
		alloc: allocWithArg[Arg],
		invoke: func(c *handlerCtx, arg reflect.Value) (any, *Status) {
			return nil, toStatus(fn(c, arg.Interface().(*Arg)))
		}}
	r.register(h, false)
	return h.name
}

// HandleStream registers fn as the stream handler of name (under r's
// prefix): a stream the other end opens to name runs fn on a goroutine of
// its own, which ends the stream when it returns (a nil error ends it
// cleanly: the opener's Recv returns io.EOF after what fn sent; any other
// reaches the opener as a status). It returns the route.
func HandleStream(r *Router, name string, fn func(StreamCtx, *Stream) error, plugins ...Plugin) string {
	if fn == nil {
		panic(fmt.Sprintf("tp: HandleStream %q with a nil function", name))
	}
	h := &Handler{name: r.join(name), stream: fn, plugins: r.plugins.with(plugins...)}
	r.register(h, false)
	return h.name
}

// Call calls method on sess with arg and returns the reply decoded into a
// new Res, or the call's error: Session.Call with the result's type
// checked by the compiler.
func Call[Res any](ctx context.Context, sess *Session, method string, arg any, settings ...MessageSetting) (Res, error) {
	var res Res
	err := sess.Call(ctx, method, arg, &res, settings...).Err()
	return res, err
}
