package discovery

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	newB := func(cfg BreakerConfig) *breaker {
		b := newBreaker(cfg.settle())
		b.since.Store(t0.UnixNano())
		return b
	}
	call := func(b *breaker, now time.Time, failed bool) bool {
		ok, probe := b.claim(now)
		if ok {
			b.record(now, failed, probe)
		}
		return ok
	}

	t.Run("failures in a row", func(t *testing.T) {
		b := newB(BreakerConfig{ConsecutiveFailures: 3})
		call(b, at(0), true)
		call(b, at(1), true)
		call(b, at(2), false) // the row restarts
		call(b, at(3), true)
		call(b, at(4), true)
		if b.current() != closed {
			t.Fatal("opened after two in a row")
		}
		call(b, at(5), true)
		if b.current() != open || b.available(at(6)) {
			t.Fatal("not open after three in a row")
		}
	})
	t.Run("failure ratio", func(t *testing.T) {
		b := newB(BreakerConfig{ConsecutiveFailures: 100, MinCalls: 10, FailureRatio: 0.5})
		for i := range 9 {
			call(b, at(i), i%2 == 0) // 5 of 9 failed: too few calls yet
		}
		if b.current() != closed {
			t.Fatal("opened before MinCalls")
		}
		call(b, at(9), true) // 6 of 10
		if b.current() != open {
			t.Fatal("not open at 6 failures of 10")
		}
	})
	t.Run("the window rolls", func(t *testing.T) {
		b := newB(BreakerConfig{ConsecutiveFailures: 100, MinCalls: 4, FailureRatio: 0.5, Window: time.Second})
		call(b, at(0), true)
		call(b, at(1), true)
		call(b, at(1500), false) // a new window
		call(b, at(1501), false)
		call(b, at(1502), true)
		call(b, at(1503), false)
		if b.current() != closed {
			t.Fatal("failures of an old window counted")
		}
	})
	t.Run("probe", func(t *testing.T) {
		b := newB(BreakerConfig{ConsecutiveFailures: 1, OpenFor: 100 * time.Millisecond})
		call(b, at(0), true)
		if b.available(at(99)) {
			t.Fatal("available while open")
		}
		ok, probe := b.claim(at(100))
		if !ok || !probe {
			t.Fatal("no probe after OpenFor")
		}
		if b.available(at(101)) {
			t.Fatal("a second probe is offered while one is out")
		}
		b.record(at(110), true, true) // the probe failed: open twice as long
		if b.available(at(300)) || !b.available(at(310)) {
			t.Fatal("a failed probe should double OpenFor to 200 ms")
		}
		ok, probe = b.claim(at(310))
		if !ok || !probe {
			t.Fatal("no second probe")
		}
		b.record(at(320), false, true)
		if b.current() != closed {
			t.Fatal("a good probe should close the breaker")
		}
		call(b, at(330), true) // and OpenFor is back to 100 ms
		if !b.available(at(430)) {
			t.Fatal("OpenFor not reset by the good probe")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		b := newB(BreakerConfig{Disabled: true, ConsecutiveFailures: 1})
		for i := range 10 {
			if !call(b, at(i), true) {
				t.Fatal("a disabled breaker refused")
			}
		}
	})
}
