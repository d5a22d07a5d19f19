-- Transactions and clocks (single session; concurrent cases are in isolation/).
\set VERBOSITY terse
SELECT pgmq.create('tx_q');
SELECT count(*) FROM pgmq.send_batch('tx_q', ARRAY['{"m":1}', '{"m":2}']::jsonb[]);

-- a rolled-back read leaves the message as before: visible, read_ct unchanged
BEGIN;
SELECT msg_id, read_ct FROM pgmq.read('tx_q', 30, 1);
ROLLBACK;
SELECT msg_id, read_ct, last_read_at FROM pgmq.q_tx_q ORDER BY msg_id;
SELECT msg_id, read_ct FROM pgmq.read('tx_q', 30, 1);

-- rolled-back delete / archive / pop
BEGIN;
SELECT pgmq.delete('tx_q', 1);
SELECT pgmq.archive('tx_q', 2);
ROLLBACK;
SELECT msg_id FROM pgmq.q_tx_q ORDER BY msg_id;
SELECT count(*) FROM pgmq.a_tx_q;
BEGIN;
SELECT msg_id FROM pgmq.pop('tx_q');
ROLLBACK;
SELECT msg_id, read_ct FROM pgmq.q_tx_q ORDER BY msg_id;

-- ids drawn by rolled-back sends are lost
BEGIN;
SELECT * FROM pgmq.send('tx_q', '{"m":"lost"}');
SELECT * FROM pgmq.send_batch('tx_q', ARRAY['{}', '{}']::jsonb[]);
ROLLBACK;
SELECT * FROM pgmq.send('tx_q', '{"m":6}');

-- inside one transaction the sender sees its own message
BEGIN;
SELECT * FROM pgmq.send('tx_q', '{"m":7}');
SELECT msg_id, message FROM pgmq.read('tx_q', 30, 10, '{"m":7}');
COMMIT;

-- clocks: enqueued_at / archived_at / created_at use now(); vt, last_read_at use the wall clock
BEGIN;
SELECT pg_sleep(0.2);
SELECT pgmq.create('tx_clock');
SELECT created_at = now() AS created_now FROM pgmq.meta WHERE queue_name = 'tx_clock';
SELECT * FROM pgmq.send('tx_clock', '{"c":1}');
SELECT enqueued_at = now() AS enq_now, vt > enqueued_at + interval '0.15 s' AS vt_wall
  FROM pgmq.q_tx_clock;
-- metrics use now(): the message counts as invisible although read takes it
SELECT queue_length, queue_visible_length FROM pgmq.metrics('tx_clock');
SELECT msg_id, last_read_at > now() + interval '0.15 s' AS last_read_wall FROM pgmq.read('tx_clock', 0, 1);
SELECT pgmq.archive('tx_clock', 1);
SELECT archived_at = now() AS archived_now FROM pgmq.a_tx_clock;
COMMIT;

-- purge_queue holds ACCESS EXCLUSIVE until the transaction ends; rollback restores
BEGIN;
SELECT pgmq.purge_queue('tx_q');
SELECT mode, granted FROM pg_locks
 WHERE relation = 'pgmq.q_tx_q'::regclass AND pid = pg_backend_pid() AND mode = 'AccessExclusiveLock';
ROLLBACK;
SELECT count(*) FROM pgmq.q_tx_q;

-- errors inside a transaction abort it like any statement
BEGIN;
SELECT * FROM pgmq.send('tx_q', '{"m":"doomed"}');
SELECT pgmq.send('no_such_queue', '{}');
ROLLBACK;
SELECT count(*) FROM pgmq.q_tx_q WHERE message = '{"m":"doomed"}';

-- concurrent create of one queue is serialised by the queue lock
BEGIN;
SELECT pgmq.acquire_queue_lock('tx_q');
SELECT count(*) AS advisory_locks FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
COMMIT;

SELECT pgmq.drop_queue('tx_q');
SELECT pgmq.drop_queue('tx_clock');
