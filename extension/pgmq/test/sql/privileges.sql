-- Roles: the README's recipes, run as written, with non-superuser roles.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP ROLE IF EXISTS pgmq_regress_app;
DROP ROLE IF EXISTS pgmq_regress_admin;
DROP ROLE IF EXISTS pgmq_regress_owner;
DROP ROLE IF EXISTS pgmq_regress_nobody;
RESET client_min_messages;
CREATE ROLE pgmq_regress_app LOGIN;
CREATE ROLE pgmq_regress_admin LOGIN;
CREATE ROLE pgmq_regress_nobody LOGIN;
SELECT pgmq.create('priv_q');
SELECT pgmq.create('priv_notify');
SELECT pgmq.enable_notify_insert('priv_notify', 0);
SELECT pgmq.bind_topic('priv.*', 'priv_q');
SELECT * FROM pgmq.send('priv_q', '{"m":0}', '{"x-pgmq-group":"g"}'::jsonb);

-- without any grant
SET ROLE pgmq_regress_nobody;
SELECT pgmq.send('priv_q', '{}');
RESET ROLE;
GRANT USAGE ON SCHEMA pgmq TO pgmq_regress_nobody;
SET ROLE pgmq_regress_nobody;
SELECT pgmq.send('priv_q', '{}');
SELECT * FROM pgmq.read('priv_q', 10, 1);
SELECT pgmq.create('nobody_q');
RESET ROLE;
REVOKE USAGE ON SCHEMA pgmq FROM pgmq_regress_nobody;

-- README recipe 1: let pgmq_regress_app use the existing queues
GRANT USAGE ON SCHEMA pgmq TO pgmq_regress_app;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA pgmq TO pgmq_regress_app;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA pgmq TO pgmq_regress_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON pgmq.meta, pgmq.topic_bindings FROM pgmq_regress_app;
REVOKE INSERT, DELETE, TRUNCATE ON pgmq.notify_insert_throttle FROM pgmq_regress_app;
-- ... and the queues that the installing role (here: the current user) creates later
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq
  GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO pgmq_regress_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq
  GRANT SELECT ON SEQUENCES TO pgmq_regress_app;

SET ROLE pgmq_regress_app;
SELECT * FROM pgmq.send('priv_q', '{"m":1}');
SELECT * FROM pgmq.send_batch('priv_q', ARRAY['{"m":2}', '{"m":3}', '{"m":4}']::jsonb[]);
SELECT msg_id, read_ct FROM pgmq.read('priv_q', 30, 1);
SELECT msg_id FROM pgmq.read_grouped('priv_q', 30, 1);
SELECT msg_id FROM pgmq.read_grouped_rr('priv_q', 30, 1);
SELECT msg_id FROM pgmq.read_grouped_head('priv_q', 30, 1);
SELECT msg_id FROM pgmq.pop('priv_q');
SELECT msg_id FROM pgmq.set_vt('priv_q', 1, 0);
SELECT pgmq.delete('priv_q', 1);
SELECT pgmq.archive('priv_q', 2);
SELECT queue_name, queue_length, total_messages FROM pgmq.metrics('priv_q');
SELECT count(*) > 0 AS some FROM pgmq.metrics_all();
SELECT queue_name FROM pgmq.list_queues() ORDER BY 1;
SELECT pgmq.send_topic('priv.x', '{"topic":1}');
SELECT * FROM pgmq.test_routing('priv.y');
SELECT * FROM pgmq.send('priv_notify', '{}');              -- notify trigger updates the throttle row
SELECT pgmq.purge_queue('priv_notify');
-- what the role cannot do
SELECT pgmq.create('app_q');
SELECT pgmq.drop_queue('priv_q');
SELECT pgmq.bind_topic('app.*', 'priv_q');
SELECT pgmq.enable_notify_insert('priv_q');
RESET ROLE;
-- a queue created later by the installing role is usable at once
SELECT pgmq.create('priv_later');
SET ROLE pgmq_regress_app;
SELECT * FROM pgmq.send('priv_later', '{}');
SELECT total_messages FROM pgmq.metrics('priv_later');
RESET ROLE;

-- README recipe 2: let pgmq_regress_admin create (and drop) its own queues
GRANT USAGE, CREATE ON SCHEMA pgmq TO pgmq_regress_admin;
GRANT SELECT, INSERT, DELETE ON pgmq.meta TO pgmq_regress_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgmq.notify_insert_throttle, pgmq.topic_bindings TO pgmq_regress_admin;

SET ROLE pgmq_regress_admin;
SELECT pgmq.create('admin_q');
SELECT pgmq.create('admin_q');
SELECT pgmq.create_unlogged('admin_unlogged');
SELECT * FROM pgmq.send('admin_q', '{"a":1}');
SELECT msg_id, read_ct FROM pgmq.read('admin_q', 30, 1);
SELECT pgmq.archive('admin_q', 1);
SELECT pgmq.create_fifo_index('admin_q');
SELECT pgmq.enable_notify_insert('admin_q', 100);
SELECT pgmq.update_notify_insert('admin_q', 200);
SELECT pgmq.bind_topic('admin.*', 'admin_q');
SELECT pgmq.send_topic('admin.x', '{"t":1}');
SELECT queue_name, queue_length, total_messages FROM pgmq.metrics('admin_q');
SELECT pgmq.disable_notify_insert('admin_q');
SELECT pgmq.unbind_topic('admin.*', 'admin_q');
SELECT pgmq.drop_queue('priv_q');                          -- not its table
SELECT pgmq.drop_queue('admin_unlogged');
-- let the app role use this role's queues too (run by the admin role or a superuser)
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq
  GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO pgmq_regress_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq
  GRANT SELECT ON SEQUENCES TO pgmq_regress_app;
SELECT pgmq.create('admin_shared');
RESET ROLE;
SELECT pg_get_userbyid(relowner) = 'pgmq_regress_admin' AS admin_owns FROM pg_class WHERE relname = 'q_admin_q';
SET ROLE pgmq_regress_app;
SELECT * FROM pgmq.send('admin_shared', '{}');
SELECT * FROM pgmq.send('admin_q', '{}');                  -- created before the default privileges
RESET ROLE;

-- pg_monitor reads everything the installing role created, and only that
SET ROLE pg_monitor;
SELECT queue_name, queue_length FROM pgmq.metrics('priv_q');
SELECT count(*) FROM pgmq.list_queues();
SELECT pgmq.metrics('admin_q');
SELECT pgmq.send('priv_q', '{}');
RESET ROLE;

-- the role that installs the extension can do everything, create and drop included
CREATE DATABASE pgmq_regress_owner TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
CREATE ROLE pgmq_regress_owner LOGIN;
ALTER DATABASE pgmq_regress_owner OWNER TO pgmq_regress_owner;
\c pgmq_regress_owner
\set VERBOSITY terse
SET ROLE pgmq_regress_owner;
CREATE EXTENSION pgmq;
SELECT extowner::regrole FROM pg_extension WHERE extname = 'pgmq';
SELECT pgmq.create('own_q');
SELECT * FROM pgmq.send('own_q', '{}');
SELECT pgmq.enable_notify_insert('own_q', 0);
SELECT pgmq.bind_topic('own.#', 'own_q');
SELECT pgmq.send_topic('own.a.b', '{}');
SELECT msg_id FROM pgmq.read('own_q', 30, 5);
SELECT pgmq.purge_queue('own_q');
SELECT pgmq.drop_queue('own_q');
DROP EXTENSION pgmq;
RESET ROLE;
\c pgmq_regress
DROP DATABASE pgmq_regress_owner;

-- clean up
SELECT pgmq.drop_queue('admin_q');
SELECT pgmq.drop_queue('admin_shared');
SELECT pgmq.drop_queue('priv_q');
SELECT pgmq.drop_queue('priv_notify');
SELECT pgmq.drop_queue('priv_later');
DROP OWNED BY pgmq_regress_app, pgmq_regress_admin, pgmq_regress_nobody;
DROP ROLE pgmq_regress_app;
DROP ROLE pgmq_regress_admin;
DROP ROLE pgmq_regress_owner;
DROP ROLE pgmq_regress_nobody;
