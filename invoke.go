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

// Function views for each handler shape: a handler function gets the
// context interface first, a method its receiver.
type (
	callFunc     func(CallCtx, unsafe.Pointer) (unsafe.Pointer, *Status)
	callFuncErr  func(CallCtx, unsafe.Pointer) (unsafe.Pointer, error)
	pushFunc     func(PushCtx, unsafe.Pointer) *Status
	pushFuncErr  func(PushCtx, unsafe.Pointer) error
	callMethod   func(unsafe.Pointer, unsafe.Pointer) (unsafe.Pointer, *Status)
	callMethodEr func(unsafe.Pointer, unsafe.Pointer) (unsafe.Pointer, error)
	pushMethod   func(unsafe.Pointer, unsafe.Pointer) *Status
	pushMethodEr func(unsafe.Pointer, unsafe.Pointer) error
)

// as views the function value fn (of a func type) as an F.
func as[F any](fn reflect.Value) F {
	v := fn.Interface()
	words := (*[2]unsafe.Pointer)(unsafe.Pointer(&v)) // type, func value
	return *(*F)(unsafe.Pointer(&words[1]))
}

// directResult reports whether a handler's result type lets it be called
// directly: an unnamed pointer, so the returned word is that pointer.
func directResult(ft reflect.Type, isCall bool) bool {
	if !isCall {
		return true
	}
	r := ft.Out(0)
	return r.Kind() == reflect.Pointer && r.Name() == ""
}

// result turns the pointer a handler returned back into its typed value.
func result(elem reflect.Type, p unsafe.Pointer) any {
	return reflect.NewAt(elem, p).Interface()
}

// directFunc returns an invoke for a handler function of a direct shape,
// or nil.
func directFunc(fn reflect.Value, isCall, errResult bool) func(*handlerCtx, reflect.Value) (any, *Status) {
	ft := fn.Type()
	if !directResult(ft, isCall) {
		return nil
	}
	switch {
	case isCall && !errResult:
		f, elem := as[callFunc](fn), ft.Out(0).Elem()
		return func(c *handlerCtx, arg reflect.Value) (any, *Status) {
			r, st := f(c.asCall, arg.UnsafePointer())
			return callResults(elem, r, st)
		}
	case isCall:
		f, elem := as[callFuncErr](fn), ft.Out(0).Elem()
		return func(c *handlerCtx, arg reflect.Value) (any, *Status) {
			r, err := f(c.asCall, arg.UnsafePointer())
			return callResults(elem, r, errStatus(err))
		}
	case !errResult:
		f := as[pushFunc](fn)
		return func(c *handlerCtx, arg reflect.Value) (any, *Status) {
			return nil, f(c.asPush, arg.UnsafePointer())
		}
	default:
		f := as[pushFuncErr](fn)
		return func(c *handlerCtx, arg reflect.Value) (any, *Status) {
			return nil, errStatus(f(c.asPush, arg.UnsafePointer()))
		}
	}
}

// directMethod returns a function calling a handler method of a direct
// shape on a receiver and an argument, or nil.
func directMethod(fn reflect.Value, isCall, errResult bool) func(recv, arg unsafe.Pointer) (any, *Status) {
	ft := fn.Type()
	if !directResult(ft, isCall) {
		return nil
	}
	switch {
	case isCall && !errResult:
		f, elem := as[callMethod](fn), ft.Out(0).Elem()
		return func(recv, arg unsafe.Pointer) (any, *Status) {
			r, st := f(recv, arg)
			return callResults(elem, r, st)
		}
	case isCall:
		f, elem := as[callMethodEr](fn), ft.Out(0).Elem()
		return func(recv, arg unsafe.Pointer) (any, *Status) {
			r, err := f(recv, arg)
			return callResults(elem, r, errStatus(err))
		}
	case !errResult:
		f := as[pushMethod](fn)
		return func(recv, arg unsafe.Pointer) (any, *Status) { return nil, f(recv, arg) }
	default:
		f := as[pushMethodEr](fn)
		return func(recv, arg unsafe.Pointer) (any, *Status) { return nil, errStatus(f(recv, arg)) }
	}
}

// callResults is results' direct counterpart: a failed call has no body.
func callResults(elem reflect.Type, r unsafe.Pointer, st *Status) (any, *Status) {
	if !st.OK() {
		return nil, st
	}
	return result(elem, r), st
}

func errStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return toStatus(err)
}
