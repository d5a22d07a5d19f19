package notify

import (
	"context"
	"slices"

	"go.uber.org/zap"
)

// The subscription table of one listener. Every method here runs with the
// listener's mu held. The table is the wanted state (who wants which
// channel) next to what the current connection has LISTENed; dirty names the
// channels where the two may differ, so the listener's goroutine sends only
// the statements needed, and the pending work is bounded by the number of
// channels, never by the number of calls.

// channel is one channel's subscribers and its state on the connection.
type channel struct {
	// subs maps each subscriber to whether it was promised the channel: false
	// while its Subscribe call still waits for the LISTEN.
	subs map[Subscriber]bool
	// listened: a LISTEN completed on the current connection and no UNLISTEN
	// has been sent since.
	listened bool
	// ready is what waiting Subscribe calls watch; nil when none waits.
	ready *readiness
}

// readiness is the outcome of one channel's LISTEN, shared by every
// Subscribe call waiting for it.
type readiness struct {
	done chan struct{}
	err  error
}

// change is one statement the connection owes the table.
type change struct {
	name   string
	listen bool // LISTEN; else UNLISTEN
}

// subscribe adds sub to name and says whether this call added it and what
// the caller must wait for (nil: nothing).
func (l *listener) subscribe(name string, sub Subscriber) (added bool, ready *readiness) {
	ch := l.channels[name]
	if ch == nil {
		ch = &channel{subs: make(map[Subscriber]bool)}
		l.channels[name] = ch
	}
	wait := !ch.listened && l.phase != phaseReconnecting
	if _, ok := ch.subs[sub]; !ok {
		ch.subs[sub] = !wait
		l.subCount++
		l.hub.metrics.subscriptions.Inc()
		added = true
	}
	if !ch.listened {
		l.markDirty(name)
	}
	if !wait {
		return added, nil
	}
	if ch.ready == nil {
		ch.ready = &readiness{done: make(chan struct{})}
	}
	return added, ch.ready
}

// unsubscribe removes sub from name, if it is there.
func (l *listener) unsubscribe(name string, sub Subscriber) {
	ch := l.channels[name]
	if ch == nil {
		return
	}
	if _, ok := ch.subs[sub]; !ok {
		return
	}
	delete(ch.subs, sub)
	l.subCount--
	l.hub.metrics.subscriptions.Dec()
	if len(ch.subs) == 0 {
		if ch.listened {
			l.markDirty(name)
		} else {
			// Nothing to undo on the connection; a LISTEN in flight is
			// undone when confirm finds no entry.
			l.forget(name, ch, nil)
		}
	}
	if l.subCount == 0 {
		l.kick() // the listener stops when it sees nobody left
	}
}

// forget drops name's entry, releasing any Subscribe still waiting on it.
func (l *listener) forget(name string, ch *channel, err error) {
	l.resolve(ch, err)
	delete(l.channels, name)
}

// resolve ends the wait of Subscribe calls on ch; on success its
// subscribers are from now on promised the channel.
func (l *listener) resolve(ch *channel, err error) {
	if ch.ready != nil {
		ch.ready.err = err
		close(ch.ready.done)
		ch.ready = nil
	}
	if err == nil {
		for sub := range ch.subs {
			ch.subs[sub] = true
		}
	}
}

// markDirty queues name for the goroutine to bring in line.
func (l *listener) markDirty(name string) {
	l.dirty[name] = struct{}{}
	l.kick()
}

// wakeCtx is what the goroutine waits on between statements: it ends when
// the table changes (kick) or the hub closes.
func (l *listener) wakeCtx() context.Context {
	if l.wake == nil {
		l.wake, l.wakeCancel = context.WithCancel(l.hub.ctx)
	}
	return l.wake
}

// kick ends the current wakeCtx, if any; the next wait takes a fresh one.
func (l *listener) kick() {
	if l.wakeCancel != nil {
		l.wakeCancel()
		l.wake, l.wakeCancel = nil, nil
	}
}

// takeDirty appends to buf the statements the dirty channels need and
// empties dirty. An UNLISTEN counts as done from here on: a Subscribe
// arriving before it completes must wait for a new LISTEN.
func (l *listener) takeDirty(buf []change) []change {
	for name := range l.dirty {
		delete(l.dirty, name)
		ch := l.channels[name]
		if ch == nil {
			continue
		}
		want := len(ch.subs) > 0
		switch {
		case want && !ch.listened:
			buf = append(buf, change{name: name, listen: true})
		case !want && ch.listened:
			ch.listened = false
			l.hub.metrics.channels.Dec()
			buf = append(buf, change{name: name, listen: false})
			l.forget(name, ch, nil)
		case !want:
			l.forget(name, ch, nil)
		}
	}
	return buf
}

// confirm records that c completed on the connection.
func (l *listener) confirm(c change) {
	if !c.listen {
		return
	}
	ch := l.channels[c.name]
	if ch == nil {
		// Everyone left while the LISTEN was in flight: the entry keeps the
		// fact that it is LISTENed until the UNLISTEN.
		ch = &channel{subs: make(map[Subscriber]bool)}
		l.channels[c.name] = ch
	}
	if !ch.listened {
		ch.listened = true
		l.hub.metrics.channels.Inc()
	}
	l.resolve(ch, nil)
	if len(ch.subs) == 0 {
		l.markDirty(c.name)
	}
}

// refuse handles a LISTEN the backend refused: the channel's subscribers are
// dropped. Subscribe calls waiting for it return err; subscribers that had
// been promised it (it was LISTENed before a reconnect) are told via Lost,
// their only news of it.
func (l *listener) refuse(name string, err error) {
	ch := l.channels[name]
	if ch == nil {
		return
	}
	l.hub.log.Warn("notify: the backend refused a LISTEN; dropping the channel's subscribers",
		zap.String("backend", l.key.Backend), zap.String("database", l.key.Database),
		zap.Int("subscribers", len(ch.subs)), zap.Error(err))
	for sub, promised := range ch.subs {
		if promised {
			sub.Lost(l.key, []string{name})
		}
	}
	l.subCount -= len(ch.subs)
	l.hub.metrics.subscriptions.Sub(float64(len(ch.subs)))
	clear(ch.subs)
	l.forget(name, ch, err)
	if l.subCount == 0 {
		l.kick()
	}
}

// disconnected resets the table after the connection is gone. Waiting
// Subscribe calls of a listener that was up return at once (the channel is
// LISTENed on reconnect); those of one that never connected get err and
// their subscriptions are dropped.
func (l *listener) disconnected(err error) {
	clear(l.dirty)
	for name, ch := range l.channels {
		if ch.listened {
			ch.listened = false
			l.hub.metrics.channels.Dec()
		}
		if l.phase == phaseDialing {
			for sub, promised := range ch.subs {
				if !promised {
					delete(ch.subs, sub)
					l.subCount--
					l.hub.metrics.subscriptions.Dec()
				}
			}
			l.resolve(ch, err)
		} else {
			l.resolve(ch, nil)
		}
		if len(ch.subs) == 0 {
			l.forget(name, ch, nil)
		}
	}
	if l.phase == phaseUp || l.subCount > 0 {
		// Somebody was promised notifications: from here on it is a
		// reconnect, with Lost at the end.
		l.phase = phaseReconnecting
	}
}

// lostBySubscriber lists each subscriber's channels, sorted, for Lost.
func (l *listener) lostBySubscriber() map[Subscriber][]string {
	lost := make(map[Subscriber][]string)
	for name, ch := range l.channels {
		for sub := range ch.subs {
			lost[sub] = append(lost[sub], name)
		}
	}
	for _, names := range lost {
		slices.Sort(names)
	}
	return lost
}
