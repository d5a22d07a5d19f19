-- mqstack-pgmq 1.13.1: mqstack's own implementation of the pgmq 1.13.1 SQL API.
--
-- Written from mqstack's interface specification (shared/spec/pgmq-api.md); no
-- code was taken from Tembo's pgmq.  Internals are ours, the observable
-- interface (names, argument names, types, defaults, result columns, errors,
-- notices, clocks and locking) follows pgmq 1.13.1.
--
-- The schema `pgmq` comes from the control file (`schema = 'pgmq'`):
-- CREATE EXTENSION creates it when it is missing and reuses it when it exists.
-- Either way it is not an extension member, so DROP EXTENSION never drops it
-- and queue tables left in it by an earlier install survive.
--
-- Queue tables (q_*, a_*) are created at run time by pgmq.create*() and are
-- therefore never members of the extension.
--
-- Conventions used below:
--  * Every function that builds a table name goes through
--    pgmq.format_table_name(), which performs the character check.
--  * Dynamic SQL is only used where the table name is dynamic; values are
--    always passed with USING, never spliced into the text.
--  * The wall clock for visibility tests is read once per call and passed as
--    a parameter ($1), which keeps the predicate `vt <= $1` indexable (a
--    volatile clock_timestamp() in the WHERE clause is not).
--  * Every function pins its search_path to `pg_catalog, pg_temp` (with
--    `SET search_path = ...`; see pg_partman below for the two that pin it
--    in their body), so what its body and the dynamic SQL it runs call never
--    depends on the caller's search_path.  Schema pgmq is deliberately NOT
--    on the path: its owner (and whoever may create in it) could otherwise
--    add e.g. pgmq.format(text, text), and Postgres' function and operator
--    resolution prefers a closer signature from any schema on the path over
--    pg_catalog's format(text, VARIADIC "any"), whatever the path's order.
--    With only pg_catalog (and pg_temp, which is never searched for
--    functions or operators, and comes last so it cannot shadow a table)
--    found unqualified, nothing created in pgmq or any other schema can
--    shadow a builtin, whatever its signature.
--    Therefore every reference to pgmq's own objects is schema-qualified:
--    tables, types (RETURNS, DECLARE, casts), functions, sequences, and the
--    tables of dynamic SQL (always `pgmq.%I`, never a bare `%I`); objects
--    of pg_partman too (its schema is looked up at run time).  Expressions
--    stored at install time (column defaults, the generated column) are
--    written fully qualified, as CREATE EXTENSION runs with the pgmq schema
--    on its path, and that schema may exist before the extension does.
--    The pin makes the SQL functions non-inlinable, which none of the hot
--    paths relies on.  No function is SECURITY DEFINER.
--  * pg_partman: its create_parent() (4.7 at least) saves the search_path it
--    finds, sets its own with a session-level set_config() and sets the
--    saved one back the same way.  A session-level set inside a function
--    with a SET clause outlives the function (CREATE FUNCTION, "SET
--    clause"), so the pinned path would stick to the caller's session.  The
--    two functions that call pg_partman, create_partitioned and
--    convert_archive_partitioned, therefore pin the same path in their body
--    instead: they save the caller's search_path, pin with a transaction-
--    local set_config() before anything else runs (their DECLARE
--    initializers only call schema-qualified pgmq functions), and set the
--    caller's path back on the way out (after pg_partman, session-level, as
--    pg_partman itself does; an error rolls every change back anyway).
--    PL/pgSQL compiles a function (its DECLARE section included) under the
--    path in effect at its first call in a backend and keeps the result, so
--    the local variables of these two are declared `pg_catalog.text`.

\echo Use "CREATE EXTENSION pgmq" to load this file. \quit

------------------------------------------------------------------------------
-- Types
------------------------------------------------------------------------------

CREATE TYPE pgmq.message_record AS (
    msg_id       bigint,
    read_ct      integer,
    enqueued_at  timestamp with time zone,
    last_read_at timestamp with time zone,
    vt           timestamp with time zone,
    message      jsonb,
    headers      jsonb
);

CREATE TYPE pgmq.queue_record AS (
    queue_name     varchar,
    is_partitioned boolean,
    is_unlogged    boolean,
    created_at     timestamp with time zone
);

CREATE TYPE pgmq.metrics_result AS (
    queue_name               text,
    queue_length             bigint,
    newest_msg_age_sec       integer,
    oldest_msg_age_sec       integer,
    total_messages           bigint,
    scrape_time              timestamp with time zone,
    queue_visible_length     bigint,
    default_partition_length bigint
);

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE pgmq.meta (
    queue_name     varchar UNIQUE NOT NULL,
    is_partitioned boolean NOT NULL,
    is_unlogged    boolean NOT NULL,
    created_at     timestamp with time zone NOT NULL DEFAULT pg_catalog.now()
);

CREATE UNLOGGED TABLE pgmq.notify_insert_throttle (
    queue_name           varchar UNIQUE NOT NULL
        CONSTRAINT notify_insert_throttle_meta_queue_name_fk
        REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    throttle_interval_ms integer NOT NULL DEFAULT 0,
    last_notified_at     timestamp with time zone NOT NULL DEFAULT pg_catalog.to_timestamp(0)
);

CREATE INDEX idx_notify_throttle_active
    ON pgmq.notify_insert_throttle (queue_name, last_notified_at)
    WHERE throttle_interval_ms OPERATOR(pg_catalog.>) 0;

CREATE TABLE pgmq.topic_bindings (
    pattern        text NOT NULL,
    queue_name     text NOT NULL
        CONSTRAINT topic_bindings_meta_queue_name_fk
        REFERENCES pgmq.meta (queue_name) ON DELETE CASCADE,
    bound_at       timestamp with time zone NOT NULL DEFAULT pg_catalog.now(),
    -- '^' + pattern with regex metacharacters escaped, '*' -> one segment,
    -- '#' -> anything, + '$'
    compiled_regex text GENERATED ALWAYS AS (
        '^' OPERATOR(pg_catalog.||)
        pg_catalog.replace(pg_catalog.replace(
            pg_catalog.regexp_replace(pattern, '([.+?{}()|\[\]\\^$])', '\\\1', 'g'),
            '*', '[^.]+'),
          '#', '.*')
        OPERATOR(pg_catalog.||) '$'
    ) STORED,
    CONSTRAINT topic_bindings_unique_pattern_queue UNIQUE (pattern, queue_name)
);

CREATE INDEX idx_topic_bindings_covering
    ON pgmq.topic_bindings (pattern) INCLUDE (queue_name, compiled_regex);

SELECT pg_catalog.pg_extension_config_dump('pgmq.meta', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.notify_insert_throttle', '');
SELECT pg_catalog.pg_extension_config_dump('pgmq.topic_bindings', '');

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.format_table_name(queue_name text, prefix text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF queue_name ~ '\$|;|--|''' THEN
        RAISE EXCEPTION 'queue name contains invalid characters: $, ;, --, or \''';
    END IF;
    RETURN lower(prefix || '_' || queue_name);
END;
$$;

CREATE FUNCTION pgmq.validate_queue_name(queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF length(queue_name) > 47 THEN
        RAISE EXCEPTION 'queue name is too long, maximum length is 47 characters';
    END IF;
END;
$$;

CREATE FUNCTION pgmq.acquire_queue_lock(queue_name text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgmq.queue_' || queue_name));
$$;

CREATE FUNCTION pgmq._belongs_to_pgmq(table_name text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1
          FROM pg_catalog.pg_depend d
         WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'pgmq')
           AND d.classid = 'pg_catalog.pg_class'::regclass
           AND d.deptype = 'e'
           AND d.objid = (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = $1)
    );
$$;

CREATE FUNCTION pgmq._extension_exists(extension_name text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = $1);
$$;

CREATE FUNCTION pgmq._get_pg_partman_schema()
RETURNS text
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.nspname::text
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_partman';
$$;

CREATE FUNCTION pgmq._get_pg_partman_major_version()
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT split_part(e.extversion, '.', 1)::integer
      FROM pg_catalog.pg_extension e
     WHERE e.extname = 'pg_partman';
$$;

CREATE FUNCTION pgmq._ensure_pg_partman_installed()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pgmq._extension_exists('pg_partman') THEN
        RAISE EXCEPTION 'pg_partman is required for partitioned queues';
    END IF;
END;
$$;

-- msg_id when the interval is a 32-bit integer (as the int4 cast sees it,
-- NULL included), else enqueued_at.
CREATE FUNCTION pgmq._get_partition_col(partition_interval text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM partition_interval::integer;
    RETURN 'msg_id';
EXCEPTION WHEN OTHERS THEN
    RETURN 'enqueued_at';
END;
$$;

CREATE FUNCTION pgmq._validate_batch_params(msgs jsonb[], headers jsonb[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF msgs IS NULL OR cardinality(msgs) = 0 THEN
        RAISE EXCEPTION 'msgs cannot be NULL or empty';
    END IF;
    IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
        RAISE EXCEPTION 'headers array length (%) must match msgs array length (%)',
            cardinality(headers), cardinality(msgs);
    END IF;
END;
$$;

------------------------------------------------------------------------------
-- Queue lifecycle
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.create_non_partitioned(queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
    atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    PERFORM pgmq.acquire_queue_lock(queue_name);

    EXECUTE format(
        $q$CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
            read_ct integer NOT NULL DEFAULT 0,
            enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
            last_read_at timestamp with time zone,
            vt timestamp with time zone NOT NULL,
            message jsonb,
            headers jsonb
        )$q$, qtable);

    EXECUTE format(
        $q$CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id bigint PRIMARY KEY,
            read_ct integer NOT NULL DEFAULT 0,
            enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
            last_read_at timestamp with time zone,
            archived_at timestamp with time zone NOT NULL DEFAULT now(),
            vt timestamp with time zone NOT NULL,
            message jsonb,
            headers jsonb
        )$q$, atable);

    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt ASC)',
                   qtable || '_vt_idx', qtable);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)',
                   'archived_at_idx_' || queue_name, atable);

    INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
    VALUES (queue_name, false, false)
    ON CONFLICT DO NOTHING;
END;
$$;

CREATE FUNCTION pgmq."create"(queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq.create_non_partitioned(queue_name);
END;
$$;

CREATE FUNCTION pgmq.create_unlogged(queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
    atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    PERFORM pgmq.acquire_queue_lock(queue_name);

    EXECUTE format(
        $q$CREATE UNLOGGED TABLE IF NOT EXISTS pgmq.%I (
            msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
            read_ct integer NOT NULL DEFAULT 0,
            enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
            last_read_at timestamp with time zone,
            vt timestamp with time zone NOT NULL,
            message jsonb,
            headers jsonb
        )$q$, qtable);

    EXECUTE format(
        $q$CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id bigint PRIMARY KEY,
            read_ct integer NOT NULL DEFAULT 0,
            enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
            last_read_at timestamp with time zone,
            archived_at timestamp with time zone NOT NULL DEFAULT now(),
            vt timestamp with time zone NOT NULL,
            message jsonb,
            headers jsonb
        )$q$, atable);

    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt ASC)',
                   qtable || '_vt_idx', qtable);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)',
                   'archived_at_idx_' || queue_name, atable);

    INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
    VALUES (queue_name, false, true)
    ON CONFLICT DO NOTHING;
END;
$$;

CREATE FUNCTION pgmq.create_partitioned(
    queue_name text,
    partition_interval text DEFAULT '10000',
    retention_interval text DEFAULT '100000',
    premake integer DEFAULT 4
)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    qtable  pg_catalog.text := pgmq.format_table_name(queue_name, 'q');
    atable  pg_catalog.text := pgmq.format_table_name(queue_name, 'a');
    partman pg_catalog.text;
    ptype   pg_catalog.text;
    qcol    pg_catalog.text;
    acol    pg_catalog.text;
    caller_search_path pg_catalog.text := pg_catalog.current_setting('search_path');
BEGIN
    -- pinned in the body, not with a SET clause: see pg_partman above
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM pgmq.validate_queue_name(queue_name);
    PERFORM pgmq.acquire_queue_lock(queue_name);
    PERFORM pgmq._ensure_pg_partman_installed();
    IF premake < 1 THEN
        RAISE EXCEPTION 'premake must be at least 1, got %', premake;
    END IF;

    partman := pgmq._get_pg_partman_schema();
    ptype := CASE WHEN pgmq._get_pg_partman_major_version() >= 5 THEN 'range' ELSE 'native' END;
    qcol := pgmq._get_partition_col(partition_interval);
    acol := CASE WHEN qcol = 'msg_id' THEN 'msg_id' ELSE 'archived_at' END;

    -- queue table
    EXECUTE format(
        $q$CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id bigint GENERATED BY DEFAULT AS IDENTITY,
            read_ct integer NOT NULL DEFAULT 0,
            enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
            last_read_at timestamp with time zone,
            vt timestamp with time zone NOT NULL,
            message jsonb,
            headers jsonb
        ) PARTITION BY RANGE (%I)$q$, qtable, qcol);

    EXECUTE format(
        $q$SELECT %I.create_parent(p_parent_table => $1, p_control => $2,
                                   p_interval => $3, p_premake => $4, p_type => $5)$q$,
        partman)
    USING 'pgmq.' || qtable, qcol, partition_interval, premake, ptype;

    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (%I)',
                   qtable || '_part_idx', qtable, qcol);

    EXECUTE format(
        $q$UPDATE %I.part_config
              SET retention = $1,
                  retention_keep_table = false,
                  retention_keep_index = true,
                  automatic_maintenance = 'on'
            WHERE parent_table = $2$q$, partman)
    USING retention_interval, 'pgmq.' || qtable;

    INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
    VALUES (queue_name, true, false)
    ON CONFLICT DO NOTHING;

    -- archive
    EXECUTE format(
        $q$CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id bigint NOT NULL,
            read_ct integer NOT NULL DEFAULT 0,
            enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
            last_read_at timestamp with time zone,
            archived_at timestamp with time zone NOT NULL DEFAULT now(),
            vt timestamp with time zone NOT NULL,
            message jsonb,
            headers jsonb
        ) PARTITION BY RANGE (%I)$q$, atable, acol);

    EXECUTE format(
        $q$SELECT %I.create_parent(p_parent_table => $1, p_control => $2,
                                   p_interval => $3, p_premake => $4, p_type => $5)$q$,
        partman)
    USING 'pgmq.' || atable, acol, partition_interval, premake, ptype;

    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)',
                   'archived_at_idx_' || queue_name, atable);

    EXECUTE format(
        $q$UPDATE %I.part_config
              SET retention = $1,
                  retention_keep_table = false,
                  retention_keep_index = true,
                  automatic_maintenance = 'on'
            WHERE parent_table = $2$q$, partman)
    USING retention_interval, 'pgmq.' || atable;

    -- the session keeps the caller's search_path (see pg_partman above)
    PERFORM pg_catalog.set_config('search_path', caller_search_path, false);
END;
$$;

CREATE FUNCTION pgmq.convert_archive_partitioned(
    table_name text,
    partition_interval text DEFAULT '10000',
    retention_interval text DEFAULT '100000',
    leading_partition integer DEFAULT 10
)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    atable  pg_catalog.text := pgmq.format_table_name(table_name, 'a');
    partman pg_catalog.text;
    ptype   pg_catalog.text;
    acol    pg_catalog.text;
    caller_search_path pg_catalog.text := pg_catalog.current_setting('search_path');
BEGIN
    -- pinned in the body, not with a SET clause: see pg_partman above
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    -- (the stray "s" after the table name is part of pgmq's message text)
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                WHERE c.relname = atable AND c.relkind = 'p') THEN
        RAISE NOTICE 'Table %s is already partitioned', atable;
        PERFORM pg_catalog.set_config('search_path', caller_search_path, true);
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                    WHERE c.relname = atable AND c.relkind = 'r') THEN
        RAISE NOTICE 'Table %s does not exists', atable;
        PERFORM pg_catalog.set_config('search_path', caller_search_path, true);
        RETURN;
    END IF;

    PERFORM pgmq._ensure_pg_partman_installed();
    partman := pgmq._get_pg_partman_schema();
    ptype := CASE WHEN pgmq._get_pg_partman_major_version() >= 5 THEN 'range' ELSE 'native' END;
    acol := CASE WHEN pgmq._get_partition_col(partition_interval) = 'msg_id'
                 THEN 'msg_id' ELSE 'archived_at' END;

    EXECUTE format('ALTER TABLE pgmq.%I RENAME TO %I', atable, atable || '_old');

    IF acol = 'msg_id' THEN
        EXECUTE format('CREATE TABLE pgmq.%I (LIKE pgmq.%I INCLUDING ALL) PARTITION BY RANGE (msg_id)',
                       atable, atable || '_old');
    ELSE
        EXECUTE format('CREATE TABLE pgmq.%I (LIKE pgmq.%I INCLUDING DEFAULTS INCLUDING GENERATED '
                       'INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (archived_at)',
                       atable, atable || '_old');
    END IF;

    -- spelled from the raw, unquoted name on purpose (pgmq compatibility):
    -- the parser case-folds and truncates these identifiers
    EXECUTE format('ALTER INDEX pgmq.archived_at_idx_%s RENAME TO archived_at_idx_%s_old',
                   table_name, table_name);
    EXECUTE format('CREATE INDEX archived_at_idx_%s ON pgmq.%I (archived_at)',
                   table_name, atable);

    EXECUTE format(
        $q$SELECT %I.create_parent(p_parent_table => $1, p_control => $2,
                                   p_interval => $3, p_type => $4)$q$,
        partman)
    USING 'pgmq.' || atable, acol, partition_interval, ptype;

    EXECUTE format(
        $q$UPDATE %I.part_config
              SET retention = $1,
                  retention_keep_table = false,
                  retention_keep_index = false,
                  infinite_time_partitions = true
            WHERE parent_table = $2$q$, partman)
    USING retention_interval, 'pgmq.' || atable;

    -- the session keeps the caller's search_path (see pg_partman above)
    PERFORM pg_catalog.set_config('search_path', caller_search_path, false);
END;
$$;

CREATE FUNCTION pgmq.drop_queue(queue_name text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable      text := pgmq.format_table_name(queue_name, 'q');
    atable      text := pgmq.format_table_name(queue_name, 'a');
    partitioned boolean;
    partman     text;
BEGIN
    PERFORM pgmq.acquire_queue_lock(queue_name);

    SELECT m.is_partitioned INTO partitioned
      FROM pgmq.meta m
     WHERE m.queue_name = drop_queue.queue_name;

    IF NOT EXISTS (SELECT 1 FROM information_schema.tables t
                    WHERE t.table_schema = 'pgmq' AND t.table_name = qtable) THEN
        RAISE NOTICE 'pgmq queue `%` does not exist', queue_name;
        RETURN false;
    END IF;

    EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', qtable);
    IF to_regclass(format('pgmq.%I', atable)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE pgmq.%I', atable);
    END IF;

    DELETE FROM pgmq.meta m WHERE m.queue_name = drop_queue.queue_name;

    IF partitioned THEN
        partman := pgmq._get_pg_partman_schema();
        IF partman IS NOT NULL THEN
            EXECUTE format('DELETE FROM %I.part_config WHERE parent_table = ANY ($1)', partman)
            USING ARRAY['pgmq.' || qtable, 'pgmq.' || atable];
        END IF;
    END IF;

    RETURN true;
END;
$$;

CREATE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE WARNING 'drop_queue(queue_name, partitioned) is deprecated and will be removed in PGMQ v2.0. Use drop_queue(queue_name) instead';
    PERFORM pgmq.drop_queue(queue_name);
    RETURN true;
END;
$$;

CREATE FUNCTION pgmq.purge_queue(queue_name text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
    n      bigint;
BEGIN
    -- Lock first, so the count is exactly what TRUNCATE removes.
    EXECUTE format('LOCK TABLE pgmq.%I IN ACCESS EXCLUSIVE MODE', qtable);
    EXECUTE format('SELECT count(*) FROM pgmq.%I', qtable) INTO n;
    EXECUTE format('TRUNCATE pgmq.%I', qtable);
    RETURN n;
END;
$$;

CREATE FUNCTION pgmq.detach_archive(queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq.format_table_name(queue_name, 'a');
    RAISE WARNING 'detach_archive(queue_name) is deprecated and is a no-op. It will be removed in PGMQ v2.0. Archive tables are no longer member objects.';
END;
$$;

------------------------------------------------------------------------------
-- Sending
------------------------------------------------------------------------------

-- Internal: insert a batch without validation.  One INSERT ... SELECT for the
-- whole batch; ids are drawn in input order.
CREATE FUNCTION pgmq._send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$INSERT INTO pgmq.%I (vt, message, headers)
           SELECT $1, u.m, u.h FROM unnest($2::jsonb[], $3::jsonb[]) WITH ORDINALITY AS u(m, h, o)
            ORDER BY u.o
           RETURNING msg_id$q$,
        pgmq.format_table_name(queue_name, 'q'))
    USING delay, msgs, headers;
END;
$$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message) VALUES ($1, $2) RETURNING msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING clock_timestamp(), msg;
END;
$$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING clock_timestamp(), msg, headers;
END;
$$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message) VALUES ($1, $2) RETURNING msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING clock_timestamp() + make_interval(secs => delay), msg;
END;
$$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamp with time zone)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message) VALUES ($1, $2) RETURNING msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING delay, msg;
END;
$$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING clock_timestamp() + make_interval(secs => delay), msg, headers;
END;
$$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING delay, msg, headers;
END;
$$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq._validate_batch_params(msgs, NULL);
    RETURN QUERY SELECT * FROM pgmq._send_batch(queue_name, msgs, NULL, clock_timestamp());
END;
$$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq._validate_batch_params(msgs, headers);
    RETURN QUERY SELECT * FROM pgmq._send_batch(queue_name, msgs, headers, clock_timestamp());
END;
$$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq._validate_batch_params(msgs, NULL);
    RETURN QUERY SELECT * FROM pgmq._send_batch(queue_name, msgs, NULL,
                                                clock_timestamp() + make_interval(secs => delay));
END;
$$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamp with time zone)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq._validate_batch_params(msgs, NULL);
    RETURN QUERY SELECT * FROM pgmq._send_batch(queue_name, msgs, NULL, delay);
END;
$$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq._validate_batch_params(msgs, headers);
    RETURN QUERY SELECT * FROM pgmq._send_batch(queue_name, msgs, headers,
                                                clock_timestamp() + make_interval(secs => delay));
END;
$$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq._validate_batch_params(msgs, headers);
    RETURN QUERY SELECT * FROM pgmq._send_batch(queue_name, msgs, headers, delay);
END;
$$;

------------------------------------------------------------------------------
-- Reading
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    filter text := '';
BEGIN
    IF conditional IS NOT NULL AND conditional <> '{}'::jsonb THEN
        filter := ' AND message @> $4';
    END IF;
    RETURN QUERY EXECUTE format(
        $q$WITH sel AS (
               SELECT msg_id FROM pgmq.%1$I
                WHERE vt <= $1%2$s
                ORDER BY msg_id
                LIMIT $2
                FOR UPDATE SKIP LOCKED),
           upd AS (
               UPDATE pgmq.%1$I m
                  SET vt = $1 + make_interval(secs => $3),
                      read_ct = m.read_ct + 1,
                      last_read_at = $1
                 FROM sel
                WHERE m.msg_id = sel.msg_id
               RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers)
           SELECT * FROM upd ORDER BY msg_id$q$,
        pgmq.format_table_name(queue_name, 'q'), filter)
    USING clock_timestamp(), qty, vt, conditional;
END;
$$;

CREATE FUNCTION pgmq.read_with_poll(
    queue_name text,
    vt integer,
    qty integer,
    max_poll_seconds integer DEFAULT 5,
    poll_interval_ms integer DEFAULT 100,
    conditional jsonb DEFAULT '{}'
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline timestamp with time zone := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        IF deadline IS NULL OR clock_timestamp() >= deadline THEN
            RETURN;
        END IF;
        RETURN QUERY SELECT * FROM pgmq.read(queue_name, vt, qty, conditional);
        IF FOUND THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(poll_interval_ms / 1000.0);
    END LOOP;
END;
$$;

CREATE FUNCTION pgmq.pop(queue_name text, qty integer DEFAULT 1)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$WITH sel AS (
               SELECT msg_id FROM pgmq.%1$I
                WHERE vt <= $1
                ORDER BY msg_id
                LIMIT $2
                FOR UPDATE SKIP LOCKED)
           DELETE FROM pgmq.%1$I m
            USING sel
            WHERE m.msg_id = sel.msg_id
           RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers$q$,
        pgmq.format_table_name(queue_name, 'q'))
    USING clock_timestamp(), qty;
END;
$$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$UPDATE pgmq.%I
              SET vt = clock_timestamp() + make_interval(secs => $2)
            WHERE msg_id = $1
           RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers$q$,
        pgmq.format_table_name(queue_name, 'q'))
    USING msg_id, vt;
END;
$$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt timestamp with time zone)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$UPDATE pgmq.%I
              SET vt = $2
            WHERE msg_id = $1
           RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers$q$,
        pgmq.format_table_name(queue_name, 'q'))
    USING msg_id, vt;
END;
$$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt integer)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$WITH upd AS (
               UPDATE pgmq.%I
                  SET vt = clock_timestamp() + make_interval(secs => $2)
                WHERE msg_id = ANY ($1)
               RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
           SELECT * FROM upd ORDER BY msg_id$q$,
        pgmq.format_table_name(queue_name, 'q'))
    USING msg_ids, vt;
END;
$$;

CREATE FUNCTION pgmq.set_vt(queue_name text, msg_ids bigint[], vt timestamp with time zone)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$WITH upd AS (
               UPDATE pgmq.%I
                  SET vt = $2
                WHERE msg_id = ANY ($1)
               RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
           SELECT * FROM upd ORDER BY msg_id$q$,
        pgmq.format_table_name(queue_name, 'q'))
    USING msg_ids, vt;
END;
$$;

------------------------------------------------------------------------------
-- FIFO (grouped) reads
--
-- Group key: headers->>'x-pgmq-group', '_default_fifo_group' when missing.
-- A group's head is its lowest msg_id in the table, visible or not.  All three
-- variants find the heads with one hash aggregate over the queue (O(n), no
-- per-message subqueries), and look heads up by primary key.
------------------------------------------------------------------------------

-- SQS-FIFO style: whole first group, then the next, ... up to qty.
-- Group heads are locked lazily through a cursor, one group at a time, only
-- as many as needed to fill qty, so concurrent readers are not starved by a
-- reader that locked every head of the queue.
CREATE FUNCTION pgmq.read_grouped(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable    text := pgmq.format_table_name(queue_name, 'q');
    heads     refcursor;
    grp       text;
    nvis      bigint;
    groups    text[] := '{}';
    remaining bigint;
    budget    bigint;
    got       bigint;
    sel_sql   text;
BEGIN
    IF qty < 0 THEN
        RAISE EXCEPTION USING ERRCODE = '2201W', MESSAGE = 'LIMIT must not be negative';
    END IF;
    IF qty = 0 THEN
        -- still fail like the other reads on a missing queue
        EXECUTE format('SELECT 1 FROM pgmq.%I LIMIT 0', qtable);
        RETURN;
    END IF;
    remaining := coalesce(qty, 9223372036854775807);
    budget := remaining;

    sel_sql := format(
        $q$WITH g AS (
               SELECT u.grp, u.ord FROM unnest($1::text[]) WITH ORDINALITY AS u(grp, ord)),
           sel AS (
               SELECT m.msg_id
                 FROM pgmq.%1$I m
                 JOIN g ON coalesce(m.headers->>'x-pgmq-group', '_default_fifo_group') = g.grp
                WHERE m.vt <= $2
                ORDER BY g.ord, m.msg_id
                LIMIT $3
                FOR UPDATE OF m SKIP LOCKED)
           UPDATE pgmq.%1$I m
              SET vt = $2 + make_interval(secs => $4),
                  read_ct = m.read_ct + 1,
                  last_read_at = $2
             FROM sel
            WHERE m.msg_id = sel.msg_id
           RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers$q$,
        qtable);

    OPEN heads NO SCROLL FOR EXECUTE format(
        $q$WITH h AS (
               SELECT coalesce(headers->>'x-pgmq-group', '_default_fifo_group') AS grp,
                      min(msg_id) AS head,
                      count(*) FILTER (WHERE vt <= $1) AS nvis
                 FROM pgmq.%1$I
                GROUP BY 1)
           SELECT h.grp, h.nvis
             FROM h JOIN pgmq.%1$I m ON m.msg_id = h.head
            WHERE m.vt <= $1
            ORDER BY h.head
              FOR UPDATE OF m SKIP LOCKED$q$,
        qtable)
    USING clock_timestamp();

    LOOP
        FETCH heads INTO grp, nvis;
        EXIT WHEN NOT FOUND;
        groups := groups || grp;
        budget := budget - nvis;
        IF budget <= 0 THEN
            RETURN QUERY EXECUTE sel_sql USING groups, clock_timestamp(), remaining, vt;
            GET DIAGNOSTICS got = ROW_COUNT;
            remaining := remaining - got;
            groups := '{}';
            budget := remaining;
            EXIT WHEN remaining <= 0;
        END IF;
    END LOOP;
    CLOSE heads;

    IF remaining > 0 AND cardinality(groups) > 0 THEN
        RETURN QUERY EXECUTE sel_sql USING groups, clock_timestamp(), remaining, vt;
    END IF;
END;
$$;

-- Layered round robin: rank 1 of every eligible group (by head msg_id), then
-- rank 2, ...  A group is eligible when its head is visible and this
-- transaction gets the group's advisory lock.
CREATE FUNCTION pgmq.read_grouped_rr(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
    groups text[];
BEGIN
    IF qty < 0 THEN
        RAISE EXCEPTION USING ERRCODE = '2201W', MESSAGE = 'LIMIT must not be negative';
    END IF;

    -- Step 1: take the advisory locks of the groups with a visible head, in
    -- head order, stopping after qty groups (no further group can contribute
    -- a row to this batch).
    EXECUTE format(
        $q$WITH h AS (
               SELECT coalesce(headers->>'x-pgmq-group', '_default_fifo_group') AS grp,
                      min(msg_id) AS head
                 FROM pgmq.%1$I
                GROUP BY 1)
           SELECT coalesce(array_agg(t.grp), '{}')
             FROM (SELECT s.grp
                     FROM (SELECT h.grp
                             FROM h JOIN pgmq.%1$I m ON m.msg_id = h.head
                            WHERE m.vt <= $1
                            ORDER BY h.head
                           OFFSET 0) s
                    WHERE pg_try_advisory_xact_lock(hashtextextended(s.grp, 0))
                    LIMIT $2) t$q$,
        qtable)
    INTO groups
    USING clock_timestamp(), qty;

    IF cardinality(groups) = 0 THEN
        RETURN;
    END IF;

    -- Step 2 (new snapshot, taken after the locks): re-check the heads of
    -- the locked groups, rank their visible messages and take them.
    RETURN QUERY EXECUTE format(
        $q$WITH mem AS MATERIALIZED (
               SELECT m.msg_id, m.vt, g.grp
                 FROM pgmq.%1$I m
                 JOIN unnest($1::text[]) AS g(grp)
                   ON coalesce(m.headers->>'x-pgmq-group', '_default_fifo_group') = g.grp),
           h AS (
               SELECT mem.grp, min(mem.msg_id) AS head FROM mem GROUP BY mem.grp),
           hv AS MATERIALIZED (
               SELECT h.grp, h.head FROM h
                WHERE EXISTS (SELECT 1 FROM pgmq.%1$I hm WHERE hm.msg_id = h.head AND hm.vt <= $2)),
           ranked AS (
               SELECT mem.msg_id, hv.head,
                      row_number() OVER (PARTITION BY hv.head ORDER BY mem.msg_id) AS rn
                 FROM mem JOIN hv ON hv.grp = mem.grp
                WHERE mem.vt <= $2),
           sel AS (
               SELECT m.msg_id, r.rn, r.head
                 FROM pgmq.%1$I m JOIN ranked r ON r.msg_id = m.msg_id
                ORDER BY r.rn, r.head
                LIMIT $3
                FOR UPDATE OF m SKIP LOCKED),
           upd AS (
               UPDATE pgmq.%1$I m
                  SET vt = $2 + make_interval(secs => $4),
                      read_ct = m.read_ct + 1,
                      last_read_at = $2
                 FROM sel
                WHERE m.msg_id = sel.msg_id
               RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message,
                         m.headers, sel.rn, sel.head)
           SELECT upd.msg_id, upd.read_ct, upd.enqueued_at, upd.last_read_at, upd.vt,
                  upd.message, upd.headers
             FROM upd ORDER BY upd.rn, upd.head$q$,
        qtable)
    USING groups, clock_timestamp(), qty, vt;
END;
$$;

-- At most one message per group: the head, if visible; up to qty groups.
CREATE FUNCTION pgmq.read_grouped_head(queue_name text, vt integer, qty integer)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$WITH h AS (
               SELECT min(msg_id) AS head
                 FROM pgmq.%1$I
                GROUP BY coalesce(headers->>'x-pgmq-group', '_default_fifo_group')),
           sel AS (
               SELECT m.msg_id
                 FROM h JOIN pgmq.%1$I m ON m.msg_id = h.head
                WHERE m.vt <= $1
                ORDER BY m.msg_id
                LIMIT $2
                FOR UPDATE OF m SKIP LOCKED),
           upd AS (
               UPDATE pgmq.%1$I m
                  SET vt = $1 + make_interval(secs => $3),
                      read_ct = m.read_ct + 1,
                      last_read_at = $1
                 FROM sel
                WHERE m.msg_id = sel.msg_id
               RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers)
           SELECT * FROM upd ORDER BY msg_id$q$,
        pgmq.format_table_name(queue_name, 'q'))
    USING clock_timestamp(), qty, vt;
END;
$$;

CREATE FUNCTION pgmq.read_grouped_with_poll(
    queue_name text,
    vt integer,
    qty integer,
    max_poll_seconds integer DEFAULT 5,
    poll_interval_ms integer DEFAULT 100
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline timestamp with time zone := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        IF deadline IS NULL OR clock_timestamp() >= deadline THEN
            RETURN;
        END IF;
        RETURN QUERY SELECT * FROM pgmq.read_grouped(queue_name, vt, qty);
        IF FOUND THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(poll_interval_ms / 1000.0);
    END LOOP;
END;
$$;

CREATE FUNCTION pgmq.read_grouped_rr_with_poll(
    queue_name text,
    vt integer,
    qty integer,
    max_poll_seconds integer DEFAULT 5,
    poll_interval_ms integer DEFAULT 100
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline timestamp with time zone := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        IF deadline IS NULL OR clock_timestamp() >= deadline THEN
            RETURN;
        END IF;
        RETURN QUERY SELECT * FROM pgmq.read_grouped_rr(queue_name, vt, qty);
        IF FOUND THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(poll_interval_ms / 1000.0);
    END LOOP;
END;
$$;

CREATE FUNCTION pgmq.read_grouped_head_with_poll(
    queue_name text,
    vt integer,
    qty integer,
    max_poll_seconds integer DEFAULT 5,
    poll_interval_ms integer DEFAULT 100
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline timestamp with time zone := clock_timestamp() + make_interval(secs => max_poll_seconds);
BEGIN
    LOOP
        IF deadline IS NULL OR clock_timestamp() >= deadline THEN
            RETURN;
        END IF;
        RETURN QUERY SELECT * FROM pgmq.read_grouped_head(queue_name, vt, qty);
        IF FOUND THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(poll_interval_ms / 1000.0);
    END LOOP;
END;
$$;

CREATE FUNCTION pgmq._create_fifo_index_if_not_exists(queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
BEGIN
    IF to_regclass(format('pgmq.%I', qtable || '_fifo_idx')) IS NULL THEN
        EXECUTE format('CREATE INDEX %I ON pgmq.%I USING gin (headers)',
                       qtable || '_fifo_idx', qtable);
    END IF;
END;
$$;

CREATE FUNCTION pgmq.create_fifo_index(queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq._create_fifo_index_if_not_exists(queue_name);
END;
$$;

CREATE FUNCTION pgmq.create_fifo_indexes_all()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
BEGIN
    FOR q IN SELECT m.queue_name FROM pgmq.meta m LOOP
        PERFORM pgmq._create_fifo_index_if_not_exists(q.queue_name);
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- Finishing messages
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = $1',
                   pgmq.format_table_name(queue_name, 'q'))
    USING msg_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END;
$$;

CREATE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'DELETE FROM pgmq.%I WHERE msg_id = ANY ($1) RETURNING msg_id',
        pgmq.format_table_name(queue_name, 'q'))
    USING msg_ids;
END;
$$;

CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format(
        $q$WITH d AS (
               DELETE FROM pgmq.%I WHERE msg_id = $1
               RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
           INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
           SELECT d.msg_id, d.read_ct, d.enqueued_at, d.last_read_at, d.vt, d.message, d.headers
             FROM d$q$,
        pgmq.format_table_name(queue_name, 'q'), pgmq.format_table_name(queue_name, 'a'))
    USING msg_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END;
$$;

CREATE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $q$WITH d AS (
               DELETE FROM pgmq.%I WHERE msg_id = ANY ($1)
               RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
           INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers)
           SELECT d.msg_id, d.read_ct, d.enqueued_at, d.last_read_at, d.vt, d.message, d.headers
             FROM d ORDER BY d.msg_id
           RETURNING msg_id$q$,
        pgmq.format_table_name(queue_name, 'q'), pgmq.format_table_name(queue_name, 'a'))
    USING msg_ids;
END;
$$;

------------------------------------------------------------------------------
-- Introspection
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.list_queues()
RETURNS SETOF pgmq.queue_record
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at FROM pgmq.meta m;
$$;

-- One statement, one pass over the queue: length, visible length and both
-- ages come from a single aggregate; total_messages is read from the
-- identity sequence, not counted.
CREATE FUNCTION pgmq.metrics(queue_name text)
RETURNS pgmq.metrics_result
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
    dpl    bigint;
    result pgmq.metrics_result;
BEGIN
    IF to_regclass(format('pgmq.%I', qtable || '_default')) IS NOT NULL THEN
        SELECT sum(greatest(c.reltuples, 0))::bigint INTO dpl
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'pgmq'::regnamespace
           AND c.relname IN (qtable || '_default', 'a' || substr(qtable, 2) || '_default');
    END IF;

    EXECUTE format(
        $q$SELECT $1::text,
                  s.queue_length,
                  (extract(epoch FROM now() - s.newest))::integer,
                  (extract(epoch FROM now() - s.oldest))::integer,
                  (SELECT CASE WHEN seq.is_called THEN seq.last_value ELSE 0 END
                     FROM pgmq.%2$I seq),
                  now(),
                  s.visible,
                  $2::bigint
             FROM (SELECT count(*) AS queue_length,
                          count(*) FILTER (WHERE vt <= now()) AS visible,
                          max(enqueued_at) AS newest,
                          min(enqueued_at) AS oldest
                     FROM pgmq.%1$I) s$q$,
        qtable, qtable || '_msg_id_seq')
    INTO result
    USING queue_name, dpl;
    RETURN result;
END;
$$;

CREATE FUNCTION pgmq.metrics_all()
RETURNS SETOF pgmq.metrics_result
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
BEGIN
    FOR q IN SELECT m.queue_name FROM pgmq.meta m LOOP
        RETURN NEXT pgmq.metrics(q.queue_name);
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- Notify on insert
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.notify_queue_listeners()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qname  text;
    stored text;
BEGIN
    IF TG_NARGS > 0 THEN
        qname := TG_ARGV[0];
    ELSE
        qname := substr(TG_TABLE_NAME, 3);
    END IF;

    UPDATE pgmq.notify_insert_throttle t
       SET last_notified_at = clock_timestamp()
     WHERE t.queue_name = qname
       AND (t.throttle_interval_ms = 0
            OR clock_timestamp() - t.last_notified_at
               >= t.throttle_interval_ms * interval '1 millisecond')
    RETURNING t.queue_name INTO stored;

    IF FOUND THEN
        PERFORM pg_notify('pgmq.q_' || stored || '.INSERT', NULL);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION pgmq.disable_notify_insert(queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS trigger_notify_queue_insert_listeners ON pgmq.%I',
                   pgmq.format_table_name(queue_name, 'q'));
    DELETE FROM pgmq.notify_insert_throttle t
     WHERE t.queue_name = disable_notify_insert.queue_name;
END;
$$;

CREATE FUNCTION pgmq.enable_notify_insert(queue_name text, throttle_interval_ms integer DEFAULT 250)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    qtable text := pgmq.format_table_name(queue_name, 'q');
BEGIN
    IF throttle_interval_ms < 0 THEN
        RAISE EXCEPTION 'throttle_interval_ms must be non-negative';
    END IF;
    IF to_regclass(format('pgmq.%I', qtable)) IS NULL THEN
        RAISE EXCEPTION 'Queue "%" does not exist. Create it first using pgmq.create()', queue_name;
    END IF;

    PERFORM pgmq.disable_notify_insert(queue_name);

    INSERT INTO pgmq.notify_insert_throttle AS t (queue_name, throttle_interval_ms, last_notified_at)
    VALUES (enable_notify_insert.queue_name, enable_notify_insert.throttle_interval_ms, to_timestamp(0))
    ON CONFLICT ON CONSTRAINT notify_insert_throttle_queue_name_key
    DO UPDATE SET throttle_interval_ms = EXCLUDED.throttle_interval_ms,
                  last_notified_at = to_timestamp(0);

    EXECUTE format(
        'CREATE CONSTRAINT TRIGGER trigger_notify_queue_insert_listeners '
        'AFTER INSERT ON pgmq.%I DEFERRABLE FOR EACH ROW '
        'EXECUTE FUNCTION pgmq.notify_queue_listeners(%L)',
        qtable, queue_name);
END;
$$;

CREATE FUNCTION pgmq.update_notify_insert(queue_name text, throttle_interval_ms integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF throttle_interval_ms < 0 THEN
        RAISE EXCEPTION 'throttle_interval_ms must be non-negative, got: %', throttle_interval_ms;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = update_notify_insert.queue_name) THEN
        RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using pgmq.create()', queue_name;
    END IF;
    UPDATE pgmq.notify_insert_throttle t
       SET throttle_interval_ms = update_notify_insert.throttle_interval_ms,
           last_notified_at = to_timestamp(0)
     WHERE t.queue_name = update_notify_insert.queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Queue "%" does not have notify_insert enabled. Enable it first using pgmq.enable_notify_insert()', queue_name;
    END IF;
END;
$$;

CREATE FUNCTION pgmq.list_notify_insert_throttles()
RETURNS TABLE (queue_name text, throttle_interval_ms integer, last_notified_at timestamp with time zone)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.queue_name::text, t.throttle_interval_ms, t.last_notified_at
      FROM pgmq.notify_insert_throttle t
     ORDER BY t.queue_name;
$$;

------------------------------------------------------------------------------
-- Topics
------------------------------------------------------------------------------

CREATE FUNCTION pgmq.validate_routing_key(routing_key text)
RETURNS boolean
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF routing_key IS NULL OR routing_key = '' THEN
        RAISE EXCEPTION 'routing_key cannot be NULL or empty';
    END IF;
    IF length(routing_key) > 255 THEN
        RAISE EXCEPTION 'routing_key length cannot exceed 255 characters, got % characters', length(routing_key);
    END IF;
    IF routing_key !~ '^[a-zA-Z0-9._-]+$' THEN
        RAISE EXCEPTION 'routing_key contains invalid characters. Only alphanumeric, dots, hyphens, and underscores are allowed. Got: %', routing_key;
    END IF;
    IF left(routing_key, 1) = '.' THEN
        RAISE EXCEPTION 'routing_key cannot start with a dot. Got: %', routing_key;
    END IF;
    IF right(routing_key, 1) = '.' THEN
        RAISE EXCEPTION 'routing_key cannot end with a dot. Got: %', routing_key;
    END IF;
    IF strpos(routing_key, '..') > 0 THEN
        RAISE EXCEPTION 'routing_key cannot contain consecutive dots. Got: %', routing_key;
    END IF;
    RETURN true;
END;
$$;

CREATE FUNCTION pgmq.validate_topic_pattern(pattern text)
RETURNS boolean
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pattern IS NULL OR pattern = '' THEN
        RAISE EXCEPTION 'pattern cannot be NULL or empty';
    END IF;
    IF length(pattern) > 255 THEN
        RAISE EXCEPTION 'pattern length cannot exceed 255 characters, got % characters', length(pattern);
    END IF;
    IF pattern !~ '^[a-zA-Z0-9._*#-]+$' THEN
        RAISE EXCEPTION 'pattern contains invalid characters. Only alphanumeric, dots, hyphens, underscores, *, and # are allowed. Got: %', pattern;
    END IF;
    IF left(pattern, 1) = '.' THEN
        RAISE EXCEPTION 'pattern cannot start with a dot. Got: %', pattern;
    END IF;
    IF right(pattern, 1) = '.' THEN
        RAISE EXCEPTION 'pattern cannot end with a dot. Got: %', pattern;
    END IF;
    IF strpos(pattern, '..') > 0 THEN
        RAISE EXCEPTION 'pattern cannot contain consecutive dots. Got: %', pattern;
    END IF;
    IF strpos(pattern, '**') > 0 THEN
        RAISE EXCEPTION 'pattern cannot contain consecutive stars (**). Use # for multi-segment matching. Got: %', pattern;
    END IF;
    IF strpos(pattern, '##') > 0 THEN
        RAISE EXCEPTION 'pattern cannot contain consecutive hashes (##). A single # already matches zero or more segments. Got: %', pattern;
    END IF;
    IF strpos(pattern, '*#') > 0 OR strpos(pattern, '#*') > 0 THEN
        RAISE EXCEPTION 'pattern cannot contain adjacent wildcards (*# or #*). Separate wildcards with dots. Got: %', pattern;
    END IF;
    RETURN true;
END;
$$;

CREATE FUNCTION pgmq.bind_topic(pattern text, queue_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq.validate_topic_pattern(pattern);
    IF queue_name IS NULL OR queue_name = '' THEN
        RAISE EXCEPTION 'queue_name cannot be NULL or empty';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE m.queue_name = bind_topic.queue_name) THEN
        RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using pgmq.create()', queue_name;
    END IF;
    INSERT INTO pgmq.topic_bindings (pattern, queue_name)
    VALUES (bind_topic.pattern, bind_topic.queue_name)
    ON CONFLICT ON CONSTRAINT topic_bindings_unique_pattern_queue DO NOTHING;
END;
$$;

CREATE FUNCTION pgmq.unbind_topic(pattern text, queue_name text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pattern IS NULL OR pattern = '' THEN
        RAISE EXCEPTION 'pattern cannot be NULL or empty';
    END IF;
    IF queue_name IS NULL OR queue_name = '' THEN
        RAISE EXCEPTION 'queue_name cannot be NULL or empty';
    END IF;
    DELETE FROM pgmq.topic_bindings b
     WHERE b.pattern = unbind_topic.pattern
       AND b.queue_name = unbind_topic.queue_name;
    RETURN FOUND;
END;
$$;

CREATE FUNCTION pgmq.test_routing(routing_key text)
RETURNS TABLE (pattern text, queue_name text, compiled_regex text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgmq.validate_routing_key(routing_key);
    RETURN QUERY
        SELECT b.pattern, b.queue_name, b.compiled_regex
          FROM pgmq.topic_bindings b
         WHERE test_routing.routing_key ~ b.compiled_regex
         ORDER BY b.pattern, b.queue_name;
END;
$$;

CREATE FUNCTION pgmq.list_topic_bindings()
RETURNS TABLE (pattern text, queue_name text, bound_at timestamp with time zone, compiled_regex text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.pattern, b.queue_name, b.bound_at, b.compiled_regex
      FROM pgmq.topic_bindings b
     ORDER BY b.bound_at DESC, b.pattern, b.queue_name;
$$;

CREATE FUNCTION pgmq.list_topic_bindings(queue_name text)
RETURNS TABLE (pattern text, queue_name text, bound_at timestamp with time zone, compiled_regex text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.pattern, b.queue_name, b.bound_at, b.compiled_regex
      FROM pgmq.topic_bindings b
     WHERE b.queue_name = $1
     ORDER BY b.bound_at DESC, b.pattern;
$$;

CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb, headers jsonb, delay integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q    record;
    sent integer := 0;
BEGIN
    PERFORM pgmq.validate_routing_key(routing_key);
    IF msg IS NULL THEN
        RAISE EXCEPTION 'msg cannot be NULL';
    END IF;
    IF delay < 0 THEN
        RAISE EXCEPTION 'delay cannot be negative, got: %', delay;
    END IF;
    FOR q IN
        SELECT DISTINCT b.queue_name
          FROM pgmq.topic_bindings b
         WHERE send_topic.routing_key ~ b.compiled_regex
         ORDER BY b.queue_name
    LOOP
        PERFORM pgmq.send(q.queue_name, msg, headers, delay);
        sent := sent + 1;
    END LOOP;
    RETURN sent;
END;
$$;

CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pgmq.send_topic($1, $2, NULL::jsonb, 0);
$$;

CREATE FUNCTION pgmq.send_topic(routing_key text, msg jsonb, delay integer)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pgmq.send_topic($1, $2, NULL::jsonb, $3);
$$;

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q record;
BEGIN
    PERFORM pgmq.validate_routing_key(routing_key);
    PERFORM pgmq._validate_batch_params(msgs, headers);
    FOR q IN
        SELECT DISTINCT b.queue_name AS qn
          FROM pgmq.topic_bindings b
         WHERE send_batch_topic.routing_key ~ b.compiled_regex
         ORDER BY b.queue_name
    LOOP
        RETURN QUERY
            SELECT q.qn, s.id
              FROM pgmq._send_batch(q.qn, msgs, headers, delay) AS s(id);
    END LOOP;
END;
$$;

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pgmq.send_batch_topic($1, $2, $3, clock_timestamp() + make_interval(secs => $4));
$$;

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[])
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pgmq.send_batch_topic($1, $2, NULL::jsonb[], clock_timestamp());
$$;

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[])
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pgmq.send_batch_topic($1, $2, $3, clock_timestamp());
$$;

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], delay integer)
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pgmq.send_batch_topic($1, $2, NULL::jsonb[], clock_timestamp() + make_interval(secs => $3));
$$;

CREATE FUNCTION pgmq.send_batch_topic(routing_key text, msgs jsonb[], delay timestamp with time zone)
RETURNS TABLE (queue_name text, msg_id bigint)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pgmq.send_batch_topic($1, $2, NULL::jsonb[], $3);
$$;

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

GRANT USAGE ON SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON ALL TABLES IN SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA pgmq TO pg_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON TABLES TO pg_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON SEQUENCES TO pg_monitor;
