package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// vtSeconds is the visibility timeout of every read: short, so messages a
// failed consumer leaves invisible come back during the drain.
const vtSeconds = 2

// mix says how many clients of each kind a load runs.
type mix struct {
	ProxyProducers, ProxyConsumers, RESTProducers, RESTConsumers int
}

// defaultMix is 36 clients against a pool of 8.
var defaultMix = mix{ProxyProducers: 10, ProxyConsumers: 10, RESTProducers: 8, RESTConsumers: 8}

func (m mix) total() int {
	return m.ProxyProducers + m.ProxyConsumers + m.RESTProducers + m.RESTConsumers
}

// load is producers and consumers working on one queue through the proxy
// and REST at once, behaving as real workers: an error makes them retry
// (reconnecting when the connection is gone) after a short backoff.
type load struct {
	e     *env
	led   *ledger
	queue string

	producing atomic.Bool
	consuming atomic.Bool
	prodWG    sync.WaitGroup
	consWG    sync.WaitGroup

	// statistics
	sendOps, readOps atomic.Int64
	errs             sync.Map // error kind -> *atomic.Int64
	errSample        sync.Map // error kind -> first error text
	hc               *http.Client
}

func startLoad(t testing.TB, e *env, queue string, m mix) *load {
	t.Helper()
	e.createQueue(t, queue)
	l := &load{e: e, led: newLedger(queue), queue: queue,
		hc: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	l.producing.Store(true)
	l.consuming.Store(true)
	for i := range m.ProxyProducers {
		l.prodWG.Add(1)
		go l.proxyProducer(fmt.Sprintf("pp%d", i), i%2 == 0)
	}
	for i := range m.RESTProducers {
		l.prodWG.Add(1)
		go l.restProducer(fmt.Sprintf("rp%d", i))
	}
	for i := range m.ProxyConsumers {
		l.consWG.Add(1)
		go l.proxyConsumer(fmt.Sprintf("pc%d", i), i%2 == 0)
	}
	for i := range m.RESTConsumers {
		l.consWG.Add(1)
		go l.restConsumer(fmt.Sprintf("rc%d", i))
	}
	return l
}

func (l *load) countErr(kind string, err error) {
	v, _ := l.errs.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	l.errSample.LoadOrStore(kind, err.Error())
}

// errSamples is one error text per kind, for the log.
// errCount is how many errors of kind (see errKind) the workers had.
func (l *load) errCount(kind string) int64 {
	if v, ok := l.errs.Load(kind); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// waitProgress waits until the load has acknowledged and delivered n more
// messages than it had at (acked, delivered).
func (l *load) waitProgress(t testing.TB, acked, delivered, n int, what string) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("%d more messages acknowledged and delivered %s", n, what), func() bool {
		a, d := l.led.progress()
		return a >= acked+n && d >= delivered+n
	})
}

func (l *load) errSamples() string {
	var b bytes.Buffer
	l.errSample.Range(func(k, v any) bool {
		fmt.Fprintf(&b, "\n  %s: %.300s", k, v)
		return true
	})
	return b.String()
}

func (l *load) errSummary() string {
	var b bytes.Buffer
	l.errs.Range(func(k, v any) bool {
		fmt.Fprintf(&b, "%s=%d ", k, v.(*atomic.Int64).Load())
		return true
	})
	return b.String()
}

func errKind(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "conn"
}

// finish stops the producers, lets the consumers empty the queue (messages
// left invisible come back after their vt), stops them and returns the
// accounting against the tables.
func (l *load) finish(t testing.TB, drainTimeout time.Duration) counts {
	t.Helper()
	l.producing.Store(false)
	l.prodWG.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout+30*time.Second)
	defer cancel()
	dc, err := l.e.direct(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close(context.Background())
	deadline := time.Now().Add(drainTimeout)
	for {
		var n int
		if err := dc.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM pgmq.%s", pgx.Identifier{"q_" + l.queue}.Sanitize())).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("queue %s not drained after %s: %d messages left (errors: %s)", l.queue, drainTimeout, n, l.errSummary())
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	l.consuming.Store(false)
	l.consWG.Wait()
	l.hc.CloseIdleConnections()
	return l.account(t, dc)
}

// stop ends every worker without draining (graceful shutdown test).
func (l *load) stop() {
	l.producing.Store(false)
	l.consuming.Store(false)
	l.prodWG.Wait()
	l.consWG.Wait()
	l.hc.CloseIdleConnections()
}

func (l *load) account(t testing.TB, dc *pgx.Conn) counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, a, err := snapshot(ctx, dc, l.queue)
	if err != nil {
		t.Fatal(err)
	}
	return l.led.check(q, a)
}

// ---- wire clients ----

// worker is a pgx connection through the proxy that reconnects on demand.
type worker struct {
	l      *load
	name   string
	simple bool
	conn   *pgx.Conn
}

func (w *worker) get(ctx context.Context) (*pgx.Conn, error) {
	if w.conn != nil && !w.conn.IsClosed() {
		return w.conn, nil
	}
	cfg, err := pgx.ParseConfig(w.l.e.connString())
	if err != nil {
		return nil, err
	}
	if w.simple {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	w.conn = c
	return c, nil
}

// failed handles an error the way a worker does: count it, drop a broken
// connection, back off.
func (w *worker) failed(err error) {
	w.l.countErr(errKind(err), err)
	if w.conn != nil && (w.conn.IsClosed() || errKind(err) == "conn" || errKind(err) == "timeout") {
		w.conn.Close(context.Background())
		w.conn = nil
	}
	time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
}

func (w *worker) close() {
	if w.conn != nil {
		w.conn.Close(context.Background())
	}
}

// sendOutcome: a statement refused by the proxy for want of a backend
// (53300) never ran; any other error in autocommit may have committed.
func sendOutcome(err error) outcome {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53300" {
		return failed
	}
	return unknown
}

func (l *load) proxyProducer(name string, inTx bool) {
	defer l.prodWG.Done()
	w := &worker{l: l, name: name, simple: inTx}
	defer w.close()
	for i := 0; l.producing.Load(); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := w.produce(ctx, i, inTx)
		cancel()
		if err != nil {
			w.failed(err)
			continue
		}
		l.sendOps.Add(1)
		time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond) // think time: the load's pace, not a wait
	}
}

func body(uid string) string { return fmt.Sprintf(`{"uid":%q,"pad":"0123456789"}`, uid) }

func (w *worker) produce(ctx context.Context, i int, inTx bool) error {
	l := w.l
	c, err := w.get(ctx)
	if err != nil {
		return err
	}
	switch {
	case inTx:
		// Two sends in one transaction: both land at COMMIT or neither.
		uids := []string{l.led.uid(w.name), l.led.uid(w.name)}
		tx, err := c.Begin(ctx)
		if err != nil {
			l.led.sent(uids, nil, failed)
			return err
		}
		ids := make([]int64, 2)
		for j, u := range uids {
			if err := tx.QueryRow(ctx, "SELECT pgmq.send($1, $2::jsonb)", l.queue, body(u)).Scan(&ids[j]); err != nil {
				tx.Rollback(context.Background())
				l.led.sent(uids, nil, failed)
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			l.led.sent(uids, nil, unknown)
			return err
		}
		l.led.sent(uids, ids, acked)
	case i%3 == 2:
		uids := []string{l.led.uid(w.name), l.led.uid(w.name), l.led.uid(w.name)}
		msgs := []string{body(uids[0]), body(uids[1]), body(uids[2])}
		rows, err := c.Query(ctx, "SELECT * FROM pgmq.send_batch($1, $2::jsonb[])", l.queue, msgs)
		if err != nil {
			l.led.sent(uids, nil, sendOutcome(err))
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) != 3 {
			l.led.sent(uids, nil, sendOutcome(err))
			if err == nil {
				err = fmt.Errorf("send_batch gave %d ids", len(ids))
			}
			return err
		}
		l.led.sent(uids, ids, acked)
	default:
		uid := l.led.uid(w.name)
		var id int64
		if err := c.QueryRow(ctx, "SELECT pgmq.send($1, $2::jsonb)", l.queue, body(uid)).Scan(&id); err != nil {
			l.led.sent([]string{uid}, nil, sendOutcome(err))
			return err
		}
		l.led.sent([]string{uid}, []int64{id}, acked)
	}
	return nil
}

func (l *load) proxyConsumer(name string, inTx bool) {
	defer l.consWG.Done()
	w := &worker{l: l, name: name, simple: !inTx}
	defer w.close()
	for l.consuming.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n, err := w.consume(ctx, inTx)
		cancel()
		if err != nil {
			w.failed(err)
			continue
		}
		l.readOps.Add(1)
		if n == 0 {
			time.Sleep(30 * time.Millisecond) // the queue is empty: poll again a little later
		}
	}
}

const readSQL = "SELECT msg_id, last_read_at, vt, coalesce(message->>'uid', '') FROM pgmq.read($1, $2, $3)"

func scanDeliveries(rows pgx.Rows, via string) ([]delivery, error) {
	var ds []delivery
	for rows.Next() {
		d := delivery{via: via}
		if err := rows.Scan(&d.msgID, &d.readAt, &d.vt, &d.uid); err != nil {
			rows.Close()
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

func (w *worker) consume(ctx context.Context, inTx bool) (int, error) {
	l := w.l
	c, err := w.get(ctx)
	if err != nil {
		return 0, err
	}
	if inTx {
		// Read and delete in one transaction: both count only at COMMIT.
		tx, err := c.Begin(ctx)
		if err != nil {
			return 0, err
		}
		rows, err := tx.Query(ctx, readSQL, l.queue, vtSeconds, 4)
		if err != nil {
			tx.Rollback(context.Background())
			return 0, err
		}
		ds, err := scanDeliveries(rows, w.name)
		if err != nil {
			tx.Rollback(context.Background())
			return 0, err
		}
		ids := make([]int64, len(ds))
		for i, d := range ds {
			ids[i] = d.msgID
		}
		if len(ids) > 0 {
			if _, err := tx.Exec(ctx, "SELECT pgmq.delete($1, $2::bigint[])", l.queue, ids); err != nil {
				tx.Rollback(context.Background())
				return 0, err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			l.led.removed(ids, false, unknown)
			return 0, err
		}
		l.led.delivered(ds)
		l.led.removed(ids, false, acked)
		return len(ds), nil
	}
	rows, err := c.Query(ctx, readSQL, l.queue, vtSeconds, 5)
	if err != nil {
		return 0, err
	}
	ds, err := scanDeliveries(rows, w.name)
	if err != nil {
		return 0, err
	}
	l.led.delivered(ds)
	for _, d := range ds {
		archive := d.msgID%3 == 0
		fn := "pgmq.delete"
		if archive {
			fn = "pgmq.archive"
		}
		var ok bool
		if err := c.QueryRow(ctx, "SELECT "+fn+"($1, $2::bigint)", l.queue, d.msgID).Scan(&ok); err != nil {
			l.led.removed([]int64{d.msgID}, archive, sendOutcome(err))
			return len(ds), err
		}
		if ok {
			l.led.removed([]int64{d.msgID}, archive, acked)
		}
	}
	return len(ds), nil
}

// ---- REST clients ----

// post calls a REST function; a non-2xx answer is an error with the status.
func (l *load) post(ctx context.Context, fn string, args any, out any) error {
	b, _ := json.Marshal(args)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.e.restURL(fn), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+restToken(l.e))
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{status: resp.StatusCode, body: string(data)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %.200s", e.status, e.body) }

var tokens sync.Map // *env -> token

func restToken(e *env) string {
	if v, ok := tokens.Load(e); ok {
		return v.(string)
	}
	tok := testenv.Token(e.t, testSecret, auth.MintOptions{TTL: 2 * time.Hour})
	tokens.Store(e, tok)
	return tok
}

func restErrKind(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		return fmt.Sprintf("http%d", he.status)
	}
	return "http_conn"
}

func (l *load) restProducer(name string) {
	defer l.prodWG.Done()
	for i := 0; l.producing.Load(); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var err error
		if i%3 == 2 {
			uids := []string{l.led.uid(name), l.led.uid(name)}
			var ids []int64
			msgs := []json.RawMessage{json.RawMessage(body(uids[0])), json.RawMessage(body(uids[1]))}
			err = l.post(ctx, "send_batch", map[string]any{"queue_name": l.queue, "msgs": msgs}, &ids)
			if err == nil && len(ids) != 2 {
				err = fmt.Errorf("send_batch gave %d ids", len(ids))
			}
			if err != nil {
				l.led.sent(uids, nil, unknown)
			} else {
				l.led.sent(uids, ids, acked)
			}
		} else {
			uid := l.led.uid(name)
			var ids []int64
			err = l.post(ctx, "send", map[string]any{"queue_name": l.queue, "msg": json.RawMessage(body(uid))}, &ids)
			if err == nil && len(ids) != 1 {
				err = fmt.Errorf("send gave %d ids", len(ids))
			}
			if err != nil {
				l.led.sent([]string{uid}, nil, unknown)
			} else {
				l.led.sent([]string{uid}, ids, acked)
			}
		}
		cancel()
		if err != nil {
			l.countErr(restErrKind(err), err)
			time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond) // back off, as a client would
			continue
		}
		l.sendOps.Add(1)
		time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond) // think time: the load's pace, not a wait
	}
}

type restMessage struct {
	MsgID      int64     `json:"msg_id"`
	LastReadAt time.Time `json:"last_read_at"`
	VT         time.Time `json:"vt"`
	Message    struct {
		UID string `json:"uid"`
	} `json:"message"`
}

func (l *load) restConsumer(name string) {
	defer l.consWG.Done()
	for l.consuming.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n, err := l.restConsume(ctx, name)
		cancel()
		if err != nil {
			l.countErr(restErrKind(err), err)
			time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond) // back off, as a client would
			continue
		}
		l.readOps.Add(1)
		if n == 0 {
			time.Sleep(30 * time.Millisecond) // the queue is empty: poll again a little later
		}
	}
}

func (l *load) restConsume(ctx context.Context, name string) (int, error) {
	var msgs []restMessage
	if err := l.post(ctx, "read", map[string]any{"queue_name": l.queue, "vt": vtSeconds, "qty": 4}, &msgs); err != nil {
		return 0, err
	}
	ds := make([]delivery, len(msgs))
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		ds[i] = delivery{uid: m.Message.UID, msgID: m.MsgID, readAt: m.LastReadAt, vt: m.VT, via: name}
		ids[i] = m.MsgID
	}
	l.led.delivered(ds)
	if len(ids) == 0 {
		return 0, nil
	}
	archive := ids[0]%2 == 0
	fn := "delete"
	if archive {
		fn = "archive"
	}
	var done []int64
	if err := l.post(ctx, fn, map[string]any{"queue_name": l.queue, "msg_ids": ids}, &done); err != nil {
		l.led.removed(ids, archive, unknown)
		return len(ids), err
	}
	l.led.removed(done, archive, acked)
	return len(ids), nil
}
