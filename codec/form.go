package codec

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"sync"
)

// FormID is the wire id of the form codec.
const FormID = 'f'

// Form encodes bodies as URL-encoded forms (a=1&b=x). It marshals
// url.Values, map[string]string, map[string][]string and structs (or
// pointers to them), and unmarshals into pointers to the same.
//
// A struct field is named by its form tag, or by its Go name when it has
// none; `form:"-"` skips it, as does `json:"-"` (so the two codecs expose
// the same fields), and unexported fields are skipped. Fields may be
// strings, booleans, integers and floats, or slices of them, which map to a
// repeated key.
type Form struct{}

// ID returns 'f'.
func (Form) ID() byte { return FormID }

// Name returns "form".
func (Form) Name() string { return "form" }

const formWant = "url.Values, map[string]string, map[string][]string or a struct with form tags"

// Marshal appends the form encoding of v to dst. Keys come out sorted.
func (Form) Marshal(dst []byte, v any) ([]byte, error) {
	switch m := v.(type) {
	case url.Values:
		return append(dst, m.Encode()...), nil
	case *url.Values:
		if m != nil {
			dst = append(dst, m.Encode()...)
		}
		return dst, nil
	case map[string][]string:
		return append(dst, url.Values(m).Encode()...), nil
	case map[string]string:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, '&')
			}
			dst = append(dst, url.QueryEscape(k)...)
			dst = append(dst, '=')
			dst = append(dst, url.QueryEscape(m[k])...)
		}
		return dst, nil
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return dst, unsupported("form", "marshal", v, formWant)
	}
	fields, err := formFieldsOf(rv.Type())
	if err != nil {
		return dst, err
	}
	vals := make(url.Values, len(fields))
	for _, f := range fields {
		fv := rv.FieldByIndex(f.index)
		if f.slice {
			for i := 0; i < fv.Len(); i++ {
				vals.Add(f.name, formatScalar(fv.Index(i)))
			}
			continue
		}
		vals.Set(f.name, formatScalar(fv))
	}
	return append(dst, vals.Encode()...), nil
}

// Unmarshal parses form data into v.
func (Form) Unmarshal(data []byte, v any) error {
	vals, err := url.ParseQuery(string(data))
	if err != nil {
		return fmt.Errorf("codec form: unmarshal into %T: %w", v, err)
	}
	switch m := v.(type) {
	case *url.Values:
		if m != nil {
			*m = vals
			return nil
		}
	case *map[string][]string:
		if m != nil {
			*m = vals
			return nil
		}
	case *map[string]string:
		if m != nil {
			out := make(map[string]string, len(vals))
			for k, vs := range vals {
				out[k] = vs[0]
			}
			*m = out
			return nil
		}
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return unsupported("form", "unmarshal", v, "a non-nil pointer to url.Values, a string-keyed map or a struct")
	}
	rv = rv.Elem()
	fields, err := formFieldsOf(rv.Type())
	if err != nil {
		return err
	}
	for _, f := range fields {
		vs, ok := vals[f.name]
		if !ok {
			continue
		}
		fv := rv.FieldByIndex(f.index)
		if f.slice {
			s := reflect.MakeSlice(fv.Type(), len(vs), len(vs))
			for i, x := range vs {
				if err := parseScalar(s.Index(i), x); err != nil {
					return fmt.Errorf("codec form: field %s: %w", f.name, err)
				}
			}
			fv.Set(s)
			continue
		}
		if err := parseScalar(fv, vs[0]); err != nil {
			return fmt.Errorf("codec form: field %s: %w", f.name, err)
		}
	}
	return nil
}

type formField struct {
	name  string
	index []int
	slice bool
}

var formCache sync.Map // reflect.Type -> []formField or error

func formFieldsOf(t reflect.Type) ([]formField, error) {
	if c, ok := formCache.Load(t); ok {
		if err, bad := c.(error); bad {
			return nil, err
		}
		return c.([]formField), nil
	}
	var fields []formField
	var err error
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name := sf.Tag.Get("form")
		if name == "-" || sf.Tag.Get("json") == "-" {
			// A field JSON leaves out is left out here too: a caller
			// choosing the form codec must not reach what JSON guards.
			continue
		}
		if name == "" {
			name = sf.Name
		}
		ft, slice := sf.Type, false
		if ft.Kind() == reflect.Slice {
			ft, slice = ft.Elem(), true
		}
		if !isScalar(ft.Kind()) {
			err = fmt.Errorf("codec form: field %s.%s has type %s: want a string, bool, number or a slice of them, or tag it `form:\"-\"`", t, sf.Name, sf.Type)
			break
		}
		fields = append(fields, formField{name: name, index: sf.Index, slice: slice})
	}
	if err != nil {
		formCache.Store(t, err)
		return nil, err
	}
	formCache.Store(t, fields)
	return fields, nil
}

func isScalar(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func formatScalar(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	default: // float, as isScalar guarantees
		return strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
	}
}

func parseScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	default:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(f)
	}
	return nil
}
