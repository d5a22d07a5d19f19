package metrics

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func TestDepthCollector(t *testing.T) {
	c := testenv.Cluster(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, c.ConnString("mq", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // runs after the drops below (cleanups run last-in first-out)
	drop := func() {
		for _, q := range []string{"depth_a", "Depth_B", "depth_c"} {
			if _, err := pool.Exec(context.Background(), "SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = $1", q); err != nil {
				t.Errorf("drop %s: %v", q, err)
			}
		}
	}
	drop()
	t.Cleanup(drop)
	setup := []string{
		"SELECT pgmq.create('depth_a')",
		"SELECT pgmq.create('Depth_B')",
		"SELECT pgmq.create('depth_c')",
		// depth_a: 3 visible, 1 in flight, 2 delayed
		"SELECT pgmq.send_batch('depth_a', ARRAY['{}','{}','{}','{}']::jsonb[])",
		"SELECT count(*) FROM pgmq.read('depth_a', 300, 1)",
		"SELECT pgmq.send_batch('depth_a', ARRAY['{}','{}']::jsonb[], 600)",
		"SELECT pgmq.send('Depth_B', '{}')",
	}
	for _, s := range setup {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}

	reg := prometheus.NewPedanticRegistry()
	queues := NewQueues(reg, 10)
	d := NewDepthCollector(pool, zap.NewNop(), 2, 5*time.Second, time.Hour).LabelQueues(queues)
	reg.MustRegister(d)
	want := `
# HELP mqstack_queue_delayed_messages Messages never read whose delay has not passed.
# TYPE mqstack_queue_delayed_messages gauge
mqstack_queue_delayed_messages{datname="postgres",queue_name="Depth_B"} 0
mqstack_queue_delayed_messages{datname="postgres",queue_name="depth_a"} 2
# HELP mqstack_queue_in_flight_messages Messages read and not yet visible again.
# TYPE mqstack_queue_in_flight_messages gauge
mqstack_queue_in_flight_messages{datname="postgres",queue_name="Depth_B"} 0
mqstack_queue_in_flight_messages{datname="postgres",queue_name="depth_a"} 1
# HELP mqstack_queue_visible_messages Messages a read would return now.
# TYPE mqstack_queue_visible_messages gauge
mqstack_queue_visible_messages{datname="postgres",queue_name="Depth_B"} 1
mqstack_queue_visible_messages{datname="postgres",queue_name="depth_a"} 3
# HELP pgmq_queue_length Messages in the queue (pgmq.metrics queue_length).
# TYPE pgmq_queue_length gauge
pgmq_queue_length{datname="postgres",queue_name="Depth_B"} 1
pgmq_queue_length{datname="postgres",queue_name="depth_a"} 6
# HELP pgmq_total_messages Messages ever sent to the queue (its msg_id sequence).
# TYPE pgmq_total_messages gauge
pgmq_total_messages{datname="postgres",queue_name="Depth_B"} 1
pgmq_total_messages{datname="postgres",queue_name="depth_a"} 6
# HELP mqstack_queue_depth_queues Queues in pgmq.meta; only the first max_queues are measured.
# TYPE mqstack_queue_depth_queues gauge
mqstack_queue_depth_queues{datname="postgres"} 3
# HELP mqstack_queue_depth_scrape_success 1 if the last depth query succeeded.
# TYPE mqstack_queue_depth_scrape_success gauge
mqstack_queue_depth_scrape_success 1
`
	names := []string{"mqstack_queue_delayed_messages", "mqstack_queue_in_flight_messages", "mqstack_queue_visible_messages",
		"pgmq_queue_length", "pgmq_total_messages", "mqstack_queue_depth_queues", "mqstack_queue_depth_scrape_success"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// The queues it measured have labels of their own; depth_c, not
	// measured (max 2), has none yet.
	for q, want := range map[string]string{"depth_a": "depth_a", "Depth_B": "depth_b", "depth_c": OtherQueue} {
		if got := queues.QueueLabel(q); got != want {
			t.Errorf("label of %s: %q, want %q", q, got, want)
		}
	}
	// Same values as pgmq.metrics() for the gauges Tembo's dashboards plot.
	var length, total int64
	if err := pool.QueryRow(ctx, "SELECT queue_length, total_messages FROM pgmq.metrics('depth_a')").Scan(&length, &total); err != nil {
		t.Fatal(err)
	}
	if length != 6 || total != 6 {
		t.Fatalf("pgmq.metrics says length %d total %d", length, total)
	}
	// The answer is cached: a new message is not seen until the TTL passes.
	pool.Exec(ctx, "SELECT pgmq.send('depth_a', '{}')")
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pgmq_queue_length"); err != nil {
		t.Fatalf("cache not used: %v", err)
	}
}

func TestDepthCollectorFailure(t *testing.T) {
	c := testenv.Cluster(t)
	pool, err := pgxpool.New(context.Background(), c.ConnString("mq", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	pool.Close() // every query now fails
	d := NewDepthCollector(pool, zap.NewNop(), 10, time.Second, 0)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(d)
	want := "# HELP mqstack_queue_depth_scrape_success 1 if the last depth query succeeded.\n# TYPE mqstack_queue_depth_scrape_success gauge\nmqstack_queue_depth_scrape_success 0\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mqstack_queue_depth_scrape_success", "pgmq_queue_length"); err != nil {
		t.Fatal(err)
	}
}
