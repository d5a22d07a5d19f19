-- Install and catalog checks: signatures, attributes, members, objects.
\set VERBOSITY terse
CREATE EXTENSION pgmq;

SELECT extname, extversion, extrelocatable, extnamespace::regnamespace AS schema
  FROM pg_extension WHERE extname = 'pgmq';

-- every function with its catalog signature (compare: pgmq-signatures.txt)
SELECT s AS signature FROM (
  SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid) AS s
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'pgmq') x
 ORDER BY s COLLATE "C";

-- attributes: volatility (others are volatile), no STRICT / SECURITY DEFINER /
-- comments, all PARALLEL UNSAFE; the only SET clause pins search_path to
-- pg_catalog, pg_temp (pgmq is not on it: nothing in pgmq may shadow a builtin),
-- on every function but the two that call pg_partman (they pin it in their body)
SELECT p.proname, p.provolatile
  FROM pg_proc p WHERE p.pronamespace = 'pgmq'::regnamespace AND p.provolatile <> 'v'
 ORDER BY 1, 2;
SELECT count(*) AS functions,
       count(*) FILTER (WHERE p.proisstrict) AS strict,
       count(*) FILTER (WHERE p.prosecdef) AS secdef,
       count(*) FILTER (WHERE p.proconfig IS NOT NULL) AS with_set,
       count(*) FILTER (WHERE p.proconfig = '{"search_path=pg_catalog, pg_temp"}') AS pinned,
       count(*) FILTER (WHERE p.proparallel <> 'u') AS parallel_not_unsafe,
       count(*) FILTER (WHERE obj_description(p.oid, 'pg_proc') IS NOT NULL) AS commented
  FROM pg_proc p WHERE p.pronamespace = 'pgmq'::regnamespace;
SELECT p.proname AS pinned_in_body,
       p.prosrc LIKE '%set_config(''search_path'', ''pg_catalog, pg_temp'', true)%' AS pins
  FROM pg_proc p WHERE p.pronamespace = 'pgmq'::regnamespace AND p.proconfig IS NULL
 ORDER BY 1;

-- extension members other than functions; function member count
SELECT pg_describe_object(classid, objid, objsubid) AS member
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgmq')
   AND classid <> 'pg_proc'::regclass
 ORDER BY 1;
SELECT count(*) AS function_members
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgmq')
   AND classid = 'pg_proc'::regclass;

-- the schema is not a member
SELECT count(*) AS schema_is_member
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND classid = 'pg_namespace'::regclass
   AND objid = 'pgmq'::regnamespace;

-- config dump registration
SELECT unnest(extconfig)::regclass::text AS config_table, unnest(extcondition) AS condition
  FROM pg_extension WHERE extname = 'pgmq' ORDER BY 1;

-- composite types: column order is API
SELECT t.typname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
 WHERE t.typnamespace = 'pgmq'::regnamespace AND t.typtype = 'c'
   AND t.typname IN ('message_record', 'queue_record', 'metrics_result')
   AND a.attnum > 0
 ORDER BY 1, 2;

-- tables, columns, defaults
SELECT c.relname, c.relpersistence, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default_or_generated, a.attgenerated
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relkind = 'r'
 ORDER BY 1, 3;

SELECT conrelid::regclass::text AS rel, conname, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'pgmq'::regnamespace
 ORDER BY 1, 2;

SELECT indexrelid::regclass::text AS index, pg_get_indexdef(indexrelid)
  FROM pg_index WHERE indrelid IN ('pgmq.meta'::regclass, 'pgmq.notify_insert_throttle'::regclass,
                                   'pgmq.topic_bindings'::regclass)
 ORDER BY 1;

-- privileges: pg_monitor reads everything, PUBLIC nothing on the schema
SELECT nspacl FROM pg_namespace WHERE nspname = 'pgmq';
SELECT has_schema_privilege('public', 'pgmq', 'USAGE') AS public_usage;
SELECT c.relname, has_table_privilege('pg_monitor', c.oid, 'SELECT') AS monitor_select
  FROM pg_class c WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relkind = 'r' ORDER BY 1;
SELECT defaclobjtype, defaclacl FROM pg_default_acl
 WHERE defaclnamespace = 'pgmq'::regnamespace ORDER BY 1;

-- queue objects are not members
SELECT pgmq.create('Member_Check');
SELECT pgmq.enable_notify_insert('Member_Check');
SELECT count(*) AS queue_objects_in_extension
  FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND (c.relname LIKE 'q\_%' OR c.relname LIKE 'a\_%');
SELECT pgmq._belongs_to_pgmq('q_member_check') AS q, pgmq._belongs_to_pgmq('a_member_check') AS a,
       pgmq._belongs_to_pgmq('meta') AS meta, pgmq._belongs_to_pgmq('no_such_table') AS none;
SELECT c.relname, has_table_privilege('pg_monitor', c.oid, 'SELECT') AS monitor_select
  FROM pg_class c WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname LIKE '%member_check%'
 ORDER BY 1;
-- queue table layout
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attidentity, pg_get_expr(d.adbin, d.adrelid) AS default
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname IN ('q_member_check', 'a_member_check')
 ORDER BY 1, 2;
SELECT c.relname, c.relkind, c.relpersistence
  FROM pg_class c WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname ILIKE '%member_check%'
 ORDER BY 1;
SELECT tgname, tgrelid::regclass, tgconstraint <> 0 AS is_constraint, tgdeferrable, tginitdeferred,
       pg_get_triggerdef(oid)
  FROM pg_trigger WHERE tgrelid = 'pgmq.q_member_check'::regclass;
-- _belongs_to_pgmq: a bare name matching in two schemas raises 21000
CREATE TABLE public.meta (x int);
SELECT pgmq._belongs_to_pgmq('meta');
DROP TABLE public.meta;
SELECT pgmq.drop_queue('Member_Check');
