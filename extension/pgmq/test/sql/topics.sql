-- Topics: validation, bindings, routing, send_topic, send_batch_topic.
\set VERBOSITY terse

-- routing keys
SELECT pgmq.validate_routing_key('logs.error'), pgmq.validate_routing_key('a'),
       pgmq.validate_routing_key('A-b_c.9'), pgmq.validate_routing_key(repeat('k', 255));
SELECT pgmq.validate_routing_key(NULL);
SELECT pgmq.validate_routing_key('');
SELECT pgmq.validate_routing_key(repeat('k', 256));
SELECT pgmq.validate_routing_key('logs.*');
SELECT pgmq.validate_routing_key('logs error');
SELECT pgmq.validate_routing_key('.logs');
SELECT pgmq.validate_routing_key('logs.');
SELECT pgmq.validate_routing_key('logs..error');
SELECT pgmq.validate_routing_key('.');                 -- characters first, then the dot rules
SELECT pgmq.validate_routing_key(repeat('.', 300));     -- length before characters
-- patterns
SELECT pgmq.validate_topic_pattern('logs.*'), pgmq.validate_topic_pattern('#'),
       pgmq.validate_topic_pattern('*.b.#'), pgmq.validate_topic_pattern('a-b_c.D9');
SELECT pgmq.validate_topic_pattern(NULL);
SELECT pgmq.validate_topic_pattern('');
SELECT pgmq.validate_topic_pattern(repeat('p', 256));
SELECT pgmq.validate_topic_pattern('logs.$');
SELECT pgmq.validate_topic_pattern('.logs');
SELECT pgmq.validate_topic_pattern('logs.');
SELECT pgmq.validate_topic_pattern('logs..x');
SELECT pgmq.validate_topic_pattern('logs.**');
SELECT pgmq.validate_topic_pattern('logs.##');
SELECT pgmq.validate_topic_pattern('logs.*#');
SELECT pgmq.validate_topic_pattern('logs.#*');
SELECT pgmq.validate_topic_pattern('**.#*');            -- ** reported first

-- bindings
SELECT pgmq.create('t_all');
SELECT pgmq.create('t_logs');
SELECT pgmq.create('t_errors');
SELECT pgmq.create('t_none');
SELECT pgmq.bind_topic('#', 't_all');
SELECT pgmq.bind_topic('logs.*', 't_logs');
SELECT pgmq.bind_topic('logs.#', 't_logs');
SELECT pgmq.bind_topic('#.error', 't_errors');
SELECT pgmq.bind_topic('*.error', 't_errors');
SELECT pgmq.bind_topic('logs.*', 't_logs');            -- existing binding: left as is
SELECT pgmq.bind_topic('x.*', 'missing_queue');
SELECT pgmq.bind_topic('x.*', '');
SELECT pgmq.bind_topic('x.*', NULL);
SELECT pgmq.bind_topic('bad..pattern', 't_all');
SELECT pgmq.bind_topic('x.*', 'T_ALL');                -- meta is looked up by exact spelling
SELECT pattern, queue_name, compiled_regex FROM pgmq.topic_bindings ORDER BY 1, 2;
SELECT pattern, queue_name, compiled_regex, bound_at = now() AS bound_now
  FROM pgmq.list_topic_bindings();
SELECT pattern, queue_name FROM pgmq.list_topic_bindings('t_logs');
SELECT pattern, queue_name FROM pgmq.list_topic_bindings(queue_name => 't_none');
-- list_topic_bindings orders by bound_at DESC first
BEGIN;
SELECT pgmq.bind_topic('zz.top', 't_none');
COMMIT;
SELECT pattern, queue_name FROM pgmq.list_topic_bindings();

-- routing
SELECT * FROM pgmq.test_routing('logs.error');
SELECT * FROM pgmq.test_routing('logs');
SELECT * FROM pgmq.test_routing('logs.a.b');
SELECT * FROM pgmq.test_routing('app.error');
SELECT * FROM pgmq.test_routing('error');
SELECT * FROM pgmq.test_routing('zz.top');
SELECT * FROM pgmq.test_routing('bad key');
-- regex metacharacters are escaped, * is one non-empty segment, # any text
INSERT INTO pgmq.topic_bindings (pattern, queue_name) VALUES ('a+b(c)|[d]{e}?^$\', 't_none');
SELECT compiled_regex FROM pgmq.topic_bindings WHERE pattern = 'a+b(c)|[d]{e}?^$\';
DELETE FROM pgmq.topic_bindings WHERE pattern = 'a+b(c)|[d]{e}?^$\';

-- send_topic: once to each distinct matching queue
SELECT pgmq.send_topic('logs.error', '{"e":1}');
SELECT pgmq.send_topic('logs.info', '{"i":1}', 0);
SELECT pgmq.send_topic('app.error', '{"e":2}', '{"h":1}'::jsonb, 0);
SELECT pgmq.send_topic('nobody.listens.here.x', '{"x":1}');
SELECT pgmq.send_topic('zz.top', '{"z":1}', 3600);
SELECT 't_all' AS q, msg_id, message, headers FROM pgmq.q_t_all
UNION ALL SELECT 't_logs', msg_id, message, headers FROM pgmq.q_t_logs
UNION ALL SELECT 't_errors', msg_id, message, headers FROM pgmq.q_t_errors
UNION ALL SELECT 't_none', msg_id, message, headers FROM pgmq.q_t_none
ORDER BY 1, 2;
SELECT vt > clock_timestamp() + interval '3500 s' AS delayed FROM pgmq.q_t_none;
SELECT pgmq.send_topic('logs.x', NULL);
SELECT pgmq.send_topic('logs.x', '{}', -1);
SELECT pgmq.send_topic('bad..key', '{}');
SELECT pgmq.send_topic('', NULL);                      -- key checked first
SELECT pgmq.send_topic(routing_key => 'logs.y', msg => '{"named":true}', headers => NULL, delay => 0);

-- send_batch_topic: every message to every matching queue, in queue-name order
SELECT * FROM pgmq.send_batch_topic('logs.error', ARRAY['{"b":1}', '{"b":2}']::jsonb[]);
SELECT * FROM pgmq.send_batch_topic('logs.warn', ARRAY['{"b":3}']::jsonb[], ARRAY['{"h":3}']::jsonb[]);
SELECT * FROM pgmq.send_batch_topic('app.error', ARRAY['{"b":4}']::jsonb[], 0);
SELECT * FROM pgmq.send_batch_topic('app.error', ARRAY['{"b":5}']::jsonb[], '2001-01-01 00:00:00+00'::timestamptz);
SELECT * FROM pgmq.send_batch_topic('app.error', ARRAY['{"b":6}']::jsonb[], ARRAY['{"h":6}']::jsonb[], 0);
SELECT * FROM pgmq.send_batch_topic('app.error', ARRAY['{"b":7}']::jsonb[], ARRAY['{"h":7}']::jsonb[],
                                    '2002-01-01 00:00:00+00'::timestamptz);
SELECT * FROM pgmq.send_batch_topic('nobody.x', ARRAY['{}']::jsonb[]);
SELECT * FROM pgmq.send_batch_topic('logs.x', ARRAY[]::jsonb[]);
SELECT * FROM pgmq.send_batch_topic('logs.x', ARRAY['{}', '{}']::jsonb[], ARRAY['{}']::jsonb[]);
SELECT * FROM pgmq.send_batch_topic('bad key', NULL::jsonb[]);
SELECT msg_id, message, headers, CASE WHEN vt < '2010-01-01' THEN vt::text ELSE 'now' END AS vt
  FROM pgmq.q_t_errors WHERE message ? 'b' ORDER BY msg_id;
-- a failure in one queue rolls back all of them
SELECT pgmq.create('t_broken');
SELECT pgmq.bind_topic('fragile.*', 't_all');
SELECT pgmq.bind_topic('fragile.*', 't_broken');
DROP TABLE pgmq.q_t_broken;
SELECT count(*) FROM pgmq.q_t_all;
SELECT * FROM pgmq.send_batch_topic('fragile.x', ARRAY['{"f":1}']::jsonb[]);
SELECT pgmq.send_topic('fragile.x', '{"f":2}');
SELECT count(*) FROM pgmq.q_t_all;
DROP TABLE pgmq.a_t_broken;
DELETE FROM pgmq.meta WHERE queue_name = 't_broken';

-- unbind
SELECT pgmq.unbind_topic('logs.#', 't_logs');
SELECT pgmq.unbind_topic('logs.#', 't_logs');
SELECT pgmq.unbind_topic('nope', 'nope');
SELECT pgmq.unbind_topic(NULL, 't_logs');
SELECT pgmq.unbind_topic('', 't_logs');
SELECT pgmq.unbind_topic('logs.*', NULL);
SELECT pgmq.unbind_topic('logs.*', '');
-- drop_queue removes the queue's bindings
SELECT pgmq.drop_queue('t_errors');
SELECT pattern, queue_name FROM pgmq.topic_bindings ORDER BY 1, 2;
SELECT pgmq.drop_queue('t_all');
SELECT pgmq.drop_queue('t_logs');
SELECT pgmq.drop_queue('t_none');
SELECT count(*) FROM pgmq.topic_bindings;
