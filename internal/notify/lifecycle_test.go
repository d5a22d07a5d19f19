package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"mqstack/internal/testenv"
)

// gaugesAre waits until the hub's gauges hold want (connections, channels,
// subscriptions).
func gaugesAre(t *testing.T, reg prometheus.Gatherer, want [3]float64) {
	t.Helper()
	var got [3]float64
	testenv.WaitFor(t, waitTime, fmt.Sprintf("gauges (connections, channels, subscriptions) = %v", want), func() bool {
		got = [3]float64{metric(t, reg, "listener_connections"), metric(t, reg, "channels"), metric(t, reg, "subscriptions")}
		return got == want
	})
}

func TestIdleListenerCloses(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, reg := newHub(t, c)
	admin := direct(t, c)
	a, b := &recorder{}, &recorder{}
	subscribe(t, h, "idle.one", a)
	subscribe(t, h, "idle.two", a)
	subscribe(t, h, "idle.one", b)
	waitListeners(t, admin, 1)
	gaugesAre(t, reg, [3]float64{1, 2, 3})

	h.Unsubscribe(testKey, "idle.two", a) // its last subscriber: UNLISTENed
	gaugesAre(t, reg, [3]float64{1, 1, 2})
	h.UnsubscribeAll(testKey, a)
	gaugesAre(t, reg, [3]float64{1, 1, 1})
	h.Unsubscribe(testKey, "idle.one", b) // the key's last subscriber
	waitListeners(t, admin, 0)
	gaugesAre(t, reg, [3]float64{0, 0, 0})

	subscribe(t, h, "idle.one", b)
	waitListeners(t, admin, 1)
	send(t, admin, "idle.one", "again")
	if got := b.waitNotes(t, 1); got[0].Payload != "again" {
		t.Fatalf("after the restart of the listener b got %+v", got)
	}
	gaugesAre(t, reg, [3]float64{1, 1, 1})
}

func TestCloseWithSubscribers(t *testing.T) {
	c := testenv.Cluster(t)
	admin := direct(t, c)
	before := goleak.IgnoreCurrent()
	h, reg := newHub(t, c)
	other := Key{Backend: testKey.Backend, Database: "template1"}
	r := &recorder{}
	subscribe(t, h, "close.a", r)
	if err := h.Subscribe(ctxT(t), other, "close.b", r); err != nil {
		t.Fatal(err)
	}
	waitListeners(t, admin, 2)

	closed := make(chan struct{})
	go func() { h.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitTime):
		t.Fatal("Close did not return")
	}
	goleak.VerifyNone(t, before)
	if err := h.Subscribe(ctxT(t), testKey, "close.a", r); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	gaugesAre(t, reg, [3]float64{0, 0, 0})
	waitListeners(t, admin, 0)
}

func TestSubscribeRejects(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, reg := newHub(t, c)
	r := &recorder{}
	for _, name := range []string{"", "a\x00b", strings.Repeat("x", 64)} {
		if err := h.Subscribe(ctxT(t), testKey, name, r); !errors.Is(err, ErrChannelName) {
			t.Errorf("Subscribe(%q): %v, want ErrChannelName", name, err)
		}
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Subscribe(ended, testKey, "ended", r); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with an ended context: %v", err)
	}
	longest := strings.Repeat("y", 63)
	subscribe(t, h, longest, r)
	if n := metric(t, reg, "subscriptions"); n != 1 {
		t.Errorf("subscriptions = %v, want 1 (only the valid one)", n)
	}

	sender := direct(t, c)
	send(t, sender, longest, "l")
	if got := r.waitNotes(t, 1); got[0].Payload != "l" {
		t.Fatalf("got %+v", got)
	}
}

// Invalid UTF-8 makes the backend refuse the LISTEN. Subscribed at the same
// time to a listener still dialing, a valid channel most likely shares the
// refused one's batch, and must work all the same.
func TestRefusedListen(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, reg := newHub(t, c)
	r := &recorder{}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, name := range []string{"fine", "bad\xff"} {
		wg.Go(func() { errs[i] = h.Subscribe(ctxT(t), testKey, name, r) })
	}
	wg.Wait()
	var pgErr *pgconn.PgError
	if errs[0] != nil || !errors.As(errs[1], &pgErr) || pgErr.Code != pgerrcode.CharacterNotInRepertoire {
		t.Fatalf("Subscribe(fine) = %v, Subscribe(bad) = %v; want nil and a PgError 22021", errs[0], errs[1])
	}
	if n := metric(t, reg, "subscriptions"); n != 1 {
		t.Errorf("subscriptions = %v, want 1 (the refused one dropped)", n)
	}
	send(t, direct(t, c), "fine", "f")
	if got := r.waitNotes(t, 1); got[0].Payload != "f" {
		t.Fatalf("got %+v", got)
	}
}

// When the first connection of a listener cannot be made, Subscribe says so
// and the listener goes away; the next Subscribe tries again.
func TestFirstConnectionFails(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	errNoBackend := errors.New("no such backend")
	var broken atomic.Bool
	broken.Store(true)
	reg := prometheus.NewRegistry()
	h := New(Options{
		ConnString: func(k Key) (string, string, error) {
			if broken.Load() {
				return "", "", errNoBackend
			}
			return c.ConnString(c.DefaultRole(), k.Database), "", nil
		},
		Log:        zaptest.NewLogger(t),
		Registerer: reg,
	})
	t.Cleanup(h.Close)
	r := &recorder{}
	if err := h.Subscribe(ctxT(t), testKey, "first", r); !errors.Is(err, errNoBackend) {
		t.Fatalf("Subscribe: %v, want the connection string's error", err)
	}
	testenv.WaitFor(t, waitTime, "the failed listener to stop", func() bool { return h.running(testKey) == nil })
	gaugesAre(t, reg, [3]float64{0, 0, 0})

	broken.Store(false)
	subscribe(t, h, "first", r)
	send(t, direct(t, c), "first", "works")
	if got := r.waitNotes(t, 1); got[0].Payload != "works" {
		t.Fatalf("got %+v", got)
	}
}

// A backend that accepts the connection and never answers: the Subscribe
// waiting for it ends with its context, unsubscribed, and Close ends the dial.
func TestSubscribeContextEndsWhileDialing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	held.Go(func() { holdConnections(ln) })
	t.Cleanup(func() { ln.Close(); held.Wait() })
	noLeaks(t)
	reg := prometheus.NewRegistry()
	h := New(Options{
		ConnString: func(Key) (string, string, error) {
			return fmt.Sprintf("host=127.0.0.1 port=%d user=mq dbname=postgres sslmode=disable", ln.Addr().(*net.TCPAddr).Port), "", nil
		},
		Log:        zaptest.NewLogger(t),
		Registerer: reg,
	})
	t.Cleanup(h.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.Subscribe(ctx, testKey, "silent", &recorder{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe: %v, want the context's deadline", err)
	}
	if n := metric(t, reg, "subscriptions"); n != 0 {
		t.Errorf("subscriptions = %v after a failed Subscribe, want 0", n)
	}
}

// holdConnections accepts connections and keeps them open, silent, until ln
// is closed.
func holdConnections(ln net.Listener) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		conns = append(conns, c)
	}
}

// Many goroutines subscribing and unsubscribing over a few channels while
// notifications flow: the table stays consistent (the gauges come back to
// zero, the listener stops), and a steady subscriber misses nothing.
func TestChurn(t *testing.T) {
	c := testenv.Cluster(t)
	noLeaks(t)
	h, reg := newHub(t, c)
	admin := direct(t, c)
	steady := &recorder{}
	subscribe(t, h, "churn.0", steady)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := &recorder{}
			for i := range 40 {
				ch := fmt.Sprintf("churn.%d", (g+i)%4)
				if err := h.Subscribe(ctxT(t), testKey, ch, r); err != nil {
					t.Errorf("Subscribe(%s): %v", ch, err)
					return
				}
				if i%3 == 0 {
					h.UnsubscribeAll(testKey, r)
				} else {
					h.Unsubscribe(testKey, ch, r)
				}
			}
		})
	}
	for i := range 50 {
		send(t, admin, "churn.0", fmt.Sprint(i))
	}
	wg.Wait()
	got := steady.waitNotes(t, 50)
	for i, n := range got {
		if n.Payload != fmt.Sprint(i) {
			t.Fatalf("the steady subscriber's notification %d is %q", i, n.Payload)
		}
	}
	gaugesAre(t, reg, [3]float64{1, 1, 1})
	h.Unsubscribe(testKey, "churn.0", steady)
	gaugesAre(t, reg, [3]float64{0, 0, 0})
	waitListeners(t, admin, 0)
}
