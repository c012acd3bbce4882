package tracing_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/httpfront"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"go.opentelemetry.io/otel/trace"
)

// A call through the HTTP front continues the HTTP caller's trace: its
// traceparent header reaches the plugin as meta.
func TestHTTPFrontContinuesTheTrace(t *testing.T) {
	plugin, exp := newTracing(t)
	srv := tptest.NewPeer(t, tp.PeerConfig{}, plugin)
	srv.RouteCallFunc(Inner)
	f, err := httpfront.New(srv, httpfront.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hs := httptest.NewServer(f)
	defer hs.Close()

	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/inner", strings.NewReader("1"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	s := span(t, exp.GetSpans(), "/inner", trace.SpanKindServer)
	if got := s.SpanContext.TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("the server span is in trace %s under %s; want the caller's", got, s.Parent.SpanID())
	}
}
