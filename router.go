package tp

import (
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
)

// Router maps service methods to handlers. Every Peer has one, reached
// through the Peer's Route methods; SubRoute makes groups that share a
// prefix and plugins. Registration happens before or while serving and is
// safe from any goroutine; it panics on programmer errors, like a
// duplicate route or a struct with no handler methods.
type Router struct {
	table   *routeTable
	prefix  string
	plugins *plugins
}

// routeTable is shared by a router and its groups. Lookups load an
// immutable snapshot; registration copies it.
type routeTable struct {
	mu        sync.Mutex
	routes    atomic.Pointer[routes]
	naming    Naming
	logger    *slog.Logger
	bodyCodec byte // the peer's: what a route accepts by default
}

type routes struct {
	call, push, stream                      map[string]*Handler
	unknownCall, unknownPush, unknownStream *Handler
}

func newRouter(n Naming, p *plugins, logger *slog.Logger, bodyCodec byte) *Router {
	if n.Word == nil {
		n.Word = HTTPNaming.Word
	}
	if n.Join == nil {
		n.Join = HTTPNaming.Join
	}
	t := &routeTable{naming: n, logger: logger, bodyCodec: bodyCodec}
	t.routes.Store(&routes{call: map[string]*Handler{}, push: map[string]*Handler{}, stream: map[string]*Handler{}})
	return &Router{table: t, plugins: p}
}

// Handler is one route: what PostReg plugins see.
type Handler struct {
	name    string
	isCall  bool
	argType reflect.Type // T of the *T argument; nil for unknown handlers
	codecs  []byte       // the body codecs the route accepts: see Codecs
	plugins *plugins
	// invoke runs the handler on a decoded argument; for unknown handlers
	// arg is nil. It returns the reply body and the status.
	invoke func(c *handlerCtx, arg reflect.Value) (any, *Status)
	// stream serves a stream, for a stream route.
	stream func(StreamCtx, *Stream) error
	// alloc, if set, makes a handler context with its argument allocated
	// with it (c.arg set).
	alloc func() *handlerCtx
}

// Codecs returns an option for the Route and Handle functions and for
// SubRoute: those routes take bodies in the codecs with these ids. Without
// it a route takes only the peer's codec (PeerConfig.BodyCodec): a caller
// cannot pick another codec whose rules differ (which fields it fills,
// say). The unknown handlers, which do not decode, take any.
func Codecs(ids ...byte) Plugin { return codecSet(ids) }

type codecSet []byte

func (codecSet) Name() string { return "codecs" }

// Name returns the service method the handler serves, or "" for the
// unknown handlers.
func (h *Handler) Name() string { return h.name }

// IsCall reports whether the handler serves CALLs, rather than PUSHes or
// streams.
func (h *Handler) IsCall() bool { return h.isCall }

// IsStream reports whether the handler serves streams.
func (h *Handler) IsStream() bool { return h.stream != nil }

// ArgType returns T for a handler taking *T; nil for unknown handlers.
func (h *Handler) ArgType() reflect.Type { return h.argType }

// Route returns the route that serves serviceMethod: its CALL route, or
// else its PUSH route; false when only an unknown handler would.
func (r *Router) Route(serviceMethod string) (*Handler, bool) {
	rs := r.table.routes.Load()
	if h, ok := rs.call[serviceMethod]; ok {
		return h, true
	}
	h, ok := rs.push[serviceMethod]
	return h, ok
}

func (t *routeTable) lookup(isCall bool, name string) *Handler {
	r := t.routes.Load()
	if isCall {
		if h, ok := r.call[name]; ok {
			return h
		}
		return r.unknownCall
	}
	if h, ok := r.push[name]; ok {
		return h
	}
	return r.unknownPush
}

func (t *routeTable) lookupStream(name string) *Handler {
	r := t.routes.Load()
	if h, ok := r.stream[name]; ok {
		return h
	}
	return r.unknownStream
}

func (t *routeTable) notFoundStream(name string) *Status {
	return NewStatus(CodeNotFound, fmt.Sprintf("no stream handler for %q", clip(name)), nil)
}

// notFound is the status of a message no route serves: it names the
// nearest route when one is close (a typo, another case, the other naming
// style), so the first hour with a new API is shorter.
func (t *routeTable) notFound(isCall bool, name string) *Status {
	msg := fmt.Sprintf("no %s handler for %q", kind(isCall), name)
	if near := t.nearest(isCall, name); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return NewStatus(CodeNotFound, msg, nil)
}

// nearest returns the route closest to name, or "" when none is close.
// It bounds its own work, since anyone may send unknown names.
func (t *routeTable) nearest(isCall bool, name string) string {
	r := t.routes.Load()
	m := r.call
	if !isCall {
		m = r.push
	}
	if len(name) > 128 || len(m) > 512 {
		return ""
	}
	key := routeKey(name)
	best, bestD := "", max(2, len(key)/4)+1
	for route := range m {
		if d := editDistance(key, routeKey(route), bestD); d < bestD {
			best, bestD = route, d
		}
	}
	return best
}

// routeKey folds what differs between naming styles: case, and the
// separators "/", "." and "_".
func routeKey(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '/' || c == '.' || c == '_':
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// editDistance is the Levenshtein distance of a and b, or limit when it
// is at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

func (t *routeTable) add(h *Handler, unknown bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.routes.Load()
	next := *old
	switch {
	case unknown && h.stream != nil:
		next.unknownStream = h
	case unknown && h.isCall:
		next.unknownCall = h
	case unknown:
		next.unknownPush = h
	default:
		m := &next.call
		switch {
		case h.stream != nil:
			m = &next.stream
		case !h.isCall:
			m = &next.push
		}
		if _, dup := (*m)[h.name]; dup {
			panic(fmt.Sprintf("tp: a %s route for %q is already registered", h.kind(), h.name))
		}
		cp := make(map[string]*Handler, len(*m)+1)
		for k, v := range *m {
			cp[k] = v
		}
		cp[h.name] = h
		*m = cp
	}
	t.routes.Store(&next)
}

func (h *Handler) kind() string {
	if h.stream != nil {
		return "stream"
	}
	return kind(h.isCall)
}

func kind(isCall bool) string {
	if isCall {
		return "CALL"
	}
	return "PUSH"
}

// SubRoute returns a group whose routes are served under prefix and also
// run plugins (for the body and reply stages of their messages).
func (r *Router) SubRoute(prefix string, plugins ...Plugin) *Router {
	return &Router{table: r.table, prefix: r.join(prefix), plugins: r.plugins.with(plugins...)}
}

// join appends a name to the router's prefix, as the peer's Naming joins.
func (r *Router) join(name string) string { return r.table.naming.Join(r.prefix, name) }

// Naming turns Go names into routes: Word maps one identifier (a struct's,
// a method's or a function's name), and Join appends a name to a prefix
// (a SubRoute's, or a struct's route). A nil field takes HTTPNaming's.
type Naming struct {
	Word func(goName string) string
	Join func(prefix, name string) string
}

// HTTPNaming is the default, teleport's: words in snake case, an
// underscore starting a new segment, segments joined by "/": Math.Add is
// "/math/add", UserInfo.GetName "/user_info/get_name", Math.V2_Add
// "/math/v2/add".
var HTTPNaming = Naming{
	Word: httpName,
	Join: func(prefix, name string) string { return prefix + "/" + strings.Trim(name, "/") },
}

// RPCNaming keeps Go names as written and joins them with ".": Math.Add
// is "Math.Add", as net/rpc names methods.
var RPCNaming = Naming{
	Word: func(name string) string { return name },
	Join: func(prefix, name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	},
}

// RouteCall registers the methods of ctrl as CALL handlers. ctrl is a
// pointer to a struct that embeds CallCtx; each method of the shape
//
//	func (c *Ctrl) Method(arg *T) (R, *tp.Status)   // or (R, error)
//
// serves a route named after the struct and the method. By default names
// are HTTP-style: words in snake case, an underscore starting a new path
// segment, so Math.Add serves "/math/add", UserInfo.GetName
// "/user_info/get_name" and Math.V2_Add "/math/v2/add"; with
// PeerConfig.Naming set to RPCNaming they serve "Math.Add" as written,
// and Naming may be the application's own. SubRoute adds a
// prefix. It returns the routes.
//
// Each call gets a new, zero Ctrl whose CallCtx is set: fields of the
// registered value are not seen by the handlers. Keep shared state
// elsewhere (a package variable, a pointer the handler reaches), or
// register a method value of a long-lived value with HandleCall, which
// keeps its receiver.
//
// Methods that return neither a status nor an error are helpers and are
// skipped; one that does but has another shape (a non-pointer argument, a
// tp.Status value) panics, naming what is wrong. A struct with no handler
// panics.
func (r *Router) RouteCall(ctrl any, plugins ...Plugin) []string {
	return r.routeStruct(ctrl, true, plugins)
}

// RoutePush registers the methods of ctrl, a pointer to a struct that
// embeds PushCtx, as PUSH handlers of the shape
//
//	func (c *Ctrl) Method(arg *T) *tp.Status   // or error
func (r *Router) RoutePush(ctrl any, plugins ...Plugin) []string {
	return r.routeStruct(ctrl, false, plugins)
}

// RouteCallFunc registers fn, of the shape
//
//	func(ctx tp.CallCtx, arg *T) (R, *tp.Status)   // or (R, error)
//
// as the CALL handler named after the function ("/echo" for Echo). A
// function literal has no usable name: use a named function. It returns
// the route.
func (r *Router) RouteCallFunc(fn any, plugins ...Plugin) string {
	return r.routeFunc(fn, true, plugins)
}

// RoutePushFunc registers fn, of the shape
//
//	func(ctx tp.PushCtx, arg *T) *tp.Status   // or error
//
// as the PUSH handler named after the function.
func (r *Router) RoutePushFunc(fn any, plugins ...Plugin) string {
	return r.routeFunc(fn, false, plugins)
}

// SetUnknownCall sets the handler of CALLs that no route serves. Without
// one they are answered with CodeNotFound. The reply body is what fn
// returns, in the reply's body codec.
func (r *Router) SetUnknownCall(fn func(UnknownCallCtx) (any, error), plugins ...Plugin) {
	h := &Handler{isCall: true, plugins: r.plugins.with(plugins...),
		invoke: func(c *handlerCtx, _ reflect.Value) (any, *Status) {
			body, err := fn(c)
			if st := toStatus(err); st != nil {
				return nil, st
			}
			return body, nil
		}}
	r.register(h, true)
}

// RouteStream registers the stream handlers of ctrl, a pointer to a struct
// that embeds tp.StreamCtx: each method of the shape
// func(s *tp.Stream) error serves the route named after the struct and the
// method ("/chat/join" for Chat.Join), on a new value of the struct per
// stream, whose StreamCtx is that stream's. It returns the routes.
func (r *Router) RouteStream(ctrl any, plugins ...Plugin) []string {
	const shape = "func(s *tp.Stream) error"
	ptr := reflect.TypeOf(ctrl)
	if ptr == nil || ptr.Kind() != reflect.Pointer || ptr.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("tp: route %T: want a pointer to a struct with methods of the shape %s", ctrl, shape))
	}
	st := ptr.Elem()
	ctxField := -1
	for i := 0; i < st.NumField(); i++ {
		if f := st.Field(i); f.Anonymous && f.Type == typeStreamCtx {
			ctxField = i
		}
	}
	if ctxField < 0 {
		panic(fmt.Sprintf("tp: route %s: the struct must embed tp.StreamCtx", st))
	}
	group := r.SubRoute(r.mapName(typeName(st)), plugins...)
	var names []string
	for i := 0; i < ptr.NumMethod(); i++ {
		m := ptr.Method(i)
		if _, promoted := typeStreamCtx.MethodByName(m.Name); promoted {
			continue
		}
		if m.Type.NumIn() != 2 || m.Type.In(1) != typeStream || m.Type.NumOut() != 1 || m.Type.Out(0) != typeError {
			continue // a helper, not a handler
		}
		fn := m.Func
		h := &Handler{name: group.join(r.mapName(m.Name)), plugins: group.plugins}
		h.stream = func(c StreamCtx, s *Stream) error {
			recv := reflect.New(st)
			recv.Elem().Field(ctxField).Set(reflect.ValueOf(&c).Elem())
			out := fn.Call([]reflect.Value{recv, reflect.ValueOf(s)})
			err, _ := out[0].Interface().(error)
			return err
		}
		group.register(h, false)
		names = append(names, h.name)
	}
	if len(names) == 0 {
		panic(fmt.Sprintf("tp: route %s: no method has the shape %s", ptr, shape))
	}
	return names
}

var (
	typeStreamCtx = reflect.TypeFor[StreamCtx]()
	typeStream    = reflect.TypeFor[*Stream]()
)

// RouteStreamFunc registers fn as the stream handler named after the
// function, as RouteCallFunc names one ("/echo" for Echo, "/chat/join" for
// the method value chat.Join). It returns the route. HandleStream takes an
// explicit name.
func (r *Router) RouteStreamFunc(fn func(StreamCtx, *Stream) error, plugins ...Plugin) string {
	if fn == nil {
		panic("tp: RouteStreamFunc with a nil function")
	}
	v := reflect.ValueOf(fn)
	full := runtime.FuncForPC(v.Pointer()).Name()
	if funcLiteral.MatchString(full) {
		panic(fmt.Sprintf("tp: route %s: a function literal has no name to route by; use a named function, or HandleStream with a name", full))
	}
	recv, name := funcName(full, v.Type(), false)
	group := r
	if recv != "" {
		group = r.SubRoute(r.mapName(recv))
	}
	h := &Handler{name: group.join(r.mapName(name)), stream: fn, plugins: r.plugins.with(plugins...)}
	r.register(h, false)
	return h.name
}

// SetUnknownStream sets the handler of streams that no route serves
// (plugin/proxy forwards them). Without one they are refused with
// CodeNotFound.
func (r *Router) SetUnknownStream(fn func(StreamCtx, *Stream) error, plugins ...Plugin) {
	if fn == nil {
		panic("tp: SetUnknownStream with a nil function")
	}
	r.register(&Handler{stream: fn, plugins: r.plugins.with(plugins...)}, true)
}

// SetUnknownPush sets the handler of PUSHes that no route serves. Without
// one they are dropped and logged.
func (r *Router) SetUnknownPush(fn func(UnknownPushCtx) error, plugins ...Plugin) {
	h := &Handler{plugins: r.plugins.with(plugins...),
		invoke: func(c *handlerCtx, _ reflect.Value) (any, *Status) { return nil, toStatus(fn(c)) }}
	r.register(h, true)
}

func (r *Router) register(h *Handler, unknown bool) {
	h.codecs = []byte{r.table.bodyCodec}
	for _, p := range h.plugins.all {
		if cs, ok := p.(codecSet); ok {
			h.codecs = cs // the innermost group's, or the route's own, wins
		}
	}
	if st := run(h.plugins.postReg, PostRegPlugin.PostReg, h); st != nil {
		panic(fmt.Sprintf("tp: a plugin refused route %q: %v", h.name, st))
	}
	r.table.add(h, unknown)
}

var (
	typeStatus  = reflect.TypeFor[*Status]()
	typeError   = reflect.TypeFor[error]()
	typeCallCtx = reflect.TypeFor[CallCtx]()
	typePushCtx = reflect.TypeFor[PushCtx]()
)

// shape checks a handler signature, given its inputs after the receiver or
// context, and returns the argument's element type and how to read the
// results; ok is false for any other shape.
func shape(ft reflect.Type, in0 int, isCall bool) (arg reflect.Type, errResult bool, ok bool) {
	if ft.NumIn() != in0+1 || ft.IsVariadic() || ft.In(in0).Kind() != reflect.Pointer {
		return nil, false, false
	}
	want := 1
	if isCall {
		want = 2
	}
	if ft.NumOut() != want {
		return nil, false, false
	}
	switch ft.Out(want - 1) {
	case typeStatus:
	case typeError:
		errResult = true
	default:
		return nil, false, false
	}
	return ft.In(in0).Elem(), errResult, true
}

// misfit says why a method that returns a status or an error, as handlers
// do, does not have a handler's shape; "" for a method that returns
// neither, which is a helper and not meant as a handler.
func misfit(ft reflect.Type, in0 int, isCall bool) string {
	if ft.NumOut() == 0 {
		return ""
	}
	last := ft.Out(ft.NumOut() - 1)
	switch {
	case last == typeStatus || last == typeError:
	case last == typeStatus.Elem():
		return "its last result is tp.Status, a value; return *tp.Status or error"
	default:
		return ""
	}
	want := 1
	if isCall {
		want = 2
	}
	switch {
	case ft.NumIn() != in0+1:
		return fmt.Sprintf("it takes %d arguments; a handler takes one, a pointer", ft.NumIn()-in0)
	case ft.IsVariadic():
		return "it is variadic"
	case ft.In(in0).Kind() != reflect.Pointer:
		return fmt.Sprintf("its argument is %s; a handler's argument is a pointer (*%s), which the body decodes into", ft.In(in0), ft.In(in0))
	case ft.NumOut() != want && isCall:
		return fmt.Sprintf("it returns %d results; a CALL handler returns two, the reply and a status", ft.NumOut())
	case ft.NumOut() != want:
		return fmt.Sprintf("it returns %d results; a PUSH handler returns only a status", ft.NumOut())
	}
	return ""
}

// results turns a handler's return values into a reply body and a status.
func results(out []reflect.Value, isCall, errResult bool) (any, *Status) {
	last := out[len(out)-1]
	var st *Status
	if !last.IsNil() {
		if errResult {
			st = toStatus(last.Interface().(error))
		} else {
			st = last.Interface().(*Status)
		}
	}
	if !isCall || !st.OK() {
		return nil, st
	}
	return out[0].Interface(), st
}

const callShapes = "func (c *Ctrl) Method(arg *T) (R, *tp.Status) or (R, error), with Ctrl embedding tp.CallCtx"
const pushShapes = "func (c *Ctrl) Method(arg *T) *tp.Status or error, with Ctrl embedding tp.PushCtx"

func (r *Router) routeStruct(ctrl any, isCall bool, ps []Plugin) []string {
	ptr := reflect.TypeOf(ctrl)
	want, shapes := typePushCtx, pushShapes
	if isCall {
		want, shapes = typeCallCtx, callShapes
	}
	if ptr == nil || ptr.Kind() != reflect.Pointer || ptr.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("tp: route %T: want a pointer to a struct with methods of the shape %s", ctrl, shapes))
	}
	st := ptr.Elem()
	ctxField := -1
	for i := 0; i < st.NumField(); i++ {
		if f := st.Field(i); f.Anonymous && f.Type == want {
			ctxField = i
		}
	}
	if ctxField < 0 {
		panic(fmt.Sprintf("tp: route %s: the struct must embed %s", st, want))
	}
	group := r.SubRoute(r.mapName(typeName(st)), ps...)
	var names []string
	for i := 0; i < ptr.NumMethod(); i++ {
		m := ptr.Method(i)
		if _, promoted := want.MethodByName(m.Name); promoted {
			continue // CallCtx's own methods
		}
		argType, errResult, ok := shape(m.Type, 1, isCall)
		if !ok {
			if why := misfit(m.Type, 1, isCall); why != "" {
				panic(fmt.Sprintf("tp: route %s: method %s returns a status like a handler, but %s; a handler has the shape %s", ptr, m.Name, why, shapes))
			}
			if m.Type.NumIn() == 2 { // one argument, as a handler takes: say why it is not one
				r.table.logger.Warn("tp: a method that takes one argument is not a handler, so it serves no route",
					"ctrl", ptr.String(), "method", m.Name, "signature", m.Type.String(), "want", shapes)
			}
			continue // a helper, not a handler
		}
		fn := m.Func
		h := &Handler{name: group.join(r.mapName(m.Name)), isCall: isCall, argType: argType, plugins: group.plugins}
		h.invoke = func(c *handlerCtx, arg reflect.Value) (any, *Status) {
			recv := reflect.New(st)
			recv.Elem().Field(ctxField).Set(c.value(isCall))
			in := [2]reflect.Value{recv, arg}
			return results(fn.Call(in[:]), isCall, errResult)
		}
		group.register(h, false)
		names = append(names, h.name)
	}
	if len(names) == 0 {
		panic(fmt.Sprintf("tp: route %s: no method has the shape %s", ptr, shapes))
	}
	return names
}

func (r *Router) routeFunc(fn any, isCall bool, ps []Plugin) string {
	v := reflect.ValueOf(fn)
	want, shapes := typePushCtx, "func(ctx tp.PushCtx, arg *T) *tp.Status or error"
	if isCall {
		want, shapes = typeCallCtx, "func(ctx tp.CallCtx, arg *T) (R, *tp.Status) or (R, error)"
	}
	if v.Kind() != reflect.Func || v.IsNil() || v.Type().NumIn() < 1 || v.Type().In(0) != want {
		panic(fmt.Sprintf("tp: route %T: want %s", fn, shapes))
	}
	argType, errResult, ok := shape(v.Type(), 1, isCall)
	if !ok {
		panic(fmt.Sprintf("tp: route %T: want %s", fn, shapes))
	}
	full := runtime.FuncForPC(v.Pointer()).Name()
	if funcLiteral.MatchString(full) {
		panic(fmt.Sprintf("tp: route %s: a function literal has no name to route by; use a named function, or HandleCall/HandlePush with a name", full))
	}
	recv, name := funcName(full, v.Type(), isCall)
	group := r
	if recv != "" {
		group = r.SubRoute(r.mapName(recv))
	}
	h := &Handler{name: group.join(r.mapName(name)), isCall: isCall, argType: argType, plugins: r.plugins.with(ps...)}
	h.invoke = func(c *handlerCtx, arg reflect.Value) (any, *Status) {
		in := [2]reflect.Value{c.value(isCall), arg}
		return results(v.Call(in[:]), isCall, errResult)
	}
	r.register(h, false)
	return h.name
}

// funcName is the route name of a handler function, from its runtime name:
// "pkg.Echo" is "Echo"; a method value "pkg.(*Store).Get-fm" is "Get" of
// the receiver "Store", routed as RouteCall routes methods ("/store/get",
// "Store.Get"); an instance of a generic function "pkg.Echo[...]" (the
// runtime does not say which) is named after the types in its signature,
// "EchoArg" for func(CallCtx, *Arg) (*Arg, error), so two instances do
// not collide.
func funcName(full string, ft reflect.Type, isCall bool) (recv, name string) {
	full, method := strings.CutSuffix(full, "-fm")
	generic := strings.Contains(full, "[")
	full = stripBrackets(full)
	dot := strings.LastIndexByte(full, '.')
	name = full[dot+1:]
	if method { // the receiver's type, before the method's name
		recv = full[:dot]
		recv = strings.Trim(recv[strings.LastIndexByte(recv, '.')+1:], "(*)")
	}
	if generic {
		name += typeWords(ft.In(1).Elem().String())
		if isCall && ft.Out(0) != ft.In(1) {
			name += typeWords(ft.Out(0).String())
		}
	}
	return recv, name
}

// typeName is the route name of a controller type: its name, with the
// type arguments of a generic type as words, "GBig" for G[pkg.Big].
func typeName(t reflect.Type) string {
	name := t.Name()
	i := strings.IndexByte(name, '[')
	if i < 0 {
		return name
	}
	return name[:i] + typeWords(name[i:])
}

// stripBrackets removes every bracketed part of a runtime name.
func stripBrackets(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// typeWords turns a type's text, such as "[]*github.com/x/pkg.Big" or
// "[pkg.K,map[string]pkg.V]", into CamelCase words without package paths
// or punctuation: "Big", "KMapStringV".
func typeWords(s string) string {
	s = pkgPath.ReplaceAllString(s, "")
	var b strings.Builder
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		rs := []rune(w)
		rs[0] = unicode.ToUpper(rs[0])
		b.WriteString(string(rs))
	}
	return b.String()
}

// pkgPath matches a package path before a type name: "github.com/x/pkg.".
var pkgPath = regexp.MustCompile(`[^\[\],\s*]*\.`)

// funcLiteral matches the runtime names of function literals: "pkg.F.func1",
// "pkg.F.func1.2".
var funcLiteral = regexp.MustCompile(`\.func\d+(\.\d+)*$`)

func (r *Router) mapName(name string) string { return r.table.naming.Word(name) }

// httpName maps a Go name to a path the way teleport does: words become
// snake case and an underscore starts a new path segment, so "AaBb" is
// "aa_bb" and "Aa_Bb" is "aa/bb".
func httpName(name string) string {
	var segs []string
	for _, s := range strings.Split(name, "_") {
		if s != "" {
			segs = append(segs, snake(s))
		}
	}
	return strings.Join(segs, "/")
}

// snake turns "HTTPServer2Go" into "http_server2_go".
func snake(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]))
			acronymEnd := i > 0 && unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if prevLower || acronymEnd {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
