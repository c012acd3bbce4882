package tp

import (
	"reflect"
	"unsafe"
)

// Calling handlers without reflect.Value.Call.
//
// reflect.Value.Call looks the function's frame layout up in a cache keyed
// by type on every call, and the lookup's hashing (plus the deeper stack
// it needs, which goroutines regrow after each GC shrinks them) was ~20%
// of a server's CPU on the benchmark with 1000 callers. For the common
// shapes the router calls the handler directly instead: it views the
// function value as a function whose parameters and results have the same
// machine representation, pointers in place of pointers. Go passes a *T
// and an unsafe.Pointer identically (one pointer register or slot, traced
// by the GC alike), so the call is the same call. Shapes with a result
// that is not an unnamed pointer (a struct, a []byte, a named pointer
// type) keep the reflect path.

// Function views of the handler shapes. First is what comes before the
// argument: the context interface for a handler function, the receiver
// (as an unsafe.Pointer) for a method.
type (
	callView[First any]    func(First, unsafe.Pointer) (unsafe.Pointer, *Status)
	callErrView[First any] func(First, unsafe.Pointer) (unsafe.Pointer, error)
	pushView[First any]    func(First, unsafe.Pointer) *Status
	pushErrView[First any] func(First, unsafe.Pointer) error
)

// as views the function value fn (of a func type) as an F.
func as[F any](fn reflect.Value) F {
	v := fn.Interface()
	words := (*[2]unsafe.Pointer)(unsafe.Pointer(&v)) // type, func value
	return *(*F)(unsafe.Pointer(&words[1]))
}

// direct returns a function calling fn, of a direct shape, on its first
// parameter and the argument; nil when fn's result is not an unnamed
// pointer, which the reflect path must call.
func direct[First any](fn reflect.Value, isCall, errResult bool) func(First, unsafe.Pointer) (any, *Status) {
	ft := fn.Type()
	if !isCall {
		if errResult {
			f := as[pushErrView[First]](fn)
			return func(first First, arg unsafe.Pointer) (any, *Status) { return nil, errStatus(f(first, arg)) }
		}
		f := as[pushView[First]](fn)
		return func(first First, arg unsafe.Pointer) (any, *Status) { return nil, f(first, arg) }
	}
	r := ft.Out(0)
	if r.Kind() != reflect.Pointer || r.Name() != "" {
		return nil
	}
	elem := r.Elem()
	if errResult {
		f := as[callErrView[First]](fn)
		return func(first First, arg unsafe.Pointer) (any, *Status) {
			p, err := f(first, arg)
			return callResults(elem, p, errStatus(err))
		}
	}
	f := as[callView[First]](fn)
	return func(first First, arg unsafe.Pointer) (any, *Status) {
		p, st := f(first, arg)
		return callResults(elem, p, st)
	}
}

// directFunc returns an invoke for a handler function of a direct shape,
// or nil.
func directFunc(fn reflect.Value, isCall, errResult bool) func(*handlerCtx, reflect.Value) (any, *Status) {
	if isCall {
		if call := direct[CallCtx](fn, isCall, errResult); call != nil {
			return func(c *handlerCtx, arg reflect.Value) (any, *Status) { return call(CallCtx(c), arg.UnsafePointer()) }
		}
		return nil
	}
	push := direct[PushCtx](fn, isCall, errResult)
	return func(c *handlerCtx, arg reflect.Value) (any, *Status) { return push(PushCtx(c), arg.UnsafePointer()) }
}

// directMethod returns a function calling a handler method of a direct
// shape on a receiver and an argument, or nil.
func directMethod(fn reflect.Value, isCall, errResult bool) func(recv, arg unsafe.Pointer) (any, *Status) {
	return direct[unsafe.Pointer](fn, isCall, errResult)
}

// callResults is results' direct counterpart: a failed call has no body,
// and a pointer result becomes its typed value again.
func callResults(elem reflect.Type, p unsafe.Pointer, st *Status) (any, *Status) {
	if !st.OK() {
		return nil, st
	}
	return reflect.NewAt(elem, p).Interface(), st
}

func errStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return toStatus(err)
}
