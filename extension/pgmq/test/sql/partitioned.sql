-- Partitioned queues with pg_partman (4.7 here; the code also handles 5).
\set VERBOSITY terse

-- without pg_partman
SELECT pgmq._extension_exists('pg_partman'), pgmq._get_pg_partman_schema() IS NULL AS no_schema,
       pgmq._get_pg_partman_major_version() IS NULL AS no_version;
SELECT pgmq._ensure_pg_partman_installed();
SELECT pgmq.create_partitioned('part_q');
SELECT pgmq.create_partitioned('part_q', premake => 0);   -- partman is checked before premake
SELECT pgmq.create_partitioned('bad$q');
SELECT pgmq.create_partitioned(repeat('p', 48));
SELECT count(*) FROM pgmq.meta WHERE queue_name = 'part_q';

CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
SELECT pgmq._extension_exists('pg_partman'), pgmq._get_pg_partman_schema(),
       pgmq._get_pg_partman_major_version() = split_part(extversion, '.', 1)::int AS major_ok
  FROM pg_extension WHERE extname = 'pg_partman';
SELECT pgmq._ensure_pg_partman_installed();

-- partition column
SELECT v AS partition_interval, pgmq._get_partition_col(v)
  FROM unnest(ARRAY['10000', ' 42 ', '+5', '-5', '0', NULL, '1.5', '3000000000', '1 day', 'daily', '']) v;

-- numeric partitions
SELECT pgmq.create_partitioned('part_q', premake => 0);
SELECT pgmq.create_partitioned('part_q', premake => -3);
SELECT pgmq.create_partitioned('part_q');
SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.meta WHERE queue_name = 'part_q';
SELECT c.relname, c.relkind, c.relpersistence FROM pg_class c
 WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname LIKE '%part\_q%' ORDER BY 1;
SELECT a.attname, a.attidentity, a.attnotnull FROM pg_attribute a
 WHERE a.attrelid = 'pgmq.q_part_q'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT count(*) AS constraints FROM pg_constraint WHERE conrelid IN ('pgmq.q_part_q'::regclass, 'pgmq.a_part_q'::regclass);
SELECT pg_get_partkeydef('pgmq.q_part_q'::regclass), pg_get_partkeydef('pgmq.a_part_q'::regclass);
SELECT parent_table, control, partition_interval, premake, retention, retention_keep_table,
       retention_keep_index, automatic_maintenance, template_table
  FROM partman.part_config ORDER BY 1;
SELECT relname FROM pg_class WHERE relnamespace = 'partman'::regnamespace AND relname LIKE 'template%' ORDER BY 1;

-- messages on a partitioned queue
SELECT * FROM pgmq.send('part_q', '{"p":1}');
SELECT * FROM pgmq.send_batch('part_q', ARRAY['{"p":2}', '{"p":3}', '{"p":4}']::jsonb[]);
SELECT msg_id, read_ct, message FROM pgmq.read('part_q', 30, 2);
SELECT msg_id, message FROM pgmq.pop('part_q');
SELECT msg_id, read_ct FROM pgmq.set_vt('part_q', 1, 0);
SELECT pgmq.archive('part_q', 1);
SELECT pgmq.archive('part_q', ARRAY[2]::bigint[]);
SELECT pgmq.delete('part_q', 4);
SELECT tableoid::regclass, msg_id, read_ct, message FROM pgmq.a_part_q ORDER BY msg_id;
-- the partitioned archive accepts duplicate ids; msg_id may be given (BY DEFAULT identity)
INSERT INTO pgmq.q_part_q (msg_id, vt, message) VALUES (1, now(), '{"dup":1}');
SELECT pgmq.archive('part_q', 1);
SELECT count(*) FROM pgmq.a_part_q WHERE msg_id = 1;
-- rows beyond the premade range land in the default partition
INSERT INTO pgmq.q_part_q (msg_id, vt, message) VALUES (1000000, now(), '{"far":1}');
SELECT tableoid::regclass FROM pgmq.q_part_q WHERE msg_id = 1000000;
SELECT queue_name, queue_length, total_messages, queue_visible_length, default_partition_length
  FROM pgmq.metrics('part_q');
ANALYZE pgmq.q_part_q_default, pgmq.a_part_q_default;
SELECT default_partition_length FROM pgmq.metrics('part_q');
SELECT pgmq.purge_queue('part_q');
SELECT count(*) FROM pgmq.q_part_q;

-- a second create_partitioned fails inside pg_partman; create() only adds the vt index
-- (pg_partman folds its CONTEXT into the message text: show the first line only)
DO $$
BEGIN
    PERFORM pgmq.create_partitioned('part_q');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'caught % %', SQLSTATE, split_part(SQLERRM, E'\n', 1);
END $$;
SELECT pgmq.create('part_q');
SELECT indexrelid::regclass::text AS index FROM pg_index WHERE indrelid = 'pgmq.q_part_q'::regclass ORDER BY 1;
SELECT queue_name, is_partitioned FROM pgmq.meta WHERE queue_name = 'part_q';

-- time partitions: enqueued_at / archived_at
SELECT pgmq.create_partitioned('part_time', '1 day', '7 days', 2);
SELECT parent_table, control, partition_interval, premake, retention FROM partman.part_config
 WHERE parent_table LIKE '%part_time' ORDER BY 1;
SELECT pg_get_partkeydef('pgmq.q_part_time'::regclass), pg_get_partkeydef('pgmq.a_part_time'::regclass);
SELECT indexrelid::regclass::text AS index, pg_get_indexdef(indexrelid) FROM pg_index
 WHERE indrelid IN ('pgmq.q_part_time'::regclass, 'pgmq.a_part_time'::regclass) ORDER BY 1;
SELECT count(*) AS children FROM pg_inherits WHERE inhparent = 'pgmq.q_part_time'::regclass;
SELECT * FROM pgmq.send('part_time', '{"t":1}');
SELECT msg_id, message FROM pgmq.read('part_time', 30, 1);
SELECT pgmq.archive('part_time', 1);
SELECT msg_id FROM pgmq.a_part_time;

-- 47 characters is the longest name (the template name fits in 63 bytes)
SELECT pgmq.create_partitioned(repeat('n', 47));
SELECT template_table FROM partman.part_config WHERE parent_table = 'pgmq.q_' || repeat('n', 47);
SELECT pgmq.drop_queue(repeat('n', 47));

-- named arguments and upper case
SELECT pgmq.create_partitioned(queue_name => 'Part_Named', partition_interval => '100', retention_interval => '1000');
SELECT queue_name FROM pgmq.meta WHERE queue_name = 'Part_Named';
SELECT indexrelid::regclass::text AS index FROM pg_index WHERE indrelid = 'pgmq.a_part_named'::regclass;
SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.list_queues()
 WHERE queue_name LIKE 'Part%' OR queue_name LIKE 'part%' ORDER BY 1;

-- drop_queue removes both part_config rows; template tables stay
SELECT pgmq.drop_queue('part_q');
SELECT pgmq.drop_queue('part_time');
SELECT pgmq.drop_queue('Part_Named');
SELECT count(*) AS part_config_rows FROM partman.part_config;
SELECT count(*) AS templates_left FROM pg_class WHERE relnamespace = 'partman'::regnamespace AND relname LIKE 'template_pgmq%';

-- convert_archive_partitioned
SELECT pgmq.create('conv_q');
SELECT * FROM pgmq.send_batch('conv_q', ARRAY['{"c":1}', '{"c":2}']::jsonb[]);
SELECT pgmq.archive('conv_q', ARRAY[1, 2]::bigint[]);
SELECT pgmq.convert_archive_partitioned('conv_q');
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname ~ '^(a_conv_q|archived_at_idx_conv_q)' AND c.relkind IN ('r', 'p', 'I')
 ORDER BY 1;
SELECT count(*) FROM pgmq.a_conv_q_old;
SELECT count(*) FROM pgmq.a_conv_q;
SELECT parent_table, control, partition_interval, premake, retention, retention_keep_table,
       retention_keep_index, infinite_time_partitions
  FROM partman.part_config WHERE parent_table = 'pgmq.a_conv_q';
SELECT * FROM pgmq.send('conv_q', '{"c":3}');
SELECT pgmq.archive('conv_q', 3);
SELECT tableoid::regclass, msg_id FROM pgmq.a_conv_q;
SELECT pgmq.convert_archive_partitioned('conv_q');
SELECT pgmq.convert_archive_partitioned('no_such_q');
SELECT pgmq.convert_archive_partitioned('bad;q');
-- meta is unchanged; drop_queue leaves a_<q>_old and the archive's part_config row
SELECT is_partitioned FROM pgmq.meta WHERE queue_name = 'conv_q';
SELECT pgmq.drop_queue('conv_q');
SELECT to_regclass('pgmq.a_conv_q_old') IS NOT NULL AS old_left,
       (SELECT count(*) FROM partman.part_config WHERE parent_table = 'pgmq.a_conv_q') AS config_left;
DROP TABLE pgmq.a_conv_q_old;
DELETE FROM partman.part_config WHERE parent_table = 'pgmq.a_conv_q';
-- time interval: archived_at
SELECT pgmq.create('conv_t');
SELECT pgmq.convert_archive_partitioned('conv_t', '1 day', '30 days');
SELECT pg_get_partkeydef('pgmq.a_conv_t'::regclass);
SELECT count(*) AS copied_indexes FROM pg_index WHERE indrelid = 'pgmq.a_conv_t'::regclass;
SELECT control, partition_interval, retention FROM partman.part_config WHERE parent_table = 'pgmq.a_conv_t';
SELECT pgmq.drop_queue('conv_t');
DROP TABLE pgmq.a_conv_t_old;
DELETE FROM partman.part_config WHERE parent_table = 'pgmq.a_conv_t';
-- the index names are spelled from the raw name: upper case is folded (and fails),
-- long names are truncated, and a 47-character name collides (whole call undone)
SELECT pgmq.create('Conv_Upper');
SELECT pgmq.convert_archive_partitioned('Conv_Upper');
SELECT relkind FROM pg_class WHERE relname = 'a_conv_upper';
SELECT pgmq.drop_queue('Conv_Upper');
SELECT pgmq.create(repeat('l', 45));
SELECT pgmq.convert_archive_partitioned(repeat('l', 45));
SELECT relname FROM pg_class WHERE relname LIKE 'archived_at_idx_llll%' ORDER BY 1;
SELECT pgmq.drop_queue(repeat('l', 45));
DROP TABLE pgmq.a_lllllllllllllllllllllllllllllllllllllllllllll_old;
DELETE FROM partman.part_config;
SELECT pgmq.create(repeat('m', 47));
SELECT pgmq.convert_archive_partitioned(repeat('m', 47));
SELECT relkind FROM pg_class WHERE relname = 'a_' || repeat('m', 47);
SELECT count(*) FROM partman.part_config;
SELECT pgmq.drop_queue(repeat('m', 47));

SET client_min_messages = warning;
DROP EXTENSION pg_partman;
DROP SCHEMA partman CASCADE;
RESET client_min_messages;
