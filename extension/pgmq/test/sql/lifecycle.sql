-- CREATE / DROP EXTENSION: schema handling, leftovers, re-install.
\set VERBOSITY terse
CREATE DATABASE pgmq_regress_life TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
\c pgmq_regress_life
\set VERBOSITY terse
-- no schema yet: CREATE EXTENSION creates it (not as a member)
SELECT count(*) FROM pg_namespace WHERE nspname = 'pgmq';
CREATE EXTENSION pgmq SCHEMA public;
CREATE EXTENSION pgmq;
SELECT nspname, pg_get_userbyid(nspowner) = current_user AS owned FROM pg_namespace WHERE nspname = 'pgmq';
SELECT pgmq.create('Life_A');
SELECT pgmq.create('life_b');
SELECT pgmq.create('life_c');
SELECT * FROM pgmq.send('Life_A', '{"keep":"a"}');
SELECT * FROM pgmq.send('life_b', '{"keep":"b"}');
SELECT pgmq.enable_notify_insert('Life_A', 0);
SELECT pgmq.enable_notify_insert('life_b', 0);
SELECT pgmq.bind_topic('life.*', 'life_c');
-- triggers depend on the extension's function
DROP EXTENSION pgmq;
\set VERBOSITY default
\set SHOW_CONTEXT never
DROP EXTENSION pgmq CASCADE;
\set VERBOSITY terse
-- the schema and every queue table stay; meta, types and functions go
SELECT nspname FROM pg_namespace WHERE nspname = 'pgmq';
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relkind IN ('r', 'S') ORDER BY 1;
SELECT count(*) AS functions_left FROM pg_proc WHERE pronamespace = 'pgmq'::regnamespace;
SELECT count(*) AS types_left FROM pg_type WHERE typnamespace = 'pgmq'::regnamespace AND typtype = 'c' AND typrelid = 0;
SELECT count(*) AS triggers_left FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'pgmq'::regnamespace;
-- re-install into the schema that still holds the old queue tables
CREATE EXTENSION pgmq;
SELECT * FROM pgmq.list_queues();
SELECT pgmq.create('Life_A');                      -- re-registers, the data is still there
SELECT msg_id, message FROM pgmq.read('Life_A', 30, 10);
SELECT * FROM pgmq.send('Life_A', '{"after":"reinstall"}');
SELECT pgmq.drop_queue('Life_A');
SELECT pgmq.drop_queue('life_b');                  -- tables exist, meta row does not: still dropped
SELECT to_regclass('pgmq.q_life_b');
DROP EXTENSION pgmq;
DROP TABLE pgmq.q_life_c, pgmq.a_life_c;
DROP SCHEMA pgmq;
-- a pre-existing, empty schema is reused
CREATE SCHEMA pgmq;
CREATE EXTENSION pgmq;
SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'pgmq';
SELECT pgmq.create('again');
DROP EXTENSION pgmq;
SELECT to_regclass('pgmq.q_again') IS NOT NULL AS queue_table_left;
\c pgmq_regress
DROP DATABASE pgmq_regress_life;
