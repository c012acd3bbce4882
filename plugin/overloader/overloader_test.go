package overloader_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/overloader"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

func Ping(ctx tp.CallCtx, _ *struct{}) (bool, *tp.Status) { return true, nil }

// burst calls n times in a row and counts the outcomes; refusal is the
// last refusal's message.
func burst(sess *tp.Session, n int) (ok, overloaded int, refusal string) {
	for range n {
		switch st := sess.Call(context.Background(), "/ping", nil, nil).Status(); tp.CodeOf(st) {
		case tp.CodeOK:
			ok++
		case tp.CodeOverloaded:
			overloaded++
			refusal = st.Msg()
		}
	}
	return ok, overloaded, refusal
}

func TestRates(t *testing.T) {
	tests := []struct {
		name string
		cfg  overloader.Config
		// each session's OK calls out of 10, for two sessions in turn
		want    [2]int
		wantMsg string
	}{
		{"overall", overloader.Config{Rate: 1, Burst: 6}, [2]int{6, 0}, "the peer is over 1 messages per second"},
		{"per session", overloader.Config{SessionRate: 1, SessionBurst: 4}, [2]int{4, 4}, "on this session"},
		{"both", overloader.Config{Rate: 1, Burst: 6, SessionRate: 1, SessionBurst: 4}, [2]int{4, 2}, "over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tptest.NewPeer(t, tp.PeerConfig{}, overloader.New(tt.cfg))
			srv.RouteCallFunc(Ping)
			addr := tptest.Serve(t, srv)
			for i, want := range tt.want {
				sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), addr)
				ok, over, refusal := burst(sess, 10)
				if ok != want || over != 10-want {
					t.Fatalf("session %d: %d OK, %d overloaded; want %d OK", i, ok, over, want)
				}
				if !strings.Contains(refusal, tt.wantMsg) {
					t.Fatalf("session %d: the refusal says %q", i, refusal)
				}
			}
		})
	}
}

// Tokens come back with time: a limit sheds the excess, it does not ban.
func TestRateRecovers(t *testing.T) {
	srv := tptest.NewPeer(t, tp.PeerConfig{}, overloader.New(overloader.Config{Rate: 20, Burst: 2}))
	srv.RouteCallFunc(Ping)
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), tptest.Serve(t, srv))
	if ok, _, _ := burst(sess, 5); ok > 3 { // a token may come back mid-burst
		t.Fatalf("%d of 5 passed a burst of 2", ok)
	}
	time.Sleep(150 * time.Millisecond)
	if ok, _, _ := burst(sess, 2); ok != 2 {
		t.Fatalf("after a pause, %d of 2 passed", ok)
	}
}

func TestMaxSessions(t *testing.T) {
	ol := overloader.New(overloader.Config{MaxSessions: 2})
	srv := tptest.NewPeer(t, tp.PeerConfig{}, ol)
	srv.RouteCallFunc(Ping)
	addr := tptest.Serve(t, srv)
	var sessions []*tp.Session
	for range 2 {
		s := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), addr)
		if err := s.Call(context.Background(), "/ping", nil, nil).Err(); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	_, err := tptest.NewPeer(t, tp.PeerConfig{}).Dial(context.Background(), addr)
	if tp.CodeOf(err) != tp.CodeOverloaded || !strings.Contains(err.Error(), "2 sessions") {
		t.Fatalf("third session: %v", err)
	}
	sessions[0].Close()
	tptest.WaitFor(t, "the place to free", func() bool { return ol.Sessions() == 1 })
	fourth := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), addr)
	if err := fourth.Call(context.Background(), "/ping", nil, nil).Err(); err != nil {
		t.Fatalf("after one left: %v", err)
	}
}
