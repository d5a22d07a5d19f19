package pgmq_test

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"mqstack/internal/pgembed"
)

// TestDumpRestore: pg_dump writes the schema, CREATE EXTENSION, the config
// tables' rows and every queue and archive table with its data, sequence
// position and notify trigger; the dump restores into an empty database.
func TestDumpRestore(t *testing.T) {
	c, bins := cluster(t)
	src := newDB(t, c)
	conn := connect(t, c, src)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, s := range []string{
		`SELECT pgmq.create('Dump_Q')`,
		`SELECT pgmq.send('Dump_Q', '{"a":1}')`,
		`SELECT pgmq.send('Dump_Q', '{"a":2}')`,
		`SELECT pgmq.archive('Dump_Q', 1)`,
		`SELECT pgmq.enable_notify_insert('Dump_Q', 100)`,
		`SELECT pgmq.bind_topic('d.*', 'Dump_Q')`,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	env := []string{"PGHOST=" + c.SocketDir(), "PGPORT=" + strconv.Itoa(c.Port()), "PGUSER=" + pgembed.Superuser}
	dump := exec.CommandContext(ctx, bins.Path("pg_dump"), "-d", src)
	dump.Env = env
	var out, errb bytes.Buffer
	dump.Stdout, dump.Stderr = &out, &errb
	if err := dump.Run(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, errb.String())
	}
	text := out.String()
	for _, want := range []string{
		"CREATE SCHEMA pgmq;",
		"CREATE EXTENSION IF NOT EXISTS pgmq WITH SCHEMA pgmq;",
		"CREATE TABLE pgmq.q_dump_q (",
		"CREATE TABLE pgmq.a_dump_q (",
		"COPY pgmq.meta ",
		"COPY pgmq.notify_insert_throttle ",
		"COPY pgmq.topic_bindings ",
		"COPY pgmq.q_dump_q ",
		"COPY pgmq.a_dump_q ",
		"SELECT pg_catalog.setval('pgmq.q_dump_q_msg_id_seq', 2, true);",
		"CREATE CONSTRAINT TRIGGER trigger_notify_queue_insert_listeners AFTER INSERT ON pgmq.q_dump_q",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("dump lacks %q", want)
		}
	}
	if strings.Contains(text, "CREATE TABLE pgmq.meta") {
		t.Error("dump creates pgmq.meta itself (it is an extension member)")
	}

	dst := newDBEmpty(t, c)
	restore := exec.CommandContext(ctx, bins.Path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst)
	restore.Env = env
	restore.Stdin = strings.NewReader(text)
	var rerr bytes.Buffer
	restore.Stderr = &rerr
	if err := restore.Run(); err != nil {
		t.Fatalf("restore: %v\n%s", err, rerr.String())
	}
	rconn := connect(t, c, dst)
	var (
		queues, archived, throttle int
		body                       string
		next                       int64
		regex                      string
	)
	if err := rconn.QueryRow(ctx, `SELECT count(*) FROM pgmq.list_queues() WHERE queue_name = 'Dump_Q'`).Scan(&queues); err != nil {
		t.Fatal(err)
	}
	if err := rconn.QueryRow(ctx, `SELECT message::text FROM pgmq.read('Dump_Q', 30, 1)`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if err := rconn.QueryRow(ctx, `SELECT * FROM pgmq.send('Dump_Q', '{}')`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if err := rconn.QueryRow(ctx, `SELECT count(*) FROM pgmq.a_dump_q`).Scan(&archived); err != nil {
		t.Fatal(err)
	}
	if err := rconn.QueryRow(ctx, `SELECT throttle_interval_ms FROM pgmq.list_notify_insert_throttles()`).Scan(&throttle); err != nil {
		t.Fatal(err)
	}
	if err := rconn.QueryRow(ctx, `SELECT compiled_regex FROM pgmq.list_topic_bindings('Dump_Q')`).Scan(&regex); err != nil {
		t.Fatal(err)
	}
	if queues != 1 || body != `{"a": 2}` || next != 3 || archived != 1 || throttle != 100 || regex != `^d\.[^.]+$` {
		t.Errorf("restored: queues %d, message %s, next id %d, archived %d, throttle %d, regex %s",
			queues, body, next, archived, throttle, regex)
	}
}
