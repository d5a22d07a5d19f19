-- FIFO (grouped) reads.
\set VERBOSITY terse

-- group A has 3, B has 2, C has 1 (interleaved)
SELECT pgmq.create('fifo_q');
SELECT count(*) FROM pgmq.send_batch('fifo_q',
  ARRAY['{"n":"A1"}', '{"n":"B1"}', '{"n":"A2"}', '{"n":"C1"}', '{"n":"A3"}', '{"n":"B2"}']::jsonb[],
  ARRAY['{"x-pgmq-group":"A"}', '{"x-pgmq-group":"B"}', '{"x-pgmq-group":"A"}',
        '{"x-pgmq-group":"C"}', '{"x-pgmq-group":"A"}', '{"x-pgmq-group":"B"}']::jsonb[]);

-- read_grouped: the whole first group, then the next: A1 A2 A3 B1
SELECT msg_id, message->>'n' AS n, read_ct, last_read_at IS NOT NULL AS read
  FROM pgmq.read_grouped('fifo_q', 30, 4) ORDER BY msg_id;
-- A and B have heads in flight; only C is eligible
SELECT msg_id, message->>'n' AS n FROM pgmq.read_grouped('fifo_q', 30, 4) ORDER BY msg_id;
SELECT msg_id FROM pgmq.read_grouped('fifo_q', 30, 4);
-- finishing B1 releases B2; finishing A1 alone does not release A (A2 in flight)
SELECT pgmq.delete('fifo_q', 2);
SELECT pgmq.delete('fifo_q', 1);
SELECT msg_id, message->>'n' AS n FROM pgmq.read_grouped('fifo_q', 30, 10) ORDER BY msg_id;
-- an expired head makes its group eligible again (with the rest of the group)
SELECT msg_id FROM pgmq.set_vt('fifo_q', ARRAY[3, 5]::bigint[], 0);
SELECT msg_id, message->>'n' AS n, read_ct FROM pgmq.read_grouped('fifo_q', 30, 10) ORDER BY msg_id;
-- a visible non-head message of a group whose head is in flight is not handed out
SELECT msg_id FROM pgmq.set_vt('fifo_q', 5, 0);
SELECT msg_id FROM pgmq.read_grouped('fifo_q', 30, 10);
SELECT msg_id FROM pgmq.read('fifo_q', 30, 10);        -- plain read ignores groups
SELECT pgmq.drop_queue('fifo_q');

-- group keys: missing header, NULL headers, JSON null and other headers are the default
-- group; "" is its own group; non-string values use their text
SELECT pgmq.create('fifo_keys');
SELECT count(*) FROM pgmq.send_batch('fifo_keys',
  ARRAY['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}', '{"n":6}', '{"n":7}', '{"n":8}']::jsonb[],
  ARRAY[NULL, '{}', '{"x-pgmq-group":null}', '{"x-pgmq-group":""}', '{"x-pgmq-group":""}',
        '{"x-pgmq-group":"_default_fifo_group"}', '{"x-pgmq-group":7}', '{"x-pgmq-group":"7"}']::jsonb[]);
SELECT msg_id FROM pgmq.read_grouped_head('fifo_keys', 30, 10);
SELECT msg_id FROM pgmq.read_grouped_head('fifo_keys', 30, 10);
SELECT pgmq.purge_queue('fifo_keys');
SELECT count(*) FROM pgmq.send_batch('fifo_keys',
  ARRAY['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}']::jsonb[],
  ARRAY[NULL, '{"x-pgmq-group":""}', '{"other":1}', '{"x-pgmq-group":""}', '{"x-pgmq-group":"_default_fifo_group"}']::jsonb[]);
SELECT msg_id FROM pgmq.read_grouped('fifo_keys', 30, 3) ORDER BY msg_id;
SELECT pgmq.drop_queue('fifo_keys');

-- read_grouped_rr: rank 1 of every group by head, then rank 2, ... in that order
SELECT pgmq.create('fifo_rr');
SELECT count(*) FROM pgmq.send_batch('fifo_rr',
  ARRAY['{"n":"A1"}', '{"n":"B1"}', '{"n":"A2"}', '{"n":"C1"}', '{"n":"A3"}', '{"n":"B2"}']::jsonb[],
  ARRAY['{"x-pgmq-group":"A"}', '{"x-pgmq-group":"B"}', '{"x-pgmq-group":"A"}',
        '{"x-pgmq-group":"C"}', '{"x-pgmq-group":"A"}', '{"x-pgmq-group":"B"}']::jsonb[]);
SELECT msg_id, message->>'n' AS n, read_ct FROM pgmq.read_grouped_rr('fifo_rr', 30, 5);
SELECT msg_id, message->>'n' AS n FROM pgmq.read_grouped_rr('fifo_rr', 30, 5);
SELECT msg_id FROM pgmq.set_vt('fifo_rr', ARRAY[1, 2, 3, 4, 5, 6]::bigint[], 0);
SELECT message->>'n' AS n FROM pgmq.read_grouped_rr('fifo_rr', 30, 2);
SELECT message->>'n' AS n FROM pgmq.read_grouped_rr('fifo_rr', 30, 10);
SELECT pgmq.delete('fifo_rr', ARRAY[1, 2, 4]::bigint[]);
SELECT msg_id FROM pgmq.set_vt('fifo_rr', ARRAY[3, 5, 6]::bigint[], 0);
SELECT message->>'n' AS n FROM pgmq.read_grouped_rr('fifo_rr', 30, NULL);
SELECT pgmq.drop_queue('fifo_rr');

-- read_grouped_head: heads A1 B1 C1, qty 2: A1 B1, then C1, then nothing
SELECT pgmq.create('fifo_head');
SELECT count(*) FROM pgmq.send_batch('fifo_head',
  ARRAY['{"n":"A1"}', '{"n":"B1"}', '{"n":"A2"}', '{"n":"C1"}', '{"n":"A3"}', '{"n":"B2"}']::jsonb[],
  ARRAY['{"x-pgmq-group":"A"}', '{"x-pgmq-group":"B"}', '{"x-pgmq-group":"A"}',
        '{"x-pgmq-group":"C"}', '{"x-pgmq-group":"A"}', '{"x-pgmq-group":"B"}']::jsonb[]);
SELECT msg_id, message->>'n' AS n, read_ct FROM pgmq.read_grouped_head('fifo_head', 30, 2);
SELECT msg_id, message->>'n' AS n FROM pgmq.read_grouped_head('fifo_head', 30, 2);
SELECT msg_id FROM pgmq.read_grouped_head('fifo_head', 30, 2);
SELECT pgmq.archive('fifo_head', ARRAY[1, 2]::bigint[]);
SELECT msg_id, message->>'n' AS n FROM pgmq.read_grouped_head('fifo_head', 30, 10);
SELECT pgmq.drop_queue('fifo_head');

-- qty / vt edge cases for all three
SELECT pgmq.create('fifo_edge');
SELECT count(*) FROM pgmq.send_batch('fifo_edge', ARRAY['{}', '{}', '{}']::jsonb[],
  ARRAY['{"x-pgmq-group":"a"}', '{"x-pgmq-group":"b"}', '{"x-pgmq-group":"a"}']::jsonb[]);
SELECT count(*) FROM pgmq.read_grouped('fifo_edge', 30, 0);
SELECT count(*) FROM pgmq.read_grouped_rr('fifo_edge', 30, 0);
SELECT count(*) FROM pgmq.read_grouped_head('fifo_edge', 30, 0);
SELECT * FROM pgmq.read_grouped('fifo_edge', 30, -1);
SELECT * FROM pgmq.read_grouped_rr('fifo_edge', 30, -1);
SELECT * FROM pgmq.read_grouped_head('fifo_edge', 30, -1);
SELECT * FROM pgmq.read_grouped('fifo_edge', NULL, 1);
SELECT * FROM pgmq.read_grouped_rr('fifo_edge', NULL, 1);
SELECT * FROM pgmq.read_grouped_head('fifo_edge', NULL, 1);
SELECT msg_id, read_ct FROM pgmq.read_grouped('fifo_edge', 0, NULL) ORDER BY msg_id;
SELECT msg_id, read_ct FROM pgmq.read_grouped_rr('fifo_edge', 0, NULL);
SELECT msg_id, read_ct FROM pgmq.read_grouped_head('fifo_edge', -1, NULL);
SELECT * FROM pgmq.read_grouped('bad;name', 1, 1);

-- polling wrappers
SELECT msg_id FROM pgmq.read_grouped_with_poll('fifo_edge', 30, 1, 1, 10);
SELECT msg_id FROM pgmq.read_grouped_rr_with_poll('fifo_edge', 30, 1, 1, 10);
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM pgmq.read_grouped_head_with_poll('fifo_edge', 30, 1, 1, 50);
SELECT clock_timestamp() - :'t0'::timestamptz BETWEEN interval '0.9 s' AND interval '3 s' AS waited_about_1s;
SELECT count(*) FROM pgmq.read_grouped_with_poll('fifo_edge', 30, 1, 0);
SELECT msg_id FROM pgmq.set_vt('fifo_edge', ARRAY[1, 2, 3]::bigint[], 0);
SELECT count(*) FROM pgmq.read_grouped_rr_with_poll('fifo_edge', 30, 5, 0, 10);
SELECT count(*) FROM pgmq.read_grouped_head_with_poll('fifo_edge', 30, 5, -1, 10);
SELECT * FROM pgmq.send('fifo_edge', '{"late":true}', '{"x-pgmq-group":"c"}'::jsonb, 1);
SELECT msg_id, read_ct FROM pgmq.read_grouped_head_with_poll('fifo_edge', 30, 10);
SELECT msg_id FROM pgmq.read_grouped_head_with_poll(queue_name => 'fifo_edge', vt => 30, qty => 10,
                                                    max_poll_seconds => 2, poll_interval_ms => 20);
SELECT msg_id FROM pgmq.read_grouped_with_poll(queue_name => 'fifo_edge', vt => 30, qty => 10,
                                               max_poll_seconds => 0);
SELECT pgmq.drop_queue('fifo_edge');

-- fifo index helpers
SELECT pgmq.create('fifo_idx_a');
SELECT pgmq.create('Fifo_Idx_B');
SELECT pgmq.create_fifo_index('fifo_idx_a');
SELECT pgmq.create_fifo_index('fifo_idx_a');          -- silent when present
SELECT pgmq._create_fifo_index_if_not_exists('fifo_idx_a');
SELECT pgmq.create_fifo_indexes_all();
SELECT indexrelid::regclass::text AS index, pg_get_indexdef(indexrelid) FROM pg_index
 WHERE indexrelid::regclass::text LIKE '%fifo_idx%' ORDER BY 1;
SELECT pgmq.create_fifo_index('bad$');
SELECT pgmq.drop_queue('fifo_idx_a');
SELECT pgmq.drop_queue('Fifo_Idx_B');

-- 6000 messages in 30 groups: read_grouped returns 204 in well under 0.1 s
SELECT pgmq.create('fifo_perf');
SELECT pgmq.create_fifo_index('fifo_perf');
SELECT count(*) FROM pgmq.send_batch('fifo_perf',
  (SELECT array_agg(jsonb_build_object('i', i) ORDER BY i) FROM generate_series(1, 6000) i),
  (SELECT array_agg(jsonb_build_object('x-pgmq-group', 'g' || (i % 30)) ORDER BY i) FROM generate_series(1, 6000) i));
ANALYZE pgmq.q_fifo_perf;
-- timed inside the server; best of 3 attempts, each rolled back so all see the same queue
DO $$
DECLARE
    fn    text;
    t0    timestamptz;
    best  interval;
    n     bigint;
    g     bigint;
BEGIN
    FOREACH fn IN ARRAY ARRAY['read_grouped', 'read_grouped_rr', 'read_grouped_head'] LOOP
        best := NULL;
        FOR i IN 1..3 LOOP
            BEGIN
                t0 := clock_timestamp();
                EXECUTE format('SELECT count(*), count(DISTINCT headers->>''x-pgmq-group'') FROM pgmq.%I(''fifo_perf'', 30, 204)', fn)
                   INTO n, g;
                best := least(best, clock_timestamp() - t0);
                RAISE EXCEPTION USING ERRCODE = 'P0099';
            EXCEPTION WHEN SQLSTATE 'P0099' THEN
                NULL;
            END;
        END LOOP;
        RAISE NOTICE '%: % rows from % groups, under 100 ms: %', fn, n, g, best < interval '100 ms';
    END LOOP;
END $$;
SELECT count(*), count(DISTINCT headers->>'x-pgmq-group') AS groups FROM pgmq.read_grouped('fifo_perf', 30, 204);
SELECT count(*) FROM pgmq.read_grouped('fifo_perf', 30, 204);
SELECT pgmq.drop_queue('fifo_perf');
