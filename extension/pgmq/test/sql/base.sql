-- Queue lifecycle, sending, reading, finishing, introspection, names.
\set VERBOSITY terse

------------------------------------------------------------------------
-- create / idempotent create / list_queues / objects
------------------------------------------------------------------------
SELECT pgmq.create('test_q');
SELECT pgmq.create('test_q');             -- second create: four NOTICEs, nothing changes
SELECT pgmq.create_non_partitioned('test_q');
SELECT queue_name, is_partitioned, is_unlogged, created_at = now() AS created_now
  FROM pgmq.list_queues() WHERE queue_name = 'test_q';
SELECT c.relname, c.relkind, c.relpersistence FROM pg_class c
 WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname LIKE '%test\_q%' ORDER BY 1;
SELECT indexrelid::regclass::text AS index, pg_get_indexdef(indexrelid) FROM pg_index
 WHERE indrelid IN ('pgmq.q_test_q'::regclass, 'pgmq.a_test_q'::regclass) ORDER BY 1;

-- unlogged: queue table unlogged, archive logged
SELECT pgmq.create_unlogged('test_unlogged');
SELECT relname, relpersistence FROM pg_class
 WHERE relname IN ('q_test_unlogged', 'a_test_unlogged', 'q_test_unlogged_msg_id_seq') ORDER BY 1;
SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.list_queues() WHERE queue_name = 'test_unlogged';
-- first create wins
SELECT pgmq.create('test_unlogged');
SELECT queue_name, is_unlogged FROM pgmq.meta WHERE queue_name = 'test_unlogged';

------------------------------------------------------------------------
-- queue names
------------------------------------------------------------------------
SELECT pgmq.create('bad$name');
SELECT pgmq.create('bad;name');
SELECT pgmq.create('bad--name');
SELECT pgmq.create('bad''name');
SELECT pgmq.format_table_name('cat', 'q'), pgmq.format_table_name('cat-dog', 'a'),
       pgmq.format_table_name('Big Cat', 'q'), pgmq.format_table_name(NULL, 'q') IS NULL AS null_name;
SELECT pgmq.format_table_name('x;y', 'q');
SELECT pgmq.validate_queue_name(repeat('a', 47));
SELECT pgmq.validate_queue_name(repeat('a', 48));
SELECT pgmq.validate_queue_name('bad$');                -- only the length check
SELECT pgmq.create(repeat('a', 48));
SELECT pgmq.create(repeat('$', 48));                     -- character check runs first
SELECT pgmq.create_unlogged(repeat('b', 48));
SELECT pgmq.create(repeat('é', 48));                     -- counted as characters
SELECT pgmq.create(repeat('é', 20));
SELECT pgmq.drop_queue(repeat('é', 20));
SELECT pgmq.create(NULL);
SELECT pgmq.send(NULL, '{}');
-- allowed: dashes, spaces, dots, upper case, non-ASCII
SELECT pgmq.create('my-queue.v1 Ünïcode');
SELECT * FROM pgmq.send('my-queue.v1 Ünïcode', '{"ok":true}');
SELECT msg_id, message FROM pgmq.read('my-queue.v1 Ünïcode', 0, 1);
SELECT pgmq.drop_queue('my-queue.v1 Ünïcode');
-- case folds for tables, meta keeps the spelling
SELECT pgmq.create('CaseQ');
SELECT pgmq.create('caseq');
SELECT queue_name FROM pgmq.meta WHERE lower(queue_name) = 'caseq' ORDER BY 1;
SELECT indexrelid::regclass::text AS index FROM pg_index WHERE indrelid = 'pgmq.a_caseq'::regclass ORDER BY 1;
SELECT * FROM pgmq.send('CASEQ', '{"via":"CASEQ"}');
SELECT msg_id, message FROM pgmq.read('caseq', 0, 5);
SELECT pgmq.drop_queue('caseq');
SELECT queue_name FROM pgmq.meta WHERE lower(queue_name) = 'caseq';
SELECT pgmq.drop_queue('CaseQ');           -- tables are gone already
DELETE FROM pgmq.meta WHERE queue_name = 'CaseQ';

------------------------------------------------------------------------
-- unknown queues
------------------------------------------------------------------------
SELECT pgmq.send('nope', '{}');
SELECT pgmq.send_batch('nope', ARRAY['{}']::jsonb[]);
SELECT * FROM pgmq.read('nope', 10, 1);
SELECT * FROM pgmq.read_with_poll('nope', 10, 1, 1, 10);
SELECT * FROM pgmq.pop('nope');
SELECT * FROM pgmq.set_vt('nope', 1, 10);
SELECT pgmq.delete('nope', 1);
SELECT pgmq.delete('nope', ARRAY[1::bigint]);
SELECT pgmq.archive('nope', 1);
SELECT pgmq.archive('nope', ARRAY[1::bigint]);
SELECT pgmq.purge_queue('nope');
SELECT pgmq.metrics('nope');
SELECT * FROM pgmq.read_grouped('nope', 10, 1);
SELECT * FROM pgmq.read_grouped_rr('nope', 10, 1);
SELECT * FROM pgmq.read_grouped_head('nope', 10, 1);
SELECT pgmq.create_fifo_index('nope');
SELECT pgmq.drop_queue('nope');
SELECT pgmq.detach_archive('nope');
SELECT pgmq.convert_archive_partitioned('nope');
SELECT pgmq.disable_notify_insert('nope');
SELECT pgmq.enable_notify_insert('nope');
-- only the archive missing
SELECT pgmq.create('arch_missing');
SELECT * FROM pgmq.send('arch_missing', '{}');
DROP TABLE pgmq.a_arch_missing;
SELECT pgmq.archive('arch_missing', 1);
SELECT pgmq.drop_queue('arch_missing');

------------------------------------------------------------------------
-- send
------------------------------------------------------------------------
SELECT * FROM pgmq.send('test_q', '{"hello":"world"}');
SELECT * FROM pgmq.send('test_q', '{"n":2}', '{"h":"x"}'::jsonb);
SELECT * FROM pgmq.send(queue_name => 'test_q', msg => '{"n":3}', delay => 0);
SELECT * FROM pgmq.send('test_q', '{"n":4}', '{"h":"y"}'::jsonb, 0);
SELECT * FROM pgmq.send('test_q', NULL);
SELECT * FROM pgmq.send('test_q', 'null'::jsonb);
SELECT msg_id, read_ct, enqueued_at = now() AS enq_now, last_read_at, vt <= clock_timestamp() AS visible,
       message, headers
  FROM pgmq.q_test_q ORDER BY msg_id;
SELECT send AS column_named_send FROM pgmq.send('test_q', '{"n":7}');
-- delays: integer seconds (wall clock), negative allowed, timestamp stored as given
SELECT * FROM pgmq.send('test_q', '{"delayed":10}', 10);
SELECT * FROM pgmq.send('test_q', '{"delayed":-10}', -10);
SELECT * FROM pgmq.send('test_q', '{"at":"2000"}', '2000-01-01 00:00:00+00'::timestamptz);
SELECT * FROM pgmq.send('test_q', '{"at":"2100"}', '{"h":1}'::jsonb, '2100-01-01 00:00:00+00'::timestamptz);
SELECT * FROM pgmq.send('test_q', '{"delayed":5}', '{"h":2}'::jsonb, 5);
SELECT msg_id, vt - clock_timestamp() BETWEEN interval '5 s' AND interval '10 s' AS plus10
  FROM pgmq.q_test_q WHERE msg_id = 8;
SELECT msg_id, vt < now() AS in_past FROM pgmq.q_test_q WHERE msg_id = 9;
SELECT msg_id, vt, headers FROM pgmq.q_test_q WHERE msg_id IN (10, 11) ORDER BY 1;
SELECT msg_id, vt - clock_timestamp() BETWEEN interval '2 s' AND interval '5 s' AS plus5, headers
  FROM pgmq.q_test_q WHERE msg_id = 12;
SELECT * FROM pgmq.send('test_q', '{}', NULL::integer);       -- vt NOT NULL
SELECT * FROM pgmq.send('test_q', '{}', NULL::timestamptz);
SELECT pgmq.drop_queue('test_q');

------------------------------------------------------------------------
-- send_batch
------------------------------------------------------------------------
SELECT pgmq.create('test_q');
SELECT * FROM pgmq.send_batch('test_q', ARRAY['{"b":1}', '{"b":2}', '{"b":3}']::jsonb[]);
SELECT * FROM pgmq.send_batch('test_q', ARRAY['{"b":4}', '{"b":5}']::jsonb[],
                              ARRAY['{"h":4}', '{"h":5}']::jsonb[]);
SELECT * FROM pgmq.send_batch('test_q', ARRAY['{"b":6}']::jsonb[], 100);
SELECT * FROM pgmq.send_batch('test_q', ARRAY['{"b":7}']::jsonb[], '2001-01-01 00:00:00+00'::timestamptz);
SELECT * FROM pgmq.send_batch('test_q', ARRAY['{"b":8}', '{"b":9}']::jsonb[], ARRAY['{"h":8}', NULL]::jsonb[], 0);
SELECT * FROM pgmq.send_batch('test_q', ARRAY['{"b":10}']::jsonb[], ARRAY['{"h":10}']::jsonb[],
                              '2002-01-01 00:00:00+00'::timestamptz);
SELECT * FROM pgmq.send_batch('test_q', ARRAY['{"b":11}', '{"b":12}']::jsonb[], NULL::jsonb[]);
SELECT msg_id, message, headers, vt > clock_timestamp() + interval '90 s' AS far, read_ct
  FROM pgmq.q_test_q ORDER BY msg_id;
SELECT msg_id, vt FROM pgmq.q_test_q WHERE msg_id IN (7, 10) ORDER BY 1;
SELECT send_batch FROM pgmq.send_batch('test_q', ARRAY['{}']::jsonb[]);
-- validation
SELECT pgmq.send_batch('test_q', ARRAY[]::jsonb[]);
SELECT pgmq.send_batch('test_q', NULL::jsonb[]);
SELECT pgmq.send_batch('test_q', ARRAY['{}', '{}']::jsonb[], ARRAY['{}']::jsonb[]);
SELECT pgmq.send_batch('test_q', ARRAY['{}']::jsonb[], ARRAY[]::jsonb[]);
SELECT pgmq._validate_batch_params(ARRAY['{}']::jsonb[], NULL);
SELECT pgmq._validate_batch_params(ARRAY['{}', '{}', '{}']::jsonb[], ARRAY['{}', '{}']::jsonb[]);
SELECT * FROM pgmq.send_batch('test_q', ARRAY['{}']::jsonb[], NULL::integer);
-- _send_batch: no checks
SELECT * FROM pgmq._send_batch('test_q', ARRAY['{"raw":1}', '{"raw":2}']::jsonb[], NULL, '2003-01-01 00:00:00+00');
SELECT pgmq.drop_queue('test_q');

------------------------------------------------------------------------
-- read: visibility timeout, read_ct, last_read_at, order, qty, conditional
------------------------------------------------------------------------
SELECT pgmq.create('test_q');
SELECT count(*) FROM pgmq.send_batch('test_q',
  ARRAY['{"i":1,"k":"a"}', '{"i":2,"k":"b"}', '{"i":3,"k":"a"}', '{"i":4}', '{"i":5}']::jsonb[]);
SELECT msg_id, read_ct, message, last_read_at IS NOT NULL AS has_last_read,
       last_read_at >= now() AND last_read_at <= clock_timestamp() AS last_read_wall,
       vt - last_read_at = interval '30 s' AS vt_30s
  FROM pgmq.read('test_q', 30, 2);
-- invisible for the next reader
SELECT msg_id, read_ct FROM pgmq.read('test_q', 30, 2);
SELECT msg_id FROM pgmq.read('test_q', 30, 10);
SELECT msg_id FROM pgmq.read('test_q', 30, 10);
-- make them visible again, read again: read_ct counts deliveries
SELECT msg_id, read_ct FROM pgmq.set_vt('test_q', ARRAY[1, 2, 3, 4, 5]::bigint[], 0);
SELECT msg_id, read_ct FROM pgmq.read('test_q', 0, 10);
SELECT msg_id, read_ct FROM pgmq.read('test_q', -5, 2);         -- vt <= 0: stays visible
SELECT msg_id, read_ct FROM pgmq.read('test_q', 0, 0);           -- qty 0
SELECT count(*) FROM pgmq.read('test_q', 0, NULL);               -- qty NULL: no limit
SELECT * FROM pgmq.read('test_q', 0, -1);                        -- negative qty
SELECT * FROM pgmq.read('test_q', NULL, 1);                      -- NULL vt
SELECT msg_id, message FROM pgmq.read('test_q', 0, 10, '{"k":"a"}');
SELECT msg_id FROM pgmq.read('test_q', 0, 10, NULL);
SELECT msg_id FROM pgmq.read('test_q', 0, 10, '{}');
SELECT msg_id FROM pgmq.read(queue_name => 'test_q', vt => 0, qty => 1, conditional => '{"i":4}');
-- null / scalar bodies are returned, but never match a filter
SELECT * FROM pgmq.send('test_q', NULL);
SELECT * FROM pgmq.send('test_q', 'null');
SELECT * FROM pgmq.send('test_q', '[1,2]');
SELECT msg_id, message FROM pgmq.read('test_q', 0, 10) WHERE msg_id > 5;
SELECT msg_id FROM pgmq.read('test_q', 0, 10, '{"k":"a"}');
SELECT msg_id FROM pgmq.read('test_q', 0, 10, '{"i":1}') WHERE message IS NULL;
-- the record shape
SELECT * FROM pgmq.read('test_q', 0, 0);
SELECT pgmq.drop_queue('test_q');

------------------------------------------------------------------------
-- read_with_poll
------------------------------------------------------------------------
SELECT pgmq.create('test_q');
SELECT * FROM pgmq.send('test_q', '{"poll":1}');
SELECT msg_id, read_ct FROM pgmq.read_with_poll('test_q', 30, 5, 1, 10);
-- nothing visible: waits max_poll_seconds and returns nothing
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM pgmq.read_with_poll('test_q', 30, 5, 1, 50);
SELECT clock_timestamp() - :'t0'::timestamptz BETWEEN interval '0.9 s' AND interval '3 s' AS waited_about_1s;
-- max_poll_seconds <= 0: nothing, no read
SELECT msg_id FROM pgmq.set_vt('test_q', 1, 0);
SELECT count(*) FROM pgmq.read_with_poll('test_q', 30, 5, 0);
SELECT count(*) FROM pgmq.read_with_poll('test_q', 30, 5, -1);
SELECT read_ct FROM pgmq.q_test_q;
-- a delayed message shows up while polling; the first non-empty attempt is returned
SELECT * FROM pgmq.send('test_q', '{"poll":2}', 1);
SELECT msg_id, read_ct FROM pgmq.read_with_poll('test_q', 30, 5, 5, 20, '{"poll":2}');
SELECT msg_id, read_ct FROM pgmq.read_with_poll(queue_name => 'test_q', vt => 30, qty => 5, conditional => '{"poll":1}');
SELECT pgmq.drop_queue('test_q');

------------------------------------------------------------------------
-- pop
------------------------------------------------------------------------
SELECT pgmq.create('test_q');
SELECT * FROM pgmq.pop('test_q');
SELECT count(*) FROM pgmq.send_batch('test_q', ARRAY['{"p":1}', '{"p":2}', '{"p":3}', '{"p":4}']::jsonb[]);
SELECT msg_id, read_ct, last_read_at IS NOT NULL AS has_last_read FROM pgmq.read('test_q', 0, 1);
SELECT msg_id, read_ct, last_read_at IS NOT NULL AS was_read, message FROM pgmq.pop('test_q');
SELECT msg_id, read_ct, last_read_at, message FROM pgmq.pop('test_q', 2) ORDER BY msg_id;
SELECT msg_id FROM pgmq.read('test_q', 30, 1);
SELECT * FROM pgmq.pop('test_q');                 -- the last one is invisible
SELECT * FROM pgmq.pop('test_q', -1);
SELECT count(*) FROM pgmq.pop('test_q', 0);
SELECT msg_id FROM pgmq.set_vt('test_q', 4, 0);
SELECT msg_id FROM pgmq.pop(queue_name => 'test_q', qty => NULL);
SELECT pgmq.drop_queue('test_q');

------------------------------------------------------------------------
-- set_vt
------------------------------------------------------------------------
SELECT pgmq.create('test_q');
SELECT count(*) FROM pgmq.send_batch('test_q', ARRAY['{"s":1}', '{"s":2}', '{"s":3}']::jsonb[]);
SELECT msg_id, read_ct, vt - clock_timestamp() BETWEEN interval '90 s' AND interval '100 s' AS plus100
  FROM pgmq.set_vt('test_q', 1, 100);
SELECT msg_id, vt FROM pgmq.set_vt('test_q', 2, '2030-01-01 00:00:00+00'::timestamptz);
SELECT msg_id, vt < clock_timestamp() AS past FROM pgmq.set_vt('test_q', 3, -60);
SELECT msg_id, read_ct, last_read_at FROM pgmq.set_vt('test_q', ARRAY[1, 2, 2, 99, NULL]::bigint[], 0);
SELECT msg_id, vt FROM pgmq.set_vt('test_q', ARRAY[3, 1]::bigint[], '2031-01-01 00:00:00+00'::timestamptz);
SELECT * FROM pgmq.set_vt('test_q', 99, 10);
SELECT * FROM pgmq.set_vt('test_q', NULL::bigint, 10);
SELECT * FROM pgmq.set_vt('test_q', 1, NULL::integer);
SELECT * FROM pgmq.set_vt('test_q', 99, NULL::integer);      -- no row, no error
SELECT msg_id, read_ct FROM pgmq.set_vt(queue_name => 'test_q', msg_id => 2, vt => 0);
SELECT msg_id FROM pgmq.read('test_q', 10, 10);               -- 1 and 3 are invisible until 2031
SELECT pgmq.drop_queue('test_q');

------------------------------------------------------------------------
-- delete / archive
------------------------------------------------------------------------
SELECT pgmq.create('test_q');
SELECT count(*) FROM pgmq.send_batch('test_q', ARRAY['{"d":1}', '{"d":2}', '{"d":3}', '{"d":4}', '{"d":5}', '{"d":6}']::jsonb[]);
SELECT pgmq.delete('test_q', 1);
SELECT pgmq.delete('test_q', 1);
SELECT pgmq.delete('test_q', ARRAY[2, 3, 3, 99, -1]::bigint[]);
SELECT pgmq.delete('test_q', ARRAY[]::bigint[]);
SELECT msg_id FROM pgmq.read('test_q', 30, 1);                -- read, then archive: read_ct and last_read_at move
SELECT pgmq.archive('test_q', 4);
SELECT pgmq.archive('test_q', 4);
SELECT msg_id, read_ct, last_read_at IS NOT NULL AS was_read, archived_at = now() AS archived_now,
       enqueued_at = now() AS enq, message, headers
  FROM pgmq.a_test_q;
SELECT pgmq.archive('test_q', ARRAY[6, 5, 5, 99, -2]::bigint[]);
SELECT msg_id, read_ct, message FROM pgmq.a_test_q;
SELECT count(*) AS left_in_queue FROM pgmq.q_test_q;
-- archiving an id that is already in the (plain) archive
INSERT INTO pgmq.q_test_q (msg_id, vt, message) OVERRIDING SYSTEM VALUE VALUES (4, now(), '{"dup":true}');
SELECT pgmq.archive('test_q', 4);
SELECT pgmq.archive('test_q', ARRAY[4]::bigint[]);
SELECT pgmq.delete('test_q', 4);
SELECT archive FROM pgmq.archive('test_q', ARRAY[]::bigint[]);
SELECT delete FROM pgmq.delete('test_q', ARRAY[NULL]::bigint[]);

------------------------------------------------------------------------
-- purge_queue
------------------------------------------------------------------------
SELECT count(*) FROM pgmq.send_batch('test_q', ARRAY['{}', '{}', '{}']::jsonb[]);
SELECT pgmq.purge_queue('test_q');
SELECT count(*) FROM pgmq.q_test_q;
SELECT count(*) FROM pgmq.a_test_q;                           -- archive untouched
SELECT * FROM pgmq.send('test_q', '{}');                       -- sequence not reset
SELECT purge_queue FROM pgmq.purge_queue('test_q');

------------------------------------------------------------------------
-- metrics / metrics_all
------------------------------------------------------------------------
SELECT pgmq.create('metrics_q');
SELECT queue_name, queue_length, newest_msg_age_sec, oldest_msg_age_sec, total_messages,
       scrape_time = now() AS scrape_now, queue_visible_length, default_partition_length
  FROM pgmq.metrics('metrics_q');
SELECT count(*) FROM pgmq.send_batch('metrics_q', ARRAY['{}', '{}', '{}']::jsonb[]);
SELECT * FROM pgmq.send('metrics_q', '{}', 3600);
INSERT INTO pgmq.q_metrics_q (enqueued_at, vt, message) VALUES (now() - interval '90.5 s', now(), '{}');
INSERT INTO pgmq.q_metrics_q (enqueued_at, vt, message) VALUES (now() + interval '10.4 s', now(), '{}');
SELECT queue_name, queue_length, newest_msg_age_sec, oldest_msg_age_sec, total_messages,
       queue_visible_length, default_partition_length
  FROM pgmq.metrics('metrics_q');
-- rolled back ids still count; purge does not reset total_messages
BEGIN;
SELECT count(*) FROM pgmq.send_batch('metrics_q', ARRAY['{}', '{}']::jsonb[]);
ROLLBACK;
SELECT pgmq.purge_queue('metrics_q');
SELECT queue_length, newest_msg_age_sec, total_messages, queue_visible_length FROM pgmq.metrics('metrics_q');
SELECT (pgmq.metrics(queue_name => 'metrics_q')).queue_name;
SELECT queue_name, queue_length, total_messages FROM pgmq.metrics_all() ORDER BY 1;
-- a meta row without tables fails the whole call
INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged) VALUES ('ghost', false, false);
SELECT count(*) FROM pgmq.metrics_all();
DELETE FROM pgmq.meta WHERE queue_name = 'ghost';

------------------------------------------------------------------------
-- drop_queue / detach_archive
------------------------------------------------------------------------
SELECT pgmq.drop_queue('metrics_q');
SELECT pgmq.drop_queue('metrics_q');
SELECT to_regclass('pgmq.q_metrics_q'), to_regclass('pgmq.a_metrics_q');
SELECT pgmq.create('old_drop');
SELECT pgmq.drop_queue('old_drop', false);
SELECT pgmq.drop_queue('old_drop', true);
SELECT pgmq.detach_archive('test_q');
SELECT pgmq.detach_archive('bad;name');
SELECT pgmq.acquire_queue_lock('any name at all; --');
SELECT pgmq.drop_queue('test_unlogged');
SELECT queue_name FROM pgmq.list_queues() ORDER BY 1;
SELECT pgmq.drop_queue('test_q');
