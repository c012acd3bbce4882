// Package binder fills handler arguments from meta and session values,
// and validates them from struct tags, before the handler runs.
//
//	type Signup struct {
//		Name  string `validate:"required,min=3"`
//		Age   int    `validate:"gte=18"`
//		Lang  string `bind:"meta:lang"`                        // from the message's meta
//		User  string `bind:"session:user" validate:"required"` // from b.Value("user")
//	}
//
//	b := binder.New()
//	srv, err := tp.NewPeer(cfg, b)
//	// in an auth hook: b.Value("user").Set(sess, "alice")
//
// Rules are github.com/go-playground/validator/v10's; Validator returns the
// instance for custom rules. A value that breaks a rule is answered with
// CodeInvalidArgument naming the field and the rule, and the handler is
// never called (a PUSH is dropped). Bound values are set first, so rules
// apply to them too; a bound field never keeps what the client put in the
// body: a source with no value leaves it zero, and "required" fails. The plugin works on arguments that are structs;
// others pass through untouched. Add it to the peer, or to one route group
// (SubRoute, RouteCall) to cover only those routes.
package binder

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
	"github.com/seed-a9a850dd/tp"
)

// Plugin is the plugin.
type Plugin struct {
	validate *validator.Validate
	plans    sync.Map // reflect.Type of the argument struct -> *plan
	values   sync.Map // name -> *tp.Key[any]: see Value
}

// Value is the session value that fields tagged bind:"session:name" are
// filled from: set it per session with Value(name).Set(sess, v). The value
// is assigned to the field if its type fits, or parsed if it is a string.
func (b *Plugin) Value(name string) *tp.Key[any] {
	k, _ := b.values.LoadOrStore(name, tp.NewKey[any]("binder "+name))
	return k.(*tp.Key[any])
}

var (
	_ tp.PostRegPlugin          = (*Plugin)(nil)
	_ tp.PostReadCallBodyPlugin = (*Plugin)(nil)
	_ tp.PostReadPushBodyPlugin = (*Plugin)(nil)
)

// New returns the plugin.
func New() *Plugin {
	return &Plugin{validate: validator.New(validator.WithRequiredStructEnabled())}
}

// Name implements tp.Plugin.
func (b *Plugin) Name() string { return "binder" }

// Validator returns the validator, to register custom rules on before
// serving.
func (b *Plugin) Validator() *validator.Validate { return b.validate }

// plan is what registration learned about one argument type.
type plan struct {
	binds    []bind
	validate bool // some field has a validate tag
}

type bind struct {
	index  int
	name   string // the Go field name, for errors
	source string // "meta" or "session"
	key    string
	set    func(field reflect.Value, s string) error // for text from meta
}

// PostReg learns the argument type of a route, so serving does no tag
// parsing. A malformed bind tag fails the registration.
func (b *Plugin) PostReg(h *tp.Handler) error {
	t := h.ArgType()
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	if _, ok := b.plans.Load(t); ok {
		return nil
	}
	p := &plan{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("validate"); ok {
			p.validate = true
		}
		tag, ok := f.Tag.Lookup("bind")
		if !ok {
			continue
		}
		source, key, found := strings.Cut(tag, ":")
		if !found || key == "" || (source != "meta" && source != "session") || !f.IsExported() {
			return tp.NewStatus(tp.CodeInvalidArgument, fmt.Sprintf("binder: field %s.%s: bind tag %q: want an exported field and \"meta:key\" or \"session:name\"", t, f.Name, tag), nil)
		}
		set := setter(f.Type)
		if set == nil && source == "meta" {
			return tp.NewStatus(tp.CodeInvalidArgument, fmt.Sprintf("binder: field %s.%s: meta is text; bind it to a string, bool or number field, not %s", t, f.Name, f.Type), nil)
		}
		p.binds = append(p.binds, bind{index: i, name: f.Name, source: source, key: key, set: set})
	}
	if !p.validate {
		// Nested structs may carry rules: validating costs little when
		// none apply, so check whenever any field is a struct.
		for i := 0; i < t.NumField(); i++ {
			if k := t.Field(i).Type.Kind(); k == reflect.Struct || k == reflect.Pointer {
				p.validate = true
			}
		}
	}
	if len(p.binds) > 0 || p.validate {
		b.plans.Store(t, p)
	}
	return nil
}

// PostReadCallBody binds and validates a CALL's argument.
func (b *Plugin) PostReadCallBody(c tp.ReadCtx) error { return b.apply(c) }

// PostReadPushBody binds and validates a PUSH's argument.
func (b *Plugin) PostReadPushBody(c tp.ReadCtx) error { return b.apply(c) }

func (b *Plugin) apply(c tp.ReadCtx) *tp.Status {
	body := c.Body()
	if body == nil {
		return nil
	}
	v := reflect.ValueOf(body)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	pl, ok := b.plans.Load(v.Elem().Type())
	if !ok {
		return nil
	}
	p := pl.(*plan)
	for _, bd := range p.binds {
		if st := bd.apply(b, c, v.Elem().Field(bd.index)); st != nil {
			return st
		}
	}
	if !p.validate {
		return nil
	}
	err := b.validate.Struct(body)
	var errs validator.ValidationErrors
	if errors.As(err, &errs) && len(errs) > 0 {
		fe := errs[0]
		field := fe.StructNamespace()
		if _, rest, ok := strings.Cut(field, "."); ok {
			field = rest // drop the type's name
		}
		rule := fe.Tag()
		if fe.Param() != "" {
			rule += "=" + fe.Param()
		}
		msg := fmt.Sprintf("field %s breaks rule %q", field, rule)
		if len(errs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
		}
		return tp.NewStatus(tp.CodeInvalidArgument, msg, nil)
	}
	if err != nil {
		return tp.NewStatus(tp.CodeInternal, "binder: cannot validate the argument", err)
	}
	return nil
}

// apply sets a bound field from its source. The field's value from the
// body never survives: a client must not fill what the server binds, so a
// source with no value zeroes the field (and "required" then fails).
func (bd *bind) apply(b *Plugin, c tp.ReadCtx, field reflect.Value) *tp.Status {
	field.Set(reflect.Zero(field.Type()))
	if bd.source == "meta" {
		s := c.Input().Meta.Get(bd.key)
		if s == "" {
			return nil
		}
		if err := bd.set(field, s); err != nil {
			return tp.NewStatus(tp.CodeInvalidArgument, fmt.Sprintf("meta %q for field %s: %v", bd.key, bd.name, err), nil)
		}
		return nil
	}
	x, ok := b.Value(bd.key).Get(c.Session())
	if !ok || x == nil {
		return nil
	}
	xv := reflect.ValueOf(x)
	switch {
	case xv.Type().AssignableTo(field.Type()):
		field.Set(xv)
	case xv.Kind() == reflect.String && bd.set != nil:
		if err := bd.set(field, xv.String()); err != nil {
			return tp.NewStatus(tp.CodeInternal, fmt.Sprintf("binder: session value %q for field %s: %v", bd.key, bd.name, err), nil)
		}
	default:
		return tp.NewStatus(tp.CodeInternal, fmt.Sprintf("binder: session value %q is a %s; field %s is a %s", bd.key, xv.Type(), bd.name, field.Type()), nil)
	}
	return nil
}

// setter parses text into a field of type t; nil for types text cannot
// fill.
func setter(t reflect.Type) func(reflect.Value, string) error {
	switch t.Kind() {
	case reflect.String:
		return func(v reflect.Value, s string) error { v.SetString(s); return nil }
	case reflect.Bool:
		return func(v reflect.Value, s string) error {
			b, err := strconv.ParseBool(s)
			v.SetBool(b)
			return err
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(v reflect.Value, s string) error {
			n, err := strconv.ParseInt(s, 10, t.Bits())
			v.SetInt(n)
			return err
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return func(v reflect.Value, s string) error {
			n, err := strconv.ParseUint(s, 10, t.Bits())
			v.SetUint(n)
			return err
		}
	case reflect.Float32, reflect.Float64:
		return func(v reflect.Value, s string) error {
			f, err := strconv.ParseFloat(s, t.Bits())
			v.SetFloat(f)
			return err
		}
	}
	return nil
}
