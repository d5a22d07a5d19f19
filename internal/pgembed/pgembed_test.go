package pgembed_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/configs"
	"mqstack/internal/pgembed"
	"mqstack/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func connect(t *testing.T, c *pgembed.Cluster, user, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.ConnString(user, db))
	if err != nil {
		t.Fatalf("connect as %s to %s: %v", user, db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestTunedSettingsAreLive(t *testing.T) {
	c := testenv.Cluster(t)
	conn := connect(t, c, pgembed.Superuser, "postgres")
	want, err := configs.Tune(configs.TuneInput{Memory: testenv.TestMemory, CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, s := range want {
		var got string
		if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", s.Name).Scan(&got); err != nil {
			t.Fatalf("SHOW %s: %v", s.Name, err)
		}
		if w := strings.Trim(s.Value, "'"); got != w {
			t.Errorf("SHOW %s = %q, want %q", s.Name, got, w)
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d settings checked", checked)
	}
	// The sized values at 256MiB, worked out from tuning.md by hand.
	for name, w := range map[string]string{"shared_buffers": "76MB", "max_connections": "26", "effective_cache_size": "179MB", "maintenance_work_mem": "64MB"} {
		var got string
		conn.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&got)
		if got != w {
			t.Errorf("SHOW %s = %q, want %q", name, got, w)
		}
	}
	var listen string
	conn.QueryRow(context.Background(), "SHOW listen_addresses").Scan(&listen)
	if listen != "" {
		t.Errorf("listen_addresses = %q, want '' (socket only)", listen)
	}
}

func TestExtensionsInDefaultDBAndTemplate1(t *testing.T) {
	c := testenv.Cluster(t)
	for _, db := range []string{"postgres", "template1"} {
		conn := connect(t, c, pgembed.Superuser, db)
		rows, err := conn.Query(context.Background(), "SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var name, schema string
			rows.Scan(&name, &schema)
			got[name] = schema
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if _, ok := got["pg_stat_statements"]; !ok {
			t.Errorf("%s: pg_stat_statements missing: %v", db, got)
		}
		if got["pg_partman"] != "partman" {
			t.Errorf("%s: pg_partman not in schema partman: %v", db, got)
		}
		if got["pgmq"] != "pgmq" {
			t.Errorf("%s: pgmq not installed in schema pgmq: %v", db, got)
		}
		var owner, version string
		if err := conn.QueryRow(context.Background(), "SELECT pg_get_userbyid(extowner), extversion FROM pg_extension WHERE extname = 'pgmq'").Scan(&owner, &version); err != nil || owner != "mq" || version != "1.13.1" {
			t.Errorf("%s: pgmq owner %q version %q (%v), want mq and 1.13.1", db, owner, version, err)
		}
	}
	// pg_stat_statements works because it is preloaded.
	conn := connect(t, c, pgembed.Superuser, "postgres")
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_statements").Scan(&n); err != nil {
		t.Fatalf("pg_stat_statements not usable: %v", err)
	}
}

func TestDefaultRole(t *testing.T) {
	c := testenv.Cluster(t)
	conn := connect(t, c, pgembed.Superuser, "postgres")
	var super, login bool
	if err := conn.QueryRow(context.Background(), "SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = 'mq'").Scan(&super, &login); err != nil {
		t.Fatalf("role mq: %v", err)
	}
	if super || !login {
		t.Fatalf("mq: superuser=%v login=%v; want a non-superuser login role", super, login)
	}
	mq := connect(t, c, "mq", "postgres")
	var who string
	mq.QueryRow(context.Background(), "SELECT current_user").Scan(&who)
	if who != "mq" {
		t.Fatalf("current_user = %q", who)
	}
	// It cannot create schemas, nor objects in schema public.
	for _, sql := range []string{
		"CREATE SCHEMA mq_probe",
		"CREATE TABLE public.mq_probe (i int)",
		"CREATE FUNCTION public.mq_probe() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
	} {
		_, err := mq.Exec(context.Background(), sql)
		if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("as mq: %s: err = %v, want SQLSTATE 42501", sql, err)
		}
	}
	// In the default database and template1 (so in databases made from
	// it) it may create in schemas pgmq and partman only, and keeps
	// CONNECT and TEMPORARY but not CREATE on the database.
	for _, db := range []string{"postgres", "template1"} {
		var schemas []string
		var create, temp, canConnect bool
		if err := connect(t, c, pgembed.Superuser, db).QueryRow(context.Background(), `
			SELECT (SELECT coalesce(array_agg(nspname::text ORDER BY nspname), '{}') FROM pg_namespace
			         WHERE has_schema_privilege('mq', oid, 'CREATE')),
			       has_database_privilege('mq', current_database(), 'CREATE'),
			       has_database_privilege('mq', current_database(), 'TEMPORARY'),
			       has_database_privilege('mq', current_database(), 'CONNECT')`).Scan(&schemas, &create, &temp, &canConnect); err != nil {
			t.Fatal(err)
		}
		if strings.Join(schemas, ",") != "partman,pgmq" || create || !temp || !canConnect {
			t.Errorf("%s: mq may create in schemas %v, database CREATE=%v TEMPORARY=%v CONNECT=%v; want [partman pgmq], false, true, true", db, schemas, create, temp, canConnect)
		}
	}
	// It can do every queue operation, partitioned queues and drops included.
	for _, sql := range []string{
		"SELECT pgmq.create('x')",
		"SELECT pgmq.drop_queue('x')",
		"CREATE TEMP TABLE mq_probe (i int)",
		"SELECT pgmq.create('role_probe')",
		"SELECT pgmq.send('role_probe', '{\"a\":1}')",
		"SELECT count(*) FROM pgmq.read('role_probe', 30, 1)",
		"SELECT pgmq.create_partitioned('role_probe_part', '100', '1000')",
		"SELECT pgmq.send('role_probe_part', '{}')",
		"SELECT pgmq.drop_queue('role_probe_part')",
		"SELECT pgmq.drop_queue('role_probe')",
	} {
		if _, err := mq.Exec(context.Background(), sql); err != nil {
			t.Fatalf("as mq: %s: %v", sql, err)
		}
	}
	// The pinned search_path stays inside pgmq's functions, pg_partman's
	// session-level set_config() in create_partitioned included.
	var path string
	if err := mq.QueryRow(context.Background(), "SHOW search_path").Scan(&path); err != nil || path != `"$user", public` {
		t.Fatalf("search_path after the queue operations = %q (%v), want the default", path, err)
	}
}

// TestBuiltinShadowsInSchemaPgmq: the default role may create functions and
// operators in schema pgmq, and a session may put pgmq before pg_catalog in
// its search_path; functions there named like the builtins pgmq's functions
// call (clock_timestamp() for vt, lower() for the table name, now() in the
// queue table's default) change nothing. Neither do those with a closer
// signature than the builtin's, which Postgres prefers from any schema on
// the path whatever its order: format(text, text) and format(text, text,
// text) (the builtin is format(text, VARIADIC "any"); pgmq builds every
// queue table's name with it), make_interval(secs integer) (the builtin's
// secs is double precision; vt), and the operator ->>(jsonb, jsonb) (the
// group key headers->>'x-pgmq-group' would take it, the builtin's right
// argument is text). Every pgmq function pins its search_path to
// pg_catalog, pg_temp, without pgmq, and qualifies pgmq's own objects.
func TestBuiltinShadowsInSchemaPgmq(t *testing.T) {
	c := testenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const dropShadows = `DROP OPERATOR IF EXISTS pgmq.->> (jsonb, jsonb);
		DROP FUNCTION IF EXISTS pgmq.now(), pgmq.clock_timestamp(), pgmq.lower(text),
			pgmq.format(text, text), pgmq.format(text, text, text),
			pgmq.make_interval(integer), pgmq.shadow_arrow(jsonb, jsonb)`
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		su := connect(t, c, pgembed.Superuser, "postgres")
		if _, err := su.Exec(ctx, dropShadows+`;
			SELECT pgmq.drop_queue(q)
			  FROM (VALUES ('shadow_probe'), ('shadow_made'), ('shadow_part'), ('shadow_decoy')) v(q)
			 WHERE EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = v.q)`); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	mq := connect(t, c, "mq", "postgres")
	exec := func(sqls ...string) {
		t.Helper()
		for _, sql := range sqls {
			if _, err := mq.Exec(ctx, sql); err != nil {
				t.Fatalf("as mq: %s: %v", sql, err)
			}
		}
	}
	const sessionPath = "pgmq, pg_catalog, public"
	exec(
		"SELECT pgmq.create('shadow_probe')",
		// the table a hijacked lower() or format() would send messages to
		"SELECT pgmq.create('shadow_decoy')",
		`CREATE FUNCTION pgmq.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$`,
		`CREATE FUNCTION pgmq.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$`,
		`CREATE FUNCTION pgmq.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'q_shadow_decoy'::text $$`,
		// format('... pgmq.%I ...', table) and format('... pgmq.%1$I ...%2$s', table, filter)
		// with the decoy's table name
		`CREATE FUNCTION pgmq.format(text, text) RETURNS text LANGUAGE sql
			AS $$ SELECT pg_catalog.format($1, 'q_shadow_decoy') $$`,
		`CREATE FUNCTION pgmq.format(text, text, text) RETURNS text LANGUAGE sql
			AS $$ SELECT pg_catalog.format($1, 'q_shadow_decoy', $3) $$`,
		`CREATE FUNCTION pgmq.make_interval(secs integer) RETURNS interval LANGUAGE sql AS $$ SELECT interval '0' $$`,
		`CREATE FUNCTION pgmq.shadow_arrow(jsonb, jsonb) RETURNS text LANGUAGE sql AS $$ SELECT 'shadow_group'::text $$`,
		`CREATE OPERATOR pgmq.->> (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = pgmq.shadow_arrow)`,
		"SET search_path = "+sessionPath,
	)
	// The shadows are live for the session's own unqualified calls.
	for sql, want := range map[string]string{
		"SELECT lower('X')":                                "q_shadow_decoy",
		"SELECT format('pgmq.%I', 'q_x'::text)":            "pgmq.q_shadow_decoy",
		"SELECT format('%1$I%2$s', 'q_x'::text, ''::text)": "q_shadow_decoy",
		"SELECT make_interval(secs => 30)::text":           "00:00:00",
		`SELECT '{"g":"x"}'::jsonb ->> '"g"'`:              "shadow_group",
	} {
		var got string
		if err := mq.QueryRow(ctx, sql).Scan(&got); err != nil || got != want {
			t.Fatalf("shadow not in effect (%s = %q, %v; want %q); the test proves nothing", sql, got, err, want)
		}
	}

	count := func(table string) int {
		t.Helper()
		var n int
		if err := mq.QueryRow(ctx, "SELECT count(*) FROM pgmq."+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// sendRead sends to queue and reads the message back: it must land in
	// the queue's table, with the wall clock's times. Then two messages of
	// two groups: a grouped read must see both groups.
	sendRead := func(queue string) {
		t.Helper()
		var sent int64
		if err := mq.QueryRow(ctx, `SELECT * FROM pgmq.send($1, '{"n":1}')`, queue).Scan(&sent); err != nil {
			t.Fatalf("send to %s: %v", queue, err)
		}
		if inQueue, inDecoy := count("q_"+queue), count("q_shadow_decoy"); inQueue != 1 || inDecoy != 0 {
			t.Fatalf("after send: %d messages in q_%s, %d in q_shadow_decoy; want 1 and 0", inQueue, queue, inDecoy)
		}
		var (
			id                            int64
			body                          string
			enqueuedNow, vtAhead, readNow bool
		)
		if err := mq.QueryRow(ctx, `
			SELECT msg_id, message OPERATOR(pg_catalog.->>) 'n',
			       enqueued_at > pg_catalog.now() - interval '1 minute',
			       vt > pg_catalog.clock_timestamp() + interval '20 seconds',
			       last_read_at > pg_catalog.now() - interval '1 minute'
			  FROM pgmq.read($1, 30, 1)`, queue).Scan(&id, &body, &enqueuedNow, &vtAhead, &readNow); err != nil {
			t.Fatalf("read from %s: %v", queue, err)
		}
		if id != sent || body != "1" || !enqueuedNow || !vtAhead || !readNow {
			t.Fatalf("read from %s: msg_id %d (sent %d) n=%s, enqueued_at current %v, vt 30 s ahead %v, last_read_at current %v",
				queue, id, sent, body, enqueuedNow, vtAhead, readNow)
		}

		for _, g := range []string{"g1", "g2"} {
			if _, err := mq.Exec(ctx, `SELECT pgmq.send($1, '{}', jsonb_build_object('x-pgmq-group', $2::text))`, queue, g); err != nil {
				t.Fatalf("send to %s, group %s: %v", queue, g, err)
			}
		}
		if inQueue, inDecoy := count("q_"+queue), count("q_shadow_decoy"); inQueue != 3 || inDecoy != 0 {
			t.Fatalf("after the grouped sends: %d messages in q_%s, %d in q_shadow_decoy; want 3 and 0", inQueue, queue, inDecoy)
		}
		// one head per group: the default group's (read above, invisible), g1's and g2's
		var heads int
		if err := mq.QueryRow(ctx, `SELECT count(*) FROM pgmq.read_grouped_head($1, 30, 10)`, queue).Scan(&heads); err != nil {
			t.Fatalf("read_grouped_head from %s: %v", queue, err)
		}
		if heads != 2 {
			t.Fatalf("read_grouped_head from %s: %d messages, want 2 (the heads of g1 and g2)", queue, heads)
		}
	}
	sendRead("shadow_probe")
	// A queue created with the shadows in place: its tables get the right
	// names and enqueued_at defaults to pg_catalog.now().
	exec("SELECT pgmq.create('shadow_made')")
	sendRead("shadow_made")
	// create_partitioned pins the path in its body (pg_partman) and gives
	// the session its own back.
	exec("SELECT pgmq.create_partitioned('shadow_part', '100', '1000')")
	var path string
	if err := mq.QueryRow(ctx, "SHOW search_path").Scan(&path); err != nil || path != sessionPath {
		t.Fatalf("search_path after create_partitioned = %q (%v), want %q", path, err, sessionPath)
	}
	sendRead("shadow_part")

	exec(
		"RESET search_path",
		dropShadows,
		"SELECT pgmq.drop_queue('shadow_probe')",
		"SELECT pgmq.drop_queue('shadow_made')",
		"SELECT pgmq.drop_queue('shadow_part')",
		"SELECT pgmq.drop_queue('shadow_decoy')",
	)
}

func TestPrivateSocketOnly(t *testing.T) {
	c := testenv.Cluster(t)
	st, err := os.Stat(c.SocketDir())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir mode %04o, want 0700", st.Mode().Perm())
	}
	hba, err := os.ReadFile(filepath.Join(c.PGData(), "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, line := range strings.Split(string(hba), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			rules = append(rules, strings.Join(strings.Fields(line), " "))
		}
	}
	if len(rules) != 1 || rules[0] != "local all all trust" {
		t.Fatalf("pg_hba rules = %q, want only the local trust rule", rules)
	}
}

func TestReuseExistingDataDir(t *testing.T) {
	c := testenv.NewCluster(t, testenv.Options{})
	conn := connect(t, c, "mq", "postgres")
	if _, err := conn.Exec(context.Background(), `SELECT pgmq.create('kept'); SELECT pgmq.send('kept', '{"v":42}')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	// What earlier bootstraps granted (CREATE on the databases), and CREATE
	// on schema public: the next start takes it back.
	su := connect(t, c, pgembed.Superuser, "postgres")
	if _, err := su.Exec(context.Background(), "GRANT CREATE ON DATABASE postgres, template1 TO mq; GRANT CREATE ON SCHEMA public TO mq"); err != nil {
		t.Fatal(err)
	}
	su.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(c.PGData())
	c2, err := testenv.Start(dir, testenv.Options{})
	if err != nil {
		t.Fatalf("second start on the same data dir: %v", err)
	}
	defer c2.Stop(context.Background())
	var v int
	if err := connect(t, c2, "mq", "postgres").QueryRow(context.Background(), "SELECT (message->>'v')::int FROM pgmq.read('kept', 30, 1)").Scan(&v); err != nil || v != 42 {
		t.Fatalf("data not kept across restarts: v=%d err=%v", v, err)
	}
	for _, db := range []string{"postgres", "template1"} {
		var dbCreate, publicCreate bool
		if err := connect(t, c2, pgembed.Superuser, db).QueryRow(context.Background(),
			"SELECT has_database_privilege('mq', current_database(), 'CREATE'), has_schema_privilege('mq', 'public', 'CREATE')").Scan(&dbCreate, &publicCreate); err != nil {
			t.Fatal(err)
		}
		if dbCreate || publicCreate {
			t.Errorf("%s after a restart: mq has CREATE on the database %v, on schema public %v; want neither", db, dbCreate, publicCreate)
		}
	}
	// A second start while it runs is refused with a clear message.
	_, err = testenv.Start(dir, testenv.Options{})
	if err == nil || !strings.Contains(err.Error(), "already running") || !configs.IsConfigError(err) {
		t.Fatalf("start on a running cluster: err = %v", err)
	}
}

func TestPostgresDeathIsReported(t *testing.T) {
	c := testenv.NewCluster(t, testenv.Options{})
	pidData, err := os.ReadFile(filepath.Join(c.PGData(), "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(pidData), "\n", 2)[0])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the postmaster was killed")
	}
	err = c.Err()
	if err == nil || !strings.Contains(err.Error(), "exited unexpectedly") || !strings.Contains(err.Error(), "postgres.log") {
		t.Fatalf("Err() = %v; want an explanation with the log tail", err)
	}
}

func TestBadStartLeavesNothing(t *testing.T) {
	parent, err := testenv.TempDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(parent)
	dir := filepath.Join(parent, "fresh")
	_, err = testenv.Start(dir, testenv.Options{Settings: map[string]string{"shared_buffers": "'banana'"}})
	if err == nil || !strings.Contains(err.Error(), "shared_buffers") {
		t.Fatalf("start with a bad setting: err = %v; want the log tail naming shared_buffers", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s left behind after a failed first start", dir)
	}
}

func TestRefusals(t *testing.T) {
	// A TCP port already in use.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	parent, _ := testenv.TempDir()
	defer os.RemoveAll(parent)
	_, err = testenv.Start(filepath.Join(parent, "p"), testenv.Options{Port: port})
	if err == nil || !strings.Contains(err.Error(), "in use") || !configs.IsConfigError(err) {
		t.Fatalf("port in use: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "p")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir left behind after refusal")
	}

	// A non-empty pgdata that holds no cluster.
	junk := filepath.Join(parent, "junk")
	os.MkdirAll(filepath.Join(junk, "pgdata"), 0o755)
	os.WriteFile(filepath.Join(junk, "pgdata", "notes.txt"), []byte("mine"), 0o644)
	_, err = testenv.Start(junk, testenv.Options{})
	if err == nil || !strings.Contains(err.Error(), "holds no Postgres cluster") {
		t.Fatalf("junk pgdata: err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(junk, "pgdata", "notes.txt")); string(b) != "mine" {
		t.Fatalf("refusal touched the user's files")
	}

	// Missing binaries.
	_, err = pgembed.FindBinaries(filepath.Join(parent, "nobin"))
	if !errors.Is(err, pgembed.ErrNoBinaries) || !strings.Contains(err.Error(), "nobin") {
		t.Fatalf("missing binaries: err = %v", err)
	}

	// A data directory owned by someone else.
	other := filepath.Join(parent, "other")
	os.MkdirAll(other, 0o755)
	if os.Geteuid() == 0 {
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err = testenv.Start(other, testenv.Options{})
		if err == nil || !strings.Contains(err.Error(), "owned by") || !configs.IsConfigError(err) {
			t.Fatalf("foreign data dir: err = %v", err)
		}
	} else {
		os.Chmod(other, 0o500)
		_, err = testenv.Start(other, testenv.Options{})
		if err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("read-only data dir: err = %v", err)
		}
	}
}

func TestFindBinaries(t *testing.T) {
	b, err := pgembed.FindBinaries("")
	if err != nil {
		t.Fatalf("FindBinaries: %v (tests need PostgreSQL 14-17)", err)
	}
	if b.Major < pgembed.MinMajor || b.Major > pgembed.MaxMajor || !strings.HasPrefix(b.Version, strconv.Itoa(b.Major)) {
		t.Fatalf("found %+v", b)
	}
	t.Setenv("PG_BIN", b.Dir)
	b2, err := pgembed.FindBinaries("")
	if err != nil || b2.Dir != b.Dir {
		t.Fatalf("PG_BIN: %+v %v", b2, err)
	}
	share, err := b.ShareDir()
	if err != nil || !filepath.IsAbs(share) {
		t.Fatalf("ShareDir = %q, %v", share, err)
	}
}
