-- Notify on insert: enable / update / disable / throttling.
-- (Delivery after commit is checked in isolation/notify.spec and the Go tests.)
\set VERBOSITY terse
SELECT pgmq.create('Notify_Q');
SELECT pgmq.enable_notify_insert('Notify_Q', -1);
SELECT pgmq.enable_notify_insert('missing_q');
SELECT pgmq.enable_notify_insert('bad;q');
SELECT pgmq.enable_notify_insert('Notify_Q');           -- first enable: NOTICE from DROP TRIGGER IF EXISTS
SELECT * FROM pgmq.list_notify_insert_throttles();
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'pgmq.q_notify_q'::regclass;
SELECT pgmq.enable_notify_insert('Notify_Q', 0);        -- again: replaces trigger, resets the row
SELECT * FROM pgmq.list_notify_insert_throttles();

-- interval 0: every insert notifies (last_notified_at moves)
SELECT * FROM pgmq.send('Notify_Q', '{}');
SELECT last_notified_at > now() - interval '1 min' AS notified FROM pgmq.notify_insert_throttle;
SELECT last_notified_at AS before FROM pgmq.notify_insert_throttle \gset
SELECT * FROM pgmq.send('Notify_Q', '{}');
SELECT last_notified_at > :'before' AS notified_again FROM pgmq.notify_insert_throttle;

-- a long interval: the first insert after (re)setting notifies, the next ones are throttled
SELECT pgmq.update_notify_insert('Notify_Q', 60000);
SELECT queue_name, throttle_interval_ms, last_notified_at FROM pgmq.list_notify_insert_throttles();
SELECT * FROM pgmq.send('Notify_Q', '{}');
SELECT last_notified_at AS first FROM pgmq.notify_insert_throttle \gset
SELECT last_notified_at > now() - interval '1 min' AS notified FROM pgmq.notify_insert_throttle;
SELECT count(*) FROM pgmq.send_batch('Notify_Q', ARRAY['{}', '{}', '{}']::jsonb[]);
SELECT * FROM pgmq.send('Notify_Q', '{}');
SELECT last_notified_at = :'first' AS throttled FROM pgmq.notify_insert_throttle;
-- a rolled-back insert leaves the throttle state untouched
SELECT pgmq.update_notify_insert('Notify_Q', 0);
BEGIN;
SELECT * FROM pgmq.send('Notify_Q', '{}');
ROLLBACK;
SELECT last_notified_at FROM pgmq.notify_insert_throttle;

-- update_notify_insert errors, in order
SELECT pgmq.update_notify_insert('Notify_Q', -5);
SELECT pgmq.update_notify_insert('missing_q', -5);
SELECT pgmq.update_notify_insert('missing_q', 5);
SELECT pgmq.update_notify_insert('notify_q', 5);         -- exact spelling
SELECT pgmq.create('Other_Q');
SELECT pgmq.update_notify_insert('Other_Q', 5);
SELECT pgmq.update_notify_insert(queue_name => 'Notify_Q', throttle_interval_ms => 1500);
SELECT pgmq.enable_notify_insert('Other_Q', 0);
SELECT * FROM pgmq.list_notify_insert_throttles();

-- disable
SELECT pgmq.disable_notify_insert('Notify_Q');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pgmq.q_notify_q'::regclass;
SELECT queue_name FROM pgmq.list_notify_insert_throttles();
SELECT pgmq.disable_notify_insert('Notify_Q');
SELECT pgmq.disable_notify_insert('bad$');

-- trigger without argument: queue name from the table name
CREATE CONSTRAINT TRIGGER trigger_notify_queue_insert_listeners AFTER INSERT ON pgmq.q_notify_q
  DEFERRABLE FOR EACH ROW EXECUTE FUNCTION pgmq.notify_queue_listeners();
INSERT INTO pgmq.notify_insert_throttle (queue_name) VALUES ('Notify_Q');
SELECT * FROM pgmq.send('Notify_Q', '{}');               -- looks up 'notify_q': no row, nothing
SELECT last_notified_at FROM pgmq.notify_insert_throttle WHERE queue_name = 'Notify_Q';
SELECT pgmq.create('notify_q');                           -- same tables, lower-case meta row
INSERT INTO pgmq.notify_insert_throttle (queue_name) VALUES ('notify_q');
SELECT * FROM pgmq.send('Notify_Q', '{}');
SELECT queue_name, last_notified_at > now() - interval '1 min' AS notified
  FROM pgmq.notify_insert_throttle ORDER BY 1;
DELETE FROM pgmq.meta WHERE queue_name = 'notify_q';
SELECT pgmq.disable_notify_insert('Notify_Q');

-- drop_queue removes the throttle row and the trigger
SELECT pgmq.drop_queue('Other_Q');
SELECT count(*) FROM pgmq.notify_insert_throttle;
SELECT pgmq.drop_queue('Notify_Q');
