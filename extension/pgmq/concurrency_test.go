package pgmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/internal/testenv"
)

// TestHammer: 16 producers and 16 consumers on one queue. Every message has
// a unique id in its body; consumers read with vt 30 and delete. Nothing may
// be lost, nothing delivered twice within its visibility timeout, nothing
// unexpected may show up.
func TestHammer(t *testing.T) {
	const (
		producers   = 16
		consumers   = 16
		perProducer = 250
		total       = producers * perProducer
		vt          = 30 * time.Second
	)
	cluster(t) // installs the extension files
	// a private cluster: the shared one is sized for fewer connections
	c := testenv.NewCluster(t, testenv.Options{Settings: map[string]string{"max_connections": "80"}})
	db := newDB(t, c)
	pool := newPool(t, c, db, producers+consumers+2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := pool.Exec(ctx, `SELECT pgmq.create('hammer')`); err != nil {
		t.Fatal(err)
	}

	type body struct {
		ID  string `json:"id"`
		P   int    `json:"p"`
		Seq int    `json:"seq"`
	}
	type delivery struct {
		msgID int64
		at    time.Time
		count int
	}
	var (
		mu         sync.Mutex
		delivered  = map[string]*delivery{}
		unexpected []string
		failures   []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	expected := make(map[string]bool, total)
	for p := 0; p < producers; p++ {
		for i := 0; i < perProducer; i++ {
			expected[fmt.Sprintf("p%d-%d", p, i)] = true
		}
	}

	var producersLeft atomic.Int32
	producersLeft.Store(producers)
	var consumed atomic.Int64
	var wg sync.WaitGroup

	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			defer producersLeft.Add(-1)
			for i := 0; i < perProducer; {
				if ctx.Err() != nil {
					return
				}
				// mostly single sends, every tenth round a batch of 5
				if i%10 == 0 && i+5 <= perProducer {
					msgs := make([]string, 5)
					for k := range msgs {
						b, _ := json.Marshal(body{ID: fmt.Sprintf("p%d-%d", p, i+k), P: p, Seq: i + k})
						msgs[k] = string(b)
					}
					rows, err := pool.Query(ctx, `SELECT * FROM pgmq.send_batch('hammer', $1::jsonb[])`, msgs)
					if err != nil {
						fail("producer %d: send_batch: %v", p, err)
						return
					}
					ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
					if err != nil || len(ids) != 5 {
						fail("producer %d: send_batch returned %v, %v", p, ids, err)
						return
					}
					i += 5
					continue
				}
				b, _ := json.Marshal(body{ID: fmt.Sprintf("p%d-%d", p, i), P: p, Seq: i})
				var id int64
				if err := pool.QueryRow(ctx, `SELECT * FROM pgmq.send('hammer', $1::jsonb)`, string(b)).Scan(&id); err != nil {
					fail("producer %d: send: %v", p, err)
					return
				}
				i++
			}
		}(p)
	}

	for w := 0; w < consumers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			idle := 0
			for ctx.Err() == nil {
				if consumed.Load() >= total {
					return
				}
				rows, err := pool.Query(ctx, `SELECT msg_id, read_ct, message FROM pgmq.read('hammer', 30, 5)`)
				if err != nil {
					fail("consumer %d: read: %v", w, err)
					return
				}
				type msg struct {
					ID     int64
					ReadCt int
					Body   body
				}
				var batch []msg
				for rows.Next() {
					var m msg
					var raw []byte
					if err := rows.Scan(&m.ID, &m.ReadCt, &raw); err != nil {
						rows.Close()
						fail("consumer %d: scan: %v", w, err)
						return
					}
					if err := json.Unmarshal(raw, &m.Body); err != nil {
						fail("consumer %d: body %s: %v", w, raw, err)
					}
					batch = append(batch, m)
				}
				if err := rows.Err(); err != nil {
					fail("consumer %d: read: %v", w, err)
					return
				}
				if len(batch) == 0 {
					idle++
					if producersLeft.Load() == 0 && idle > 200 {
						return // nothing more is coming
					}
					time.Sleep(2 * time.Millisecond)
					continue
				}
				idle = 0
				now := time.Now()
				ids := make([]int64, len(batch))
				mu.Lock()
				for i, m := range batch {
					ids[i] = m.ID
					if !expected[m.Body.ID] {
						unexpected = append(unexpected, m.Body.ID)
						continue
					}
					d := delivered[m.Body.ID]
					if d == nil {
						delivered[m.Body.ID] = &delivery{msgID: m.ID, at: now, count: 1}
						continue
					}
					d.count++
					if now.Sub(d.at) < vt {
						failures = append(failures, fmt.Sprintf("%s (msg %d) delivered twice within its vt (%v apart, read_ct %d)",
							m.Body.ID, m.ID, now.Sub(d.at), m.ReadCt))
					}
				}
				mu.Unlock()
				rows, err = pool.Query(ctx, `SELECT * FROM pgmq.delete('hammer', $1::bigint[])`, ids)
				if err != nil {
					fail("consumer %d: delete: %v", w, err)
					return
				}
				deleted, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					fail("consumer %d: delete: %v", w, err)
					return
				}
				if len(deleted) != len(ids) {
					fail("consumer %d: deleted %v of %v: someone else finished our messages", w, deleted, ids)
				}
				consumed.Add(int64(len(batch)))
			}
		}(w)
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("hammer did not finish in time: consumed %d of %d", consumed.Load(), total)
	}
	for _, f := range failures {
		t.Error(f)
	}
	if len(unexpected) > 0 {
		t.Errorf("unexpected messages: %v", unexpected)
	}
	var lost []string
	for id := range expected {
		if delivered[id] == nil {
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("%d messages lost, e.g. %v", len(lost), lost[:min(len(lost), 10)])
	}
	var qlen, totalMsgs int64
	if err := pool.QueryRow(ctx, `SELECT queue_length, total_messages FROM pgmq.metrics('hammer')`).Scan(&qlen, &totalMsgs); err != nil {
		t.Fatal(err)
	}
	if qlen != 0 || totalMsgs != total {
		t.Errorf("metrics: queue_length %d, total_messages %d; want 0 and %d", qlen, totalMsgs, total)
	}
	t.Logf("%d messages sent by %d producers, each received once by %d consumers", total, producers, consumers)
}

// TestSkipLockedReaders: readers inside open transactions never hold the same
// message at the same time, even with vt 0 (messages stay visible, only the
// row lock protects them).
func TestSkipLockedReaders(t *testing.T) {
	const (
		readers = 16
		rounds  = 60
		msgs    = 64
	)
	c, _ := cluster(t)
	db := newDB(t, c)
	pool := newPool(t, c, db, readers+1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := pool.Exec(ctx, `SELECT pgmq.create('skip')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pgmq.send_batch('skip', array_agg(jsonb_build_object('i', i))) FROM generate_series(1, $1::int) i`, msgs); err != nil {
		t.Fatal(err)
	}
	// Part 1: readers never wait. One transaction holds half of the queue;
	// eight concurrent readers (each holding what it got until all have read)
	// must get exactly the other half, disjointly, without blocking.
	holder := connect(t, c, db)
	htx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := htx.Query(ctx, `SELECT msg_id FROM pgmq.read('skip', 0, $1)`, msgs/2)
	if err != nil {
		t.Fatal(err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(held) != msgs/2 {
		t.Fatalf("holder read %d messages (%v), want %d", len(held), err, msgs/2)
	}
	owner := map[int64]int{}
	for _, id := range held {
		owner[id] = -1
	}
	var (
		omu     sync.Mutex
		barrier sync.WaitGroup
		pwg     sync.WaitGroup
		perr    = make(chan error, 8)
	)
	barrier.Add(8)
	for r := 0; r < 8; r++ {
		pwg.Add(1)
		go func(r int) {
			defer pwg.Done()
			arrived := false
			defer func() {
				if !arrived {
					barrier.Done()
				}
			}()
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = '5s'`); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, `SELECT msg_id FROM pgmq.read('skip', 0, 4)`)
				if err != nil {
					return err
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					return err
				}
				omu.Lock()
				for _, id := range ids {
					if o, ok := owner[id]; ok {
						perr <- fmt.Errorf("message %d went to readers %d and %d", id, o, r)
					}
					owner[id] = r
				}
				omu.Unlock()
				if len(ids) != 4 {
					perr <- fmt.Errorf("reader %d got %d messages, want 4", r, len(ids))
				}
				arrived = true
				barrier.Done()
				barrier.Wait() // everyone holds its rows now
				return nil
			})
			if err != nil {
				perr <- fmt.Errorf("reader %d (must never wait on locked rows): %w", r, err)
			}
		}(r)
	}
	pwg.Wait()
	close(perr)
	for err := range perr {
		t.Error(err)
	}
	if len(owner) != msgs {
		t.Errorf("%d distinct messages handed out, want all %d", len(owner), msgs)
	}
	if err := htx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}

	// Part 2: many rounds of concurrent reads in transactions, half rolled back.
	var (
		mu       sync.Mutex
		inFlight = map[int64]int{}
		clashes  []string
		reads    atomic.Int64
		errs     = make(chan error, readers)
		wg       sync.WaitGroup
	)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					rows, err := tx.Query(ctx, `SELECT msg_id FROM pgmq.read('skip', 0, 3)`)
					if err != nil {
						return err
					}
					ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
					if err != nil {
						return err
					}
					mu.Lock()
					for _, id := range ids {
						if other, ok := inFlight[id]; ok {
							clashes = append(clashes, fmt.Sprintf("message %d held by readers %d and %d", id, other, r))
						}
						inFlight[id] = r
					}
					mu.Unlock()
					reads.Add(int64(len(ids)))
					time.Sleep(time.Millisecond) // hold the rows a little
					mu.Lock()
					for _, id := range ids {
						if inFlight[id] == r {
							delete(inFlight, id)
						}
					}
					mu.Unlock()
					if i%2 == 0 {
						return errors.New("rollback") // half of the reads roll back
					}
					return nil
				})
				if err != nil && err.Error() != "rollback" {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
			}
		}(r)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range clashes {
		t.Error(c)
	}
	if reads.Load() == 0 {
		t.Fatal("no message was read")
	}
	// committed reads are counted, rolled-back ones are not
	var sumReadCt int64
	if err := pool.QueryRow(ctx, `SELECT sum(read_ct) FROM pgmq.q_skip`).Scan(&sumReadCt); err != nil {
		t.Fatal(err)
	}
	if sumReadCt <= 0 || sumReadCt >= reads.Load() {
		t.Errorf("sum(read_ct) = %d after %d deliveries of which about half rolled back", sumReadCt, reads.Load())
	}
	t.Logf("%d deliveries, %d committed, no message held by two readers", reads.Load(), sumReadCt)
}

// TestFIFOConcurrentReaders: concurrent grouped readers never hand out a
// later message of a group while an earlier one is in flight; every message
// is handed out exactly once.
func TestFIFOConcurrentReaders(t *testing.T) {
	for _, fn := range []string{"read_grouped", "read_grouped_rr", "read_grouped_head"} {
		t.Run(fn, func(t *testing.T) { fifoHammer(t, fn) })
	}
}

func fifoHammer(t *testing.T, fn string) {
	const (
		groups   = 12
		perGroup = 30
		total    = groups * perGroup
		readers  = 8
	)
	c, _ := cluster(t)
	db := newDB(t, c)
	pool := newPool(t, c, db, readers+1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := pool.Exec(ctx, `SELECT pgmq.create('fifo')`); err != nil {
		t.Fatal(err)
	}
	// interleaved: message k belongs to group k % groups; the last group has no
	// header at all (the default group)
	if _, err := pool.Exec(ctx, `
		SELECT pgmq.send_batch('fifo',
		         array_agg(jsonb_build_object('k', k) ORDER BY k),
		         array_agg(CASE WHEN k % $1 = $1 - 1 THEN NULL
		                        ELSE jsonb_build_object('x-pgmq-group', 'g' || (k % $1)) END ORDER BY k))
		  FROM generate_series(0, $2 - 1) k`, groups, total); err != nil {
		t.Fatal(err)
	}
	// msg_id = k + 1
	groupOf := func(id int64) int { return int((id - 1) % groups) }

	var (
		mu       sync.Mutex
		released = map[int64]bool{} // finished (delete issued) messages
		handed   = map[int64]int{}
		problems []string
		done     atomic.Int64
		wg       sync.WaitGroup
	)
	query := fmt.Sprintf(`SELECT msg_id FROM pgmq.%s('fifo', 30, 4)`, fn)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			idle := 0
			for ctx.Err() == nil && done.Load() < total {
				rows, err := pool.Query(ctx, query)
				if err != nil {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("reader %d: %v", r, err))
					mu.Unlock()
					return
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("reader %d: %v", r, err))
					mu.Unlock()
					return
				}
				if len(ids) == 0 {
					idle++
					if idle > 5000 {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				idle = 0
				sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
				inBatch := map[int64]bool{}
				for _, id := range ids {
					inBatch[id] = true
				}
				mu.Lock()
				for _, id := range ids {
					handed[id]++
					if handed[id] > 1 {
						problems = append(problems, fmt.Sprintf("message %d handed out %d times", id, handed[id]))
					}
					g := groupOf(id)
					for prev := id - groups; prev >= 1; prev -= groups {
						if groupOf(prev) != g {
							panic("bad group arithmetic")
						}
						if !released[prev] && !inBatch[prev] {
							problems = append(problems, fmt.Sprintf("%s handed out message %d of group %d while %d was not finished", fn, id, g, prev))
							break
						}
					}
				}
				mu.Unlock()
				// finish in order, one at a time
				for _, id := range ids {
					mu.Lock()
					released[id] = true
					mu.Unlock()
					var ok bool
					if err := pool.QueryRow(ctx, `SELECT pgmq.delete('fifo', $1::bigint)`, id).Scan(&ok); err != nil || !ok {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("reader %d: delete %d: %v %v", r, id, ok, err))
						mu.Unlock()
					}
					done.Add(1)
				}
			}
		}(r)
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if done.Load() != total {
		t.Fatalf("%d of %d messages finished", done.Load(), total)
	}
	if len(handed) != total {
		t.Errorf("%d distinct messages handed out, want %d", len(handed), total)
	}
}

// TestNotifyAfterCommitThrottled: an insert notification arrives only after
// the sending transaction commits, never for a rollback, and at most once per
// throttle interval.
func TestNotifyAfterCommitThrottled(t *testing.T) {
	c, _ := cluster(t)
	db := newDB(t, c)
	pool := newPool(t, c, db, 4)
	listener := connect(t, c, db)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const channel = "pgmq.q_Notify_Go.INSERT"
	for _, s := range []string{
		`SELECT pgmq.create('Notify_Go')`,
		`SELECT pgmq.enable_notify_insert('Notify_Go', 0)`,
	} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := listener.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	wait := func(d time.Duration) (bool, time.Time) {
		wctx, wcancel := context.WithTimeout(ctx, d)
		defer wcancel()
		n, err := listener.WaitForNotification(wctx)
		if err != nil {
			if wctx.Err() != nil {
				return false, time.Time{}
			}
			t.Fatalf("WaitForNotification: %v", err)
		}
		if n.Channel != channel || n.Payload != "" {
			t.Errorf("notification on %q with payload %q", n.Channel, n.Payload)
		}
		return true, time.Now()
	}

	// nothing before commit, one notification after
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := tx.Exec(ctx, `SELECT pgmq.send('Notify_Go', '{}')`); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := wait(300 * time.Millisecond); got {
		t.Error("notification before commit")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := wait(5 * time.Second); !got {
		t.Fatal("no notification after commit")
	}
	if got, _ := wait(300 * time.Millisecond); got {
		t.Error("identical notifications of one transaction were not folded into one")
	}

	// a rolled-back send notifies nobody
	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pgmq.send('Notify_Go', '{}')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := wait(500 * time.Millisecond); got {
		t.Error("notification for a rolled-back send")
	}

	// throttled: sends every 20 ms for 2 s with a 400 ms interval
	const interval = 400 * time.Millisecond
	if _, err := pool.Exec(ctx, `SELECT pgmq.update_notify_insert('Notify_Go', $1)`, int(interval/time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sendErr := make(chan error, 1)
	go func() {
		defer close(sendErr)
		for time.Since(start) < 2*time.Second {
			if _, err := pool.Exec(ctx, `SELECT pgmq.send('Notify_Go', '{}')`); err != nil {
				sendErr <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var times []time.Time
	for {
		got, at := wait(time.Second)
		if !got {
			break
		}
		times = append(times, at)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	maxN := int(elapsed/interval) + 1
	if len(times) < 2 || len(times) > maxN {
		t.Errorf("%d notifications in %v with a %v throttle; want between 2 and %d", len(times), elapsed, interval, maxN)
	}
	for i := 1; i < len(times); i++ {
		// the throttle is measured on the server; allow for delivery jitter
		if gap := times[i].Sub(times[i-1]); gap < interval-150*time.Millisecond {
			t.Errorf("notifications %d and %d only %v apart (throttle %v)", i-1, i, gap, interval)
		}
	}
	t.Logf("%d notifications for ~100 sends in %v", len(times), elapsed)
}
