package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/internal/notify"
)

// Hub is the shared LISTEN connection per (backend, database) that long
// polls subscribe through: *notify.Hub, the one the proxy's LISTEN uses.
type Hub interface {
	Subscribe(ctx context.Context, key notify.Key, channel string, sub notify.Subscriber) error
	Unsubscribe(key notify.Key, channel string, sub notify.Subscriber)
}

// listenKeyer is implemented by Pools whose connections all reach one
// (backend, database): the key of the listener that hears that database's
// notifications. BackendPools implements it.
type listenKeyer interface {
	ListenKey() notify.Key
}

// maxSubscribeWait bounds the wait for a poll's LISTEN. Only a listener's
// first connection takes long; one that cannot LISTEN within this is failing,
// and the poll then waits on its interval as it would without a hub.
const maxSubscribeWait = 2 * time.Second

// insertChannelsSQL finds the names pgmq notifies a queue's inserts under.
// pgmq's trigger sends on 'pgmq.q_' || <the name in notify_insert_throttle>
// || '.INSERT', and that name is whatever enable_notify_insert was given
// (checked against pgmq.meta, so it is a name the queue was created with, in
// its case), not the name a reader passes: queue names match case-insensitively
// (pgmq lower-cases the table name), so a poll on "orders" must LISTEN on
// "pgmq.q_Orders.INSERT" when the queue was enabled as "Orders". Reading the
// stored name is exact where guessing the case is not, it is the cheap way to
// learn whether notifications are enabled at all (no row: nothing to
// LISTEN), and it subscribes only queues that exist. More than one row can
// match only when the queue was created under several spellings; the LIMIT
// caps what one poll can LISTEN on.
const insertChannelsSQL = `SELECT coalesce(json_agg(t.queue_name), '[]') FROM (` +
	`SELECT queue_name FROM pgmq.list_notify_insert_throttles() ` +
	`WHERE lower(queue_name) = lower($1::text) LIMIT 4) AS t`

// insertChannel is the channel pgmq.notify_queue_listeners notifies for a
// queue name as stored.
func insertChannel(stored string) string { return "pgmq.q_" + stored + ".INSERT" }

// insertWatch is one poll's subscription to its queue's insert channels: a
// notification, or news that some may have been missed (Lost, after the
// listener reconnected), wakes the poll to read again.
type insertWatch struct {
	wake     chan struct{} // buffered 1: one pending wake-up is enough
	key      notify.Key
	channels []string
}

var _ notify.Subscriber = (*insertWatch)(nil)

// Notify implements notify.Subscriber.
func (w *insertWatch) Notify(notify.Notification) { w.poke() }

// Lost implements notify.Subscriber: a re-read covers whatever the gap hid.
func (w *insertWatch) Lost(notify.Key, []string) { w.poke() }

// poke never blocks: the hub calls it from its own goroutine.
func (w *insertWatch) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// woken delivers one value per wake-up; for no watch it is nil (never
// ready), so a poll without one selects on it harmlessly.
func (w *insertWatch) woken() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.wake
}

// clear drops a pending wake-up before a read: notifications that came
// before it are for messages the read can already see.
func (w *insertWatch) clear() {
	if w == nil {
		return
	}
	select {
	case <-w.wake:
	default:
	}
}

// watchInserts subscribes a poll of queue to its insert notifications and
// returns the watch (nil when there is none to make: no hub, notifications
// not enabled, or the subscription failed, in which case the poll relies on
// its interval) and the function that ends it. It returns an error only
// when the lookup could not run for reasons the read would hit too.
func (s *Server) watchInserts(ctx context.Context, id auth.Identity, queue string, deadline time.Time) (*insertWatch, func(), error) {
	none := func() {}
	if s.hub == nil {
		return nil, none, nil
	}
	channels, err := s.insertChannels(ctx, id, queue)
	if err != nil || len(channels) == 0 {
		return nil, none, err
	}
	w := &insertWatch{wake: make(chan struct{}, 1), key: s.hubKey}
	stop := func() {
		for _, ch := range w.channels {
			s.hub.Unsubscribe(w.key, ch, w)
		}
	}
	sctx, cancel := context.WithDeadline(ctx, earliest(deadline, time.Now().Add(maxSubscribeWait)))
	defer cancel()
	for _, ch := range channels {
		if err := s.hub.Subscribe(sctx, w.key, ch, w); err != nil {
			stop()
			if ctx.Err() != nil {
				return nil, none, ctx.Err()
			}
			s.subscribeFailed(queue, err)
			return nil, none, nil
		}
		w.channels = append(w.channels, ch)
	}
	return w, stop, nil
}

// insertChannels looks up queue's insert channels as the token's role. A
// refusal by Postgres (no such function in an older pgmq, no privilege on
// pgmq's table) means no channel; a failure to get a connection is returned.
func (s *Server) insertChannels(ctx context.Context, id auth.Identity, queue string) ([]string, error) {
	row, err := s.queryRow(ctx, id, insertChannelsSQL, []*string{&queue})
	if err != nil {
		if isPgError(err) {
			s.log.Debug("rest: no insert notifications for a long poll", zap.String("queue", queue), zap.Error(err))
			return nil, nil
		}
		return nil, err
	}
	var names []string
	if len(row) < 1 || json.Unmarshal(row[0], &names) != nil {
		return nil, fmt.Errorf("BUG: insert channel lookup answered %q", row)
	}
	for i, n := range names {
		names[i] = insertChannel(n)
	}
	return names, nil
}

// subscribeFailed logs why a poll waits on its interval alone. A name no
// LISTEN can carry (over 63 bytes) is the queue's lot, not a fault.
func (s *Server) subscribeFailed(queue string, err error) {
	if errors.Is(err, notify.ErrChannelName) {
		s.log.Debug("rest: a long poll's insert channel cannot be listened on", zap.String("queue", queue))
		return
	}
	s.log.Warn("rest: a long poll could not subscribe to insert notifications; it polls on its interval",
		zap.String("queue", queue), zap.Error(err))
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
