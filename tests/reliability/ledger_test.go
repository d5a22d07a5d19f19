package reliability

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// outcome is what a client knows about a write it asked for.
type outcome int

const (
	// failed: the write certainly did not happen (refused before it reached
	// Postgres, or its transaction never committed).
	failed outcome = iota
	// unknown: the answer was lost; the write may or may not have happened.
	unknown
	// acked: the client got the answer; the write happened.
	acked
)

// ledger records, from the clients' side, every send attempt (each with a
// unique id in the message body), every delivery and every delete and
// archive. check compares it with what the queue and archive tables hold.
type ledger struct {
	queue string
	seq   atomic.Int64

	mu         sync.Mutex
	sends      map[string]outcome // uid -> outcome
	sendIDs    map[string]int64   // uid -> msg_id, for acknowledged sends
	deliveries []delivery
	removals   map[int64]*removal // msg_id -> deletes and archives asked for
}

// delivery is one message handed to a consumer by a read that committed.
type delivery struct {
	uid    string
	msgID  int64
	readAt time.Time // the server's last_read_at (clock_timestamp of the read)
	vt     time.Time // the server's new vt: invisible to others until then
	via    string
}

type removal struct {
	deleted  [3]int // by outcome
	archived [3]int
}

func newLedger(queue string) *ledger {
	return &ledger{queue: queue, sends: map[string]outcome{}, sendIDs: map[string]int64{}, removals: map[int64]*removal{}}
}

// uid is a new unique message id for a producer.
func (l *ledger) uid(who string) string {
	return fmt.Sprintf("%s-%d", who, l.seq.Add(1))
}

func (l *ledger) sent(uids []string, ids []int64, o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, u := range uids {
		if prev, ok := l.sends[u]; ok && prev >= o {
			continue
		}
		l.sends[u] = o
		if o == acked && i < len(ids) {
			l.sendIDs[u] = ids[i]
		}
	}
}

// progress counts the sends acknowledged and the deliveries so far.
func (l *ledger) progress() (acked, delivered int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sendIDs), len(l.deliveries)
}

func (l *ledger) delivered(ds []delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliveries = append(l.deliveries, ds...)
}

func (l *ledger) removed(ids []int64, archive bool, o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		r := l.removals[id]
		if r == nil {
			r = &removal{}
			l.removals[id] = r
		}
		if archive {
			r.archived[o]++
		} else {
			r.deleted[o]++
		}
	}
}

// counts is the accounting of one ledger (or the sum of several).
type counts struct {
	Attempted, Acked, Unknown, Failed int
	Received, Deliveries              int // distinct messages received; deliveries (redeliveries after vt included)
	Deleted, Archived, InQueue        int
	Lost, Duplicated, Phantom         int
	Problems                          []string
}

func (c *counts) add(o counts) {
	c.Attempted += o.Attempted
	c.Acked += o.Acked
	c.Unknown += o.Unknown
	c.Failed += o.Failed
	c.Received += o.Received
	c.Deliveries += o.Deliveries
	c.Deleted += o.Deleted
	c.Archived += o.Archived
	c.InQueue += o.InQueue
	c.Lost += o.Lost
	c.Duplicated += o.Duplicated
	c.Phantom += o.Phantom
	c.Problems = append(c.Problems, o.Problems...)
}

func (c counts) String() string {
	return fmt.Sprintf("sent %d (acknowledged %d, unknown %d, failed %d), received %d (%d deliveries), deleted %d, archived %d, still queued %d, lost %d, duplicated %d, phantom %d",
		c.Attempted, c.Acked, c.Unknown, c.Failed, c.Received, c.Deliveries, c.Deleted, c.Archived, c.InQueue, c.Lost, c.Duplicated, c.Phantom)
}

func (c counts) ok() bool {
	return c.Lost == 0 && c.Duplicated == 0 && c.Phantom == 0 && len(c.Problems) == 0
}

// row is a message found in the queue or archive table.
type row struct {
	uid   string
	msgID int64
}

// snapshot reads the queue and archive tables directly (superuser).
func snapshot(ctx context.Context, c *pgx.Conn, queue string) (q, a []row, err error) {
	read := func(table string) ([]row, error) {
		rows, err := c.Query(ctx, fmt.Sprintf("SELECT message->>'uid', msg_id FROM pgmq.%s", pgx.Identifier{table}.Sanitize()))
		if err != nil {
			return nil, err
		}
		var out []row
		for rows.Next() {
			var r row
			var uid *string
			if err := rows.Scan(&uid, &r.msgID); err != nil {
				return nil, err
			}
			if uid != nil {
				r.uid = *uid
			}
			out = append(out, r)
		}
		return out, rows.Err()
	}
	if q, err = read("q_" + queue); err != nil {
		return nil, nil, err
	}
	a, err = read("a_" + queue)
	return q, a, err
}

// check accounts for every send: an acknowledged send must be in the queue,
// in the archive, or have been read and deleted; nothing may appear that was
// not sent (or whose send certainly failed); no message may be delivered
// again before the vt of its previous delivery.
func (l *ledger) check(q, a []row) counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c counts
	problem := func(format string, args ...any) {
		if len(c.Problems) < 20 {
			c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
		}
	}
	for _, o := range l.sends {
		c.Attempted++
		switch o {
		case acked:
			c.Acked++
		case unknown:
			c.Unknown++
		default:
			c.Failed++
		}
	}
	seen := map[string]string{} // uid -> where
	idOf := map[string]int64{}
	where := func(r row, table string) {
		o, sent := l.sends[r.uid]
		switch {
		case !sent:
			c.Phantom++
			problem("%s holds msg_id %d with uid %q that no client sent", table, r.msgID, r.uid)
		case o == failed:
			c.Phantom++
			problem("%s holds msg_id %d with uid %q whose send failed (its transaction never committed)", table, r.msgID, r.uid)
		}
		if prev, dup := seen[r.uid]; dup {
			c.Duplicated++
			problem("uid %q is in %s and in %s", r.uid, prev, table)
		}
		seen[r.uid] = table
		idOf[r.uid] = r.msgID
	}
	for _, r := range q {
		where(r, "the queue")
		c.InQueue++
	}
	for _, r := range a {
		where(r, "the archive")
		c.Archived++
	}
	for id, r := range l.removals {
		if r.deleted[acked] > 0 {
			c.Deleted++
		}
		if r.archived[acked] > 0 {
			found := false
			for _, ar := range a {
				if ar.msgID == id {
					found = true
				}
			}
			if !found {
				problem("archive of msg_id %d was acknowledged but it is not in the archive", id)
			}
		}
	}
	for _, r := range q {
		if rm := l.removals[r.msgID]; rm != nil && rm.deleted[acked] > 0 {
			problem("delete of msg_id %d was acknowledged but it is still in the queue", r.msgID)
		}
	}

	// Deliveries: known senders only, consistent ids, no overlap in vt.
	byID := map[int64][]delivery{}
	received := map[string]bool{}
	for _, d := range l.deliveries {
		c.Deliveries++
		received[d.uid] = true
		if o, sent := l.sends[d.uid]; !sent || o == failed {
			c.Phantom++
			problem("msg_id %d delivered with uid %q that was never (successfully) sent", d.msgID, d.uid)
		}
		if id, ok := l.sendIDs[d.uid]; ok && id != d.msgID {
			problem("uid %q was sent as msg_id %d but delivered as %d", d.uid, id, d.msgID)
		}
		if id, ok := idOf[d.uid]; ok && id != d.msgID {
			problem("uid %q is stored as msg_id %d but was delivered as %d", d.uid, id, d.msgID)
		}
		byID[d.msgID] = append(byID[d.msgID], d)
	}
	c.Received = len(received)
	for id, ds := range byID {
		sort.Slice(ds, func(i, j int) bool { return ds[i].readAt.Before(ds[j].readAt) })
		for i := 1; i < len(ds); i++ {
			if ds[i].readAt.Before(ds[i-1].vt) {
				c.Duplicated++
				problem("msg_id %d delivered at %s (%s) while invisible until %s after its delivery at %s (%s)",
					id, ds[i].readAt.Format(time.StampMicro), ds[i].via, ds[i-1].vt.Format(time.StampMicro),
					ds[i-1].readAt.Format(time.StampMicro), ds[i-1].via)
			}
		}
	}

	// Every acknowledged send is accounted for.
	for uid, o := range l.sends {
		if o != acked || seen[uid] != "" {
			continue
		}
		id := l.sendIDs[uid]
		if r := l.removals[id]; r != nil && (r.deleted[acked] > 0 || r.deleted[unknown] > 0) {
			continue
		}
		c.Lost++
		problem("acknowledged send %q (msg_id %d) is neither queued, archived nor deleted", uid, id)
	}
	return c
}

func (c counts) problems() string { return strings.Join(c.Problems, "\n  ") }
