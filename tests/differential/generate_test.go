package differential

import (
	"strings"
)

// maxCorpus caps the corpus so the package stays within its time budget.
const maxCorpus = 900

type genStmt struct {
	sql      string
	settings int // settingsNone ... settingsAll
}

// queueCalls are the public pgmq functions that take a queue, with {q} where
// the queue goes; srf marks set-returning ones (also run as SELECT * FROM).
var queueCalls = []struct {
	call string
	srf  bool
	core bool
}{
	{`pgmq.send({q}, '{"k":1}')`, true, true},
	{`pgmq.send({q}, '{"k":1}', 0)`, true, false},
	{`pgmq.send({q}, '{"k":1}'::jsonb, '{"x-pgmq-group":"g1"}'::jsonb)`, true, false},
	{`pgmq.send({q}, '{"k":1}', '2030-01-02 03:04:05'::timestamptz)`, true, true},
	{`pgmq.send_batch({q}, ARRAY['{"k":1}', '{"k":2}']::jsonb[])`, true, true},
	{`pgmq.send_batch({q}, ARRAY['{"k":1}']::jsonb[], 0)`, true, false},
	{`pgmq.read({q}, 0, 1)`, true, true},
	{`pgmq.read({q}, 0, 2, '{"k":1}')`, true, false},
	{`pgmq.read_with_poll({q}, 0, 1, 1, 10)`, true, false},
	{`pgmq.read_grouped({q}, 0, 1)`, true, false},
	{`pgmq.read_grouped_rr({q}, 0, 1)`, true, false},
	{`pgmq.read_grouped_head({q}, 0, 1)`, true, false},
	{`pgmq.read_grouped_with_poll({q}, 0, 1, 1, 10)`, true, false},
	{`pgmq.read_grouped_rr_with_poll({q}, 0, 1, 1, 10)`, true, false},
	{`pgmq.read_grouped_head_with_poll({q}, 0, 1, 1, 10)`, true, false},
	{`pgmq.pop({q})`, true, true},
	{`pgmq.pop({q}, 2)`, true, false},
	{`pgmq.set_vt({q}, 1, 0)`, true, false},
	{`pgmq.set_vt({q}, 1, '03/04/2030 05:06'::timestamptz)`, true, true},
	{`pgmq.set_vt({q}, ARRAY[1, 2]::bigint[], 0)`, true, false},
	{`pgmq.delete({q}, 1::bigint)`, false, false},
	{`pgmq.delete({q}, ARRAY[1, 2]::bigint[])`, true, false},
	{`pgmq.archive({q}, 2::bigint)`, false, false},
	{`pgmq.archive({q}, ARRAY[2, 3]::bigint[])`, true, false},
	{`pgmq.purge_queue({q})`, false, false},
	{`pgmq.drop_queue({q})`, false, false},
	{`pgmq.create({q})`, false, false},
	{`pgmq.create_non_partitioned({q})`, false, false},
	{`pgmq.create_unlogged({q})`, false, false},
	{`pgmq.create_partitioned({q})`, false, false},
	{`pgmq.create_fifo_index({q})`, false, false},
	{`pgmq.enable_notify_insert({q})`, false, false},
	{`pgmq.disable_notify_insert({q})`, false, false},
	{`pgmq.update_notify_insert({q}, 10)`, false, false},
	{`pgmq.convert_archive_partitioned({q})`, false, false},
	{`pgmq.bind_topic('orders.bound', {q})`, false, false},
	{`pgmq.unbind_topic('orders.#', {q})`, false, false},
	{`pgmq.detach_archive({q})`, false, false},
	{`pgmq.metrics({q})`, false, true},
	{`pgmq.list_topic_bindings({q})`, true, false},
	{`pgmq.format_table_name({q}, 'q')`, false, false},
}

// queueArgs are spellings of a queue argument: literals of every kind,
// casts (harmless and truncating), parameters.
var queueArgs = []string{
	`'orders'`, `'ORDERS'`, `'Orders'`, `'orders_eu'`, `'Orders_EU'`, `'audit'`, `'Audit'`, `'AUDIT'`, `'jobs'`,
	`'payments'`, `'Payments'`, `'PAYMENTS'`, `'payments '`, `' payments'`, `'payments' || ''`,
	`E'orders'`, `E'ord\x65rs'`, `E'\u0070ayments'`, `E'pay\155ents'`, `E'\x50AYMENTS'`, `E'orders\\'`, `e'AUDIT'`,
	`E'orders\0'`, `E'orders\n'`,
	`U&'ord\0065rs'`, `U&'\0070ayments'`, `U&'!0070ayments' UESCAPE '!'`, `U&'\+000070ayments'`, `u&'Audi\0074'`,
	`$$orders$$`, `$q$payments$q$`, `$Q$Audit$Q$`, `$_$orders_eu$_$`,
	`'orders'::text`, `'orders'::varchar`, `'orders'::character varying`, `CAST('orders_eu' AS text)`,
	`('audit')`, `text 'orders'`, `'orders'::text::varchar`, `'orders' COLLATE "C"`,
	`'payments  '::char(10)`, `'payments  '::bpchar`, `'payments '::character(9)`, `CAST('payments   ' AS char(11))`,
	`bpchar 'payments  '`, `'payments  '::char(10)::text`, `('payments  '::char(10))::varchar`,
	`'orders_x'::varchar(6)`, `'orders_xyz'::character varying(6)`, `'orders_eux'::varchar(9)`,
	`CAST('audit_log' AS varchar(5))`, `varchar(6) 'orders_x'`,
	`'payments'::name`, `'orders'::name`, `'ORDERS'::name`,
	`NULL`, `NULL::text`,
	`$1`, `$1::text`, `$1::varchar`, `CAST($1 AS text)`, `$1::char(10)`, `$1::bpchar`, `$1::varchar(6)`, `$1::name`,
	`'` + strings.Repeat("orders", 12) + `'`,
}

// castAttacks are the queue spellings whose value Postgres changes after
// the router read it (issue 11, finding 2).
var castAttacks = []string{
	`'payments  '::char(10)`, `'payments '::character(9)`, `'payments  '::bpchar`, `'payments  '::char(10)::text`,
	`'orders_x'::varchar(6)`, `CAST('audit_log' AS varchar(5))`, `$1::char(10)`, `$1::varchar(6)`,
}

// attackForms are issue 11's attacks on the router's reading of a queue name
// (and one found by this test): the summary says, for each, whether the
// router refused it or what Postgres did with it.
var attackForms = []string{
	`SELECT * FROM pgmq.read('payments  '::char(10),0,1)`,
	`SELECT * FROM pgmq.read('orders_x'::varchar(6),0,1)`,
	`SELECT * FROM pgmq.read($1::char(10), 0, 1)`,
	`SELECT * FROM pgmq.read($1::varchar(6), 0, 1)`,
	// With standard_conforming_strings = off / client_encoding = SJIS (both
	// refused by the spec) Postgres runs the second statement; as the router
	// reads them, they are constant SELECTs. (Under
	// standard_conforming_strings = off a fresh session cannot compile
	// pgmq.format_table_name, whose body has a \' in a literal, so the read
	// fails there; a backend that compiled it earlier, as a pooled one has,
	// runs it. The SQL function list_topic_bindings shows the
	// differential either way.)
	scsOffRead, sjisRead, scsOffBindings, sjisBindings,
	// the parameter's type comes from its first use (bpchar here)
	`SELECT * FROM (SELECT $1::char(10) AS x) s, pgmq.read($1, 0, 1)`,
	// publish grants match routing keys, not queues: a binding may route
	// into a queue the token may not send to (by the spec)
	`SELECT pgmq.send_topic('payments.x', '{}')`,
}

const (
	scsOffRead     = `SELECT 'x\''; SELECT * FROM pgmq.read($$payments$$, 0, 1); --'`
	sjisRead       = "SELECT E'\u00c1\\'; SELECT * FROM pgmq.read($$payments$$, 0, 1); --'"
	scsOffBindings = `SELECT 'x\''; SELECT * FROM pgmq.list_topic_bindings($$payments$$); --'`
	sjisBindings   = "SELECT E'\u00c1\\'; SELECT * FROM pgmq.list_topic_bindings($$payments$$); --'"
)

// generatedStatements is the generated part of the corpus, in a fixed order.
func generatedStatements() []genStmt {
	var out []genStmt
	add := func(settings int, sqls ...string) {
		for _, s := range sqls {
			out = append(out, genStmt{sql: s, settings: settings})
		}
	}
	sub := func(call, q string) string { return strings.ReplaceAll(call, "{q}", q) }

	// Every public function with a queue, with literal, mixed-case, denied
	// and parameter queue arguments.
	for _, qc := range queueCalls {
		for _, q := range []string{`'orders'`, `'PAYMENTS'`, `$1`} {
			level := settingsNone
			if qc.core && (q == `'orders'` || q == `$1`) {
				level = settingsSome
			}
			add(level, "SELECT "+sub(qc.call, q))
			if qc.srf && q == `'orders'` {
				add(settingsNone, "SELECT * FROM "+sub(qc.call, q))
			}
		}
	}
	// Every spelling of the queue argument, on read; the casts also on
	// functions that write, delete or drop.
	for _, q := range queueArgs {
		add(settingsNone, "SELECT * FROM "+sub(`pgmq.read({q}, 0, 1)`, q))
	}
	for _, call := range []string{`pgmq.send({q}, '{}')`, `pgmq.pop({q})`, `pgmq.drop_queue({q})`, `pgmq.metrics({q})`} {
		add(settingsNone, "SELECT "+sub(call, `'Audit'`), "SELECT "+sub(call, `'ORDERS'`))
	}
	for _, q := range castAttacks {
		for _, call := range []string{`pgmq.send({q}, '{}')`, `pgmq.pop({q})`, `pgmq.drop_queue({q})`, `pgmq.purge_queue({q})`, `pgmq.metrics({q})`, `pgmq.archive({q}, 1::bigint)`} {
			add(settingsNone, "SELECT "+sub(call, q))
		}
	}
	add(settingsParse, `SELECT * FROM pgmq.read(E'ord\x65rs', 0, 1)`, `SELECT * FROM pgmq.read(U&'ord\0065rs', 0, 1)`,
		`SELECT * FROM pgmq.read($$orders$$, 0, 1)`, `SELECT * FROM pgmq.read('orders\', 0, 1)`,
		`SELECT * FROM pgmq.read(E'orders\\', 0, 1)`)

	// Listings, topics, helpers and what is internal.
	add(settingsNone,
		`SELECT * FROM pgmq.list_queues()`,
		`SELECT * FROM pgmq.metrics_all()`,
		`SELECT * FROM pgmq.list_notify_insert_throttles()`,
		`SELECT * FROM pgmq.test_routing('orders.eu.x')`,
		`SELECT * FROM pgmq.list_topic_bindings()`,
		`SELECT pgmq.send_topic('orders.new', '{}')`,
		`SELECT pgmq.send_topic('orders.eu.x', '{}', 0)`,
		`SELECT pgmq.send_topic('payments.x', '{}')`,
		`SELECT pgmq.send_topic('payments', '{}')`,
		`SELECT pgmq.send_topic('audit.a.b', '{"k":1}')`,
		`SELECT pgmq.send_topic('nobody.listens', '{}')`,
		`SELECT * FROM pgmq.send_batch_topic('orders.eu.x', ARRAY['{}'::jsonb])`,
		`SELECT * FROM pgmq.send_batch_topic('audit.x', ARRAY['{}'::jsonb], 0)`,
		`SELECT pgmq.send_topic($1, '{}')`,
		`SELECT pgmq.send_topic(routing_key => 'orders.k', msg => '{}')`,
		`SELECT pgmq.validate_routing_key('a.b')`,
		`SELECT pgmq.validate_topic_pattern('a.*')`,
		`SELECT pgmq.format_table_name('payments', 'q')`,
		`SELECT pgmq.create_fifo_indexes_all()`,
		`SELECT pgmq.validate_queue_name('orders')`,
		`SELECT pgmq.acquire_queue_lock('payments')`,
		`SELECT pgmq._belongs_to_pgmq('q_payments')`,
		`SELECT pgmq._send_batch('orders', ARRAY['{}'::jsonb], NULL, now())`,
		`SELECT pgmq.notify_queue_listeners()`,
	)
	add(settingsSome, `SELECT * FROM pgmq.list_queues()`, `SELECT * FROM pgmq.metrics_all()`)

	// Shapes: column lists, aliases, joins, subqueries, CTEs.
	add(settingsNone,
		`SELECT msg_id FROM pgmq.read('orders', 0, 1) AS r`,
		`SELECT r.msg_id, r.message FROM pgmq.read('orders', 0, 1) AS r WHERE r.read_ct < 5`,
		`SELECT r.* FROM pgmq.read('audit', 0, 2) r`,
		`SELECT count(*) FROM pgmq.read('orders', 0, 3)`,
		`SELECT * FROM pgmq.read('orders', 0, 1) WITH ORDINALITY AS r`,
		`SELECT (pgmq.read('orders', 0, 1)).*`,
		`SELECT pgmq.read('orders', 0, 1)`,
		`SELECT m.id FROM pgmq.pop('orders_eu') AS m(id, rc, enq, lr, vt, msg, hdr)`,
		`SELECT x FROM pgmq.send('audit', '{}') AS x`,
		`SELECT * FROM ROWS FROM (pgmq.read('orders', 0, 1), pgmq.read('audit', 0, 1)) AS r`,
		`SELECT * FROM ROWS FROM (pgmq.read('orders', 0, 1), pgmq.pop('payments')) AS r`,
		`SELECT * FROM pgmq.read('orders', 0, 1) r JOIN pgmq.read('jobs', 0, 1) s ON r.msg_id = s.msg_id`,
		`WITH r AS (SELECT * FROM pgmq.read('orders', 0, 1)) SELECT msg_id FROM r`,
		`WITH r AS MATERIALIZED (SELECT * FROM pgmq.pop('jobs')) SELECT count(*) FROM r`,
		`SELECT (SELECT count(*) FROM pgmq.read('orders', 0, 3))`,
		`SELECT * FROM (SELECT * FROM pgmq.read('orders', 0, 1)) sub`,
		`SELECT ARRAY(SELECT msg_id FROM pgmq.read('orders', 0, 2))`,
		`SELECT to_jsonb(r) FROM pgmq.read('orders', 0, 1) r`,
		`SELECT jsonb_agg(r) FROM pgmq.read('audit', 0, 3) r`,
		`SELECT pgmq.send('orders', '{}') FROM generate_series(1, 2)`,
		`SELECT pgmq.send('orders', m) FROM jsonb_array_elements('[{"a":1},{"a":2}]') AS m`,
		`VALUES (pgmq.send('orders', '{}'))`,
		`SELECT pgmq.send('orders', '{}') UNION ALL SELECT pgmq.send('audit', '{}')`,
		`SELECT pgmq.send('orders', '{}') WHERE true`,
		`SELECT CASE WHEN true THEN pgmq.send('orders', '{}') END`,
		`SELECT pgmq.metrics('orders')::text`,
		`SELECT (pgmq.metrics('orders')).queue_length`,
		`SELECT msg_id, pgmq.delete('orders', msg_id) FROM pgmq.read('orders', 0, 1)`,
		`SELECT pgmq.archive('orders', msg_id) FROM pgmq.pop('orders')`,
		`SELECT pgmq.send('orders', jsonb_build_object('at', now(), 'tz', current_setting('TimeZone')))`,
	)
	// Values whose text depends on the session's settings.
	add(settingsAll,
		`SELECT pgmq.send('orders', to_jsonb(0.1::float8))`,
		`SELECT pgmq.send('orders', to_jsonb('\x0102'::bytea::text))`,
		`SELECT pgmq.send('orders', to_jsonb(interval '1 day 2 hours'))`,
		`SELECT pgmq.send('orders', to_jsonb('2030-01-02 03:04:05'::timestamptz))`,
	)

	// Function and schema names in every case and quoting.
	add(settingsNone,
		`SELECT PGMQ.SEND('orders', '{}')`,
		`SELECT Pgmq.Send('Orders', '{}')`,
		`SELECT "pgmq"."send"('orders', '{}')`,
		`SELECT "pgmq".send('audit', '{}')`,
		`SELECT pgmq."read"('orders', 0, 1)`,
		`SELECT * FROM PGMQ.READ('orders', 0, 1)`,
		`SELECT "PGMQ"."send"('orders', '{}')`,
		`SELECT pgmq."Send"('orders', '{}')`,
		`SELECT pgmq . send ( 'orders' , '{}' )`,
		`SELECT pgmq/**/./**/send('orders', '{}')`,
		`SELECT postgres.pgmq.send('orders', '{}')`,
		`SELECT template1.pgmq.send('orders', '{}')`,
		`SELECT U&"pgm\0071".send('orders', '{}')`,
		`SELECT pgmq.U&"s\0065nd"('orders', '{}')`,
		`SELECT "pgmq"."pop"('payments')`,
	)
	add(settingsSome, `SELECT "pgmq"."send"('orders', '{}')`, `SELECT PGMQ.Send('Audit', '{}')`)

	// Named arguments.
	add(settingsNone,
		`SELECT pgmq.send(queue_name => 'orders', msg => '{}')`,
		`SELECT pgmq.send(msg => '{}', queue_name => 'audit')`,
		`SELECT * FROM pgmq.read(vt => 0, qty => 1, queue_name => 'orders')`,
		`SELECT * FROM pgmq.read(queue_name := 'orders', vt := 0, qty := 1)`,
		`SELECT * FROM pgmq.read('orders', qty => 1, vt => 0)`,
		`SELECT * FROM pgmq.pop(queue_name => 'jobs', qty => 2)`,
		`SELECT pgmq.send('orders', msg => '{}', delay => 0)`,
		`SELECT pgmq.bind_topic(pattern => 'orders.named', queue_name => 'orders')`,
		`SELECT pgmq.bind_topic(queue_name => 'audit', pattern => 'audit.named')`,
		`SELECT * FROM pgmq.read(queue_name => 'orders', vt => 0, qty => 1, queue_name => 'payments')`,
		`SELECT * FROM pgmq.read(QUEUE_NAME => 'orders', VT => 0, QTY => 1)`,
		`SELECT * FROM pgmq.read("queue_name" => 'orders', "vt" => 0, "qty" => 1)`,
		`SELECT pgmq.send("QUEUE_NAME" => 'payments', msg => '{}')`,
		`SELECT pgmq.send('orders', queue_name => 'payments')`,
		`SELECT pgmq.send('payments', queue_name => 'orders')`,
		`SELECT pgmq.metrics(queue_name => $1)`,
		`SELECT pgmq.convert_archive_partitioned(table_name => 'orders')`,
		`SELECT pgmq.convert_archive_partitioned(queue_name => 'payments')`,
	)
	add(settingsSome, `SELECT * FROM pgmq.read(queue_name => $1, vt => 0, qty => 1)`)

	// Comments and quotes in odd places.
	add(settingsNone,
		`SELECT pgmq.send(/* 'payments' */ 'orders', '{}')`,
		"SELECT pgmq.send('orders' -- 'payments'\n, '{}')",
		`SELECT /* nested /* 'x' */ still a comment pgmq.send('payments', '{}') */ 1`,
		`/* leading */ SELECT * FROM pgmq.pop('orders') /* trailing */`,
		"-- leading\nSELECT * FROM pgmq.pop('audit')",
		`SELECT pgmq.send('orders', '{}') -- ; SELECT pgmq.drop_queue('payments')`,
		`SELECT pgmq.send('orders', '{}') /* ; SELECT * FROM pgmq.read('payments', 0, 1) */`,
		`SELECT pgmq.send('orders', '"--"')`,
		`SELECT pgmq.send('orders', '"/*"'); SELECT * FROM pgmq.read('audit', 0, 1)`,
		`SELECT pgmq.send('orders', $$"'payments'"$$)`,
		`SELECT pgmq.send('orders', $a$"$$ ; SELECT pgmq.drop_queue('payments') $$"$a$)`,
		`SELECT pgmq.send('orders', E'"\'; SELECT pgmq.drop_queue(\'payments\') --"')`,
		`SELECT pgmq.send('orders', '"\"; SELECT 1"')`,
		`SELECT pgmq.send('orders',/**/'{}')`,
		"SELECT--\npgmq.send('orders', '{}')",
		"SELECT pgmq.send('orders', '{}')\n-- trailing comment without newline",
	)

	// Several statements in one string.
	add(settingsNone,
		`SELECT pgmq.send('orders', '{}'); SELECT * FROM pgmq.read('audit', 0, 1)`,
		`SELECT 1; SELECT * FROM pgmq.pop('orders_eu');`,
		`SELECT pgmq.send('orders', '{}');;; SELECT 2`,
		`SET LOCAL statement_timeout = '5s'; SELECT * FROM pgmq.read('orders', 0, 1)`,
		`SAVEPOINT s1; SELECT * FROM pgmq.pop('jobs'); ROLLBACK TO SAVEPOINT s1`,
		`SELECT pgmq.send('orders', '{}'); SELECT pgmq.send('payments', '{}')`,
		`SELECT * FROM pgmq.read('orders', 0, 1); SELECT pgmq.metrics('audit'); SELECT * FROM pgmq.list_queues()`,
		`SHOW search_path; SELECT pgmq.send('orders', '{}')`,
		`BEGIN; SELECT pgmq.send('orders', '{}'); COMMIT`,
		`SELECT pgmq.send('orders', '{}'); ROLLBACK; SELECT pgmq.send('audit', '{}')`,
	)

	// Unqualified names (they resolve only under search_path = pgmq, ...).
	add(settingsParse,
		`SELECT send('orders', '{}')`,
		`SELECT * FROM read('audit', 0, 1)`,
		`SELECT * FROM pop('orders_eu')`,
		`SELECT metrics('jobs')`,
		`SELECT format_table_name('payments', 'q')`,
		`SELECT * FROM list_queues()`,
		`SELECT send_topic('orders.x', '{}')`,
		`SELECT "send"('orders', '{}')`,
		`SELECT pop('payments')`,
	)

	// A parameter's type is inferred from its first use: a bpchar (or name)
	// use before the queue argument makes the queue argument bpchar too,
	// and the value reaches pgmq without its trailing blanks.
	add(settingsSome,
		`SELECT * FROM (SELECT $1::char(10) AS x) s, pgmq.read($1, 0, 1)`,
		`SELECT pgmq.send($1, '{}') FROM (SELECT $1::char(10)) s`,
		`WITH x AS (SELECT $1::bpchar) SELECT * FROM pgmq.read($1, 0, 1)`,
		`SELECT $1::bpchar, pgmq.pop($1)`,
		`SELECT $1::name, pgmq.pop($1)`,
		`SELECT * FROM pgmq.read($1, 0, 1) WHERE $1::char(10) IS NOT NULL`,
	)

	// Parser differentials through session settings (issue 11, finding 1):
	// constant SELECTs as the router reads them (standard_conforming_strings
	// on, UTF-8), a read of payments under standard_conforming_strings = off
	// or client_encoding = SJIS (0x81 0x5C is one SJIS character, so the
	// backslash does not escape the quote).
	add(settingsParse,
		`SELECT 'x\''; SELECT * FROM pgmq.read($$payments$$, 0, 1); --'`,
		`SELECT 'x\'' AS a, (SELECT count(*) FROM pgmq.pop($$payments$$)) --'`,
		"SELECT E'\u00c1\\'; SELECT * FROM pgmq.read($$payments$$, 0, 1); --'",
		"SELECT E'\u00c1\\' AS a, (SELECT count(*) FROM pgmq.pop($$payments$$)) --'",
	)
	add(settingsParse, attackForms...)
	return out
}
