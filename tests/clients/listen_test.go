package clients

import (
	"strings"
	"testing"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// What psql prints for a notification without a payload (pgmq's) and with
// one.
func psqlNote(channel string) string {
	return `Asynchronous notification "` + channel + `" received from server process with PID`
}

func psqlNoteWith(channel, payload string) string {
	return `Asynchronous notification "` + channel + `" with payload "` + payload + `" received from server process with PID`
}

// Metrics the LISTEN tests wait on. The hub's channel count rises only once
// the listener connection's LISTEN has completed, so a notification
// committed after it has reached the count is delivered.
const (
	channelsGauge  = "mqstack_notify_channels"
	listeningGauge = "mqstack_proxy_listening_clients"
	deliveredTotal = "mqstack_proxy_notifications_delivered_total"
)

// psql LISTENs through the proxy as it would on Postgres: a send from
// another client shows as psql's "Asynchronous notification" line; a LISTEN
// in a rolled-back transaction hears nothing; a quoted channel keeps its
// case while an unquoted one folds; after UNLISTEN * nothing arrives.
func TestPsqlListen(t *testing.T) {
	const queue = "PsqlMixed"
	insert := "pgmq.q_" + queue + ".INSERT"
	st := startStack(t, nil)
	tok := testenv.Token(t, testSecret, auth.MintOptions{})
	sender, _ := queueOverProxy(t, st.ProxyAddr(), tok, queue)
	// Throttle 0: every send notifies (the default, 250ms, would drop the
	// second of two quick sends).
	mustExec(t, sender, "SELECT pgmq.enable_notify_insert($1, 0)", queue)
	psql := startPsql(t, st.ProxyAddr(), tok)

	psql.run(`LISTEN "` + insert + `";`)
	waitMetric(t, st, channelsGauge, 1)
	delivered := metric(t, st, deliveredTotal)
	mustExec(t, sender, `SELECT pgmq.send($1, '{"step":1}')`, queue)
	waitMetric(t, st, deliveredTotal, delivered+1)
	psql.run("SELECT 'step 1 done';")

	psql.run("BEGIN;", "LISTEN rolled_back;", "ROLLBACK;", `LISTEN "Quoted_Mixed";`, "LISTEN Unquoted_Mixed;")
	waitMetric(t, st, channelsGauge, 3)
	delivered = metric(t, st, deliveredTotal)
	// What psql must not hear goes first: on one listener connection the
	// notifications keep their order, so once the last two are delivered
	// any wrongly delivered one is too.
	for _, n := range [][2]string{{"rolled_back", "rolled"}, {"quoted_mixed", "wrong case"}, {"Unquoted_Mixed", "wrong case"},
		{"Quoted_Mixed", "quoted"}, {"unquoted_mixed", "folded"}} {
		mustExec(t, sender, "SELECT pg_notify($1, $2)", n[0], n[1])
	}
	waitMetric(t, st, deliveredTotal, delivered+2)
	psql.run("SELECT 'step 2 done';")

	// A second client keeps the insert channel LISTENed on the shared
	// connection, so that after psql's UNLISTEN * its notifications still
	// reach the proxy: only psql's subscription can be missing.
	watcher := listenOverProxy(t, st.ProxyAddr(), tok, insert, "psql_sync")
	waitMetric(t, st, listeningGauge, 2)
	psql.run("UNLISTEN *;")
	waitMetricDown(t, st, listeningGauge, 1)
	mustExec(t, sender, `SELECT pgmq.send($1, '{"step":3}')`, queue)
	mustExec(t, sender, "SELECT pg_notify('Quoted_Mixed', 'after unlisten')")
	mustExec(t, sender, "SELECT pg_notify('psql_sync', 'after unlisten')")
	// The proxy fans notifications out in order: once the watcher has the
	// last one, psql's next statement would carry any that reached it.
	for _, want := range []string{insert, "psql_sync"} {
		if n := watcher.next(t); n.Channel != want {
			t.Fatalf("watcher got %q, want %q", n.Channel, want)
		}
	}
	psql.run("SELECT 'step 3 done';")
	out := psql.finish()

	for _, c := range []struct {
		line string
		n    int
	}{
		{"step 1 done", 1}, {"step 2 done", 1}, {"step 3 done", 1},
		{psqlNote(insert), 1},
		{psqlNoteWith("Quoted_Mixed", "quoted"), 1},
		{psqlNoteWith("unquoted_mixed", "folded"), 1},
		{"rolled_back", 0}, {"wrong case", 0}, {"after unlisten", 0}, {"ERROR", 0},
	} {
		if got := strings.Count(out, c.line); got != c.n {
			t.Errorf("psql printed %q %d times, want %d", c.line, got, c.n)
		}
	}
	if t.Failed() {
		t.Fatalf("psql output:\n%s", out)
	}
}

// LISTEN on a queue's insert channel needs read on the queue. A token
// without it is refused with 42501 (as is any channel that is not a
// queue's) and its session goes on; a token with read listens and hears the
// send.
func TestPsqlListenNeedsRead(t *testing.T) {
	const queue = "psql_grants"
	insert := "pgmq.q_" + queue + ".INSERT"
	st := startStack(t, nil)
	sender, _ := queueOverProxy(t, st.ProxyAddr(), testenv.Token(t, testSecret, auth.MintOptions{}), queue)
	mustExec(t, sender, "SELECT pgmq.enable_notify_insert($1, 0)", queue)

	noRead := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{
		{Queues: []string{queue}, Ops: []string{"send", "delete", "archive"}}}})
	psql := startPsql(t, st.ProxyAddr(), noRead)
	psql.run(`LISTEN "`+insert+`";`, "LISTEN plain_channel;",
		"SELECT pgmq.send('"+queue+`', '{"by":"limited"}');`, "SELECT 'still working';")
	out := psql.finish()
	if strings.Count(out, "ERROR:  42501") != 2 || !strings.Contains(out, "still working") {
		t.Fatalf("token without read: want two 42501 refusals and a working session, psql printed:\n%s", out)
	}
	if !strings.Contains(out, "\n1\n") && !strings.HasPrefix(out, "1\n") {
		t.Fatalf("the limited token's send after the refusals did not return message id 1:\n%s", out)
	}
	if strings.Contains(out, "Asynchronous notification") {
		t.Fatalf("a refused LISTEN delivered a notification:\n%s", out)
	}
	if got := metric(t, st, listeningGauge); got != 0 {
		t.Fatalf("%s = %v after refused LISTENs, want 0", listeningGauge, got)
	}

	withRead := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{
		{Queues: []string{queue}, Ops: []string{"read"}}}})
	psql = startPsql(t, st.ProxyAddr(), withRead)
	psql.run(`LISTEN "` + insert + `";`)
	waitMetric(t, st, listeningGauge, 1)
	delivered := metric(t, st, deliveredTotal)
	mustExec(t, sender, "SELECT pgmq.send($1, '{}')", queue)
	waitMetric(t, st, deliveredTotal, delivered+1)
	psql.run("SELECT 'read token done';")
	out = psql.finish()
	if strings.Count(out, psqlNote(insert)) != 1 || strings.Contains(out, "ERROR") || !strings.Contains(out, "read token done") {
		t.Fatalf("token with read: want one notification and no error, psql printed:\n%s", out)
	}
}
