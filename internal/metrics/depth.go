package metrics

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// DB is what the depth collector needs of a connection pool.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// DepthCollector reports queue depth at scrape time: Tembo's pgmq_* gauges
// (same names, labels and meaning as pgmq.metrics()) and mqstack's split of
// the queue into visible, in-flight and delayed messages. It runs one
// bounded query (at most maxQueues queues, under a timeout) and caches the
// answer for ttl, so scrapes from several Prometheus servers cost one query.
type DepthCollector struct {
	db        DB
	log       *zap.Logger
	maxQueues int
	timeout   time.Duration
	ttl       time.Duration

	mu      sync.Mutex
	at      time.Time
	rows    []depthRow
	queues  int // queues in pgmq.meta, measured or not
	datname string
	err     error
	took    time.Duration

	descs map[string]*prometheus.Desc
	// labels, when set, learns the queues each query finds (LabelQueues).
	labels *Queues
}

type depthRow struct {
	queue                      string
	length, total              int64
	newest, oldest             *int64
	visible, inFlight, delayed int64
	oldestVisible              *float64
}

var _ prometheus.Collector = (*DepthCollector)(nil)

// NewDepthCollector returns a collector querying db. Register it yourself.
func NewDepthCollector(db DB, log *zap.Logger, maxQueues int, timeout, ttl time.Duration) *DepthCollector {
	q := []string{"queue_name", "datname"}
	d := &DepthCollector{db: db, log: log, maxQueues: maxQueues, timeout: timeout, ttl: ttl, descs: map[string]*prometheus.Desc{
		"pgmq_queue_length":       prometheus.NewDesc("pgmq_queue_length", "Messages in the queue (pgmq.metrics queue_length).", q, nil),
		"pgmq_oldest_msg_age_sec": prometheus.NewDesc("pgmq_oldest_msg_age_sec", "Age in seconds of the oldest message in the queue.", q, nil),
		"pgmq_newest_msg_age_sec": prometheus.NewDesc("pgmq_newest_msg_age_sec", "Age in seconds of the newest message in the queue.", q, nil),
		"pgmq_total_messages":     prometheus.NewDesc("pgmq_total_messages", "Messages ever sent to the queue (its msg_id sequence).", q, nil),
		"visible":                 prometheus.NewDesc("mqstack_queue_visible_messages", "Messages a read would return now.", q, nil),
		"in_flight":               prometheus.NewDesc("mqstack_queue_in_flight_messages", "Messages read and not yet visible again.", q, nil),
		"delayed":                 prometheus.NewDesc("mqstack_queue_delayed_messages", "Messages never read whose delay has not passed.", q, nil),
		"oldest_visible":          prometheus.NewDesc("mqstack_queue_oldest_visible_age_seconds", "Age of the oldest visible message.", q, nil),
		"queues":                  prometheus.NewDesc("mqstack_queue_depth_queues", "Queues in pgmq.meta; only the first max_queues are measured.", []string{"datname"}, nil),
		"success":                 prometheus.NewDesc("mqstack_queue_depth_scrape_success", "1 if the last depth query succeeded.", nil, nil),
		"duration":                prometheus.NewDesc("mqstack_queue_depth_scrape_duration_seconds", "Duration of the last depth query.", nil, nil),
	}}
	return d
}

// LabelQueues makes the queues each depth query measures known to q, so
// that they get per-queue labels of their own (within metrics.max_queues)
// before any call on them succeeded. It returns d.
func (d *DepthCollector) LabelQueues(q *Queues) *DepthCollector {
	d.labels = q
	return d
}

// Describe sends every descriptor.
func (d *DepthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range d.descs {
		ch <- desc
	}
}

// Collect queries (or uses the cached answer) and sends the gauges.
func (d *DepthCollector) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	if d.at.IsZero() || time.Since(d.at) >= d.ttl {
		start := time.Now()
		d.rows, d.queues, d.datname, d.err = d.query()
		d.took = time.Since(start)
		d.at = time.Now()
		if d.err != nil {
			d.log.Warn("queue depth query failed", zap.Error(d.err))
		} else if d.labels != nil {
			for _, r := range d.rows {
				d.labels.Admit(r.queue)
			}
		}
	}
	rows, queues, datname, err, took := d.rows, d.queues, d.datname, d.err, d.took
	d.mu.Unlock()

	ok := 1.0
	if err != nil {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(d.descs["success"], prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(d.descs["duration"], prometheus.GaugeValue, took.Seconds())
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(d.descs["queues"], prometheus.GaugeValue, float64(queues), datname)
	gauge := func(name string, v float64, queue string) {
		ch <- prometheus.MustNewConstMetric(d.descs[name], prometheus.GaugeValue, v, queue, datname)
	}
	for _, r := range rows {
		gauge("pgmq_queue_length", float64(r.length), r.queue)
		gauge("pgmq_total_messages", float64(r.total), r.queue)
		if r.oldest != nil {
			gauge("pgmq_oldest_msg_age_sec", float64(*r.oldest), r.queue)
		}
		if r.newest != nil {
			gauge("pgmq_newest_msg_age_sec", float64(*r.newest), r.queue)
		}
		gauge("visible", float64(r.visible), r.queue)
		gauge("in_flight", float64(r.inFlight), r.queue)
		gauge("delayed", float64(r.delayed), r.queue)
		if r.oldestVisible != nil {
			gauge("oldest_visible", *r.oldestVisible, r.queue)
		}
	}
}

func (d *DepthCollector) query() ([]depthRow, int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	var names []string
	var datname string
	rows, err := d.db.Query(ctx, `SELECT m.queue_name::text, current_database()::text FROM pgmq.meta m
		WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		              WHERE n.nspname = 'pgmq' AND c.relname = 'q_' || lower(m.queue_name))
		ORDER BY m.queue_name`)
	if err != nil {
		return nil, 0, "", err
	}
	total := 0
	for rows.Next() {
		var n string
		if err := rows.Scan(&n, &datname); err != nil {
			rows.Close()
			return nil, 0, "", err
		}
		total++
		if len(names) < d.maxQueues {
			names = append(names, n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, "", err
	}
	if len(names) == 0 {
		return nil, total, datname, nil
	}
	sql, args := depthSQL(names)
	rows, err = d.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, 0, "", err
	}
	defer rows.Close()
	var out []depthRow
	for rows.Next() {
		var r depthRow
		if err := rows.Scan(&r.queue, &r.length, &r.newest, &r.oldest, &r.total, &r.visible, &r.inFlight, &r.delayed, &r.oldestVisible); err != nil {
			return nil, 0, "", err
		}
		out = append(out, r)
	}
	return out, total, datname, rows.Err()
}

// depthSQL builds one UNION ALL over the queues' tables. Ages follow
// pgmq.metrics (now(), cast to integer); visibility uses the wall clock as
// read does.
func depthSQL(names []string) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, len(names))
	for i, n := range names {
		if i > 0 {
			b.WriteString("\nUNION ALL\n")
		}
		lq := strings.ToLower(n)
		table := pgx.Identifier{"pgmq", "q_" + lq}.Sanitize()
		seq := pgx.Identifier{"pgmq", "q_" + lq + "_msg_id_seq"}.Sanitize()
		args = append(args, n)
		fmt.Fprintf(&b, `SELECT $%d::text, count(*), extract(epoch FROM now() - max(t.enqueued_at))::int::bigint,
  extract(epoch FROM now() - min(t.enqueued_at))::int::bigint,
  (SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END FROM %s s),
  count(*) FILTER (WHERE t.vt <= clock_timestamp()),
  count(*) FILTER (WHERE t.vt > clock_timestamp() AND t.read_ct > 0),
  count(*) FILTER (WHERE t.vt > clock_timestamp() AND t.read_ct = 0),
  extract(epoch FROM clock_timestamp() - min(t.enqueued_at) FILTER (WHERE t.vt <= clock_timestamp()))::float8
FROM %s t`, i+1, seq, table)
	}
	return b.String(), args
}
