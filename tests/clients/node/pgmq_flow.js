// The usual pgmq-js flow (create, send, read, archive, delete, ...) run
// unchanged against mqstack's proxy. Connection settings come from the
// standard PG* environment variables; PGSSL=1 turns TLS on.
'use strict';
const { Pgmq } = require('pgmq-js');
const assert = require('node:assert/strict');
const { pgConfig } = require('./pgenv');

async function main() {
  const pgmq = await Pgmq.new(pgConfig({ max: 4 }));
  const q = process.env.QUEUE || 'js_flow';
  const summary = {};
  try {
    await pgmq.queue.create(q);
    const id1 = await pgmq.msg.send(q, { id: 1, name: 'first' });
    const ids = await pgmq.msg.sendBatch(q, [{ id: 2 }, { id: 3 }, { id: 4 }, { id: 5 }]);
    assert.equal(ids.length, 4);
    assert.deepEqual(ids, [id1 + 1, id1 + 2, id1 + 3, id1 + 4]);

    const m = await pgmq.msg.read(q, 30);
    assert.equal(m.msgId, id1);
    assert.equal(m.readCount, 1);
    assert.deepEqual(m.message, { id: 1, name: 'first' });

    const batch = await pgmq.msg.readBatch(q, 30, 2);
    assert.deepEqual(batch.map((x) => x.msgId), [ids[0], ids[1]]);

    // pgmq-js 1.3.1 calls set_vt with untyped parameters, which pgmq 1.13.1
    // (four set_vt overloads) cannot resolve: real pgmq answers 42725 too.
    await assert.rejects(pgmq.msg.setVt(q, id1, 0), (e) => e.code === '42725');

    assert.equal(await pgmq.msg.archive(q, id1), true);
    assert.equal(await pgmq.msg.archive(q, id1), false);
    assert.deepEqual(await pgmq.msg.archiveBatch(q, [ids[0], 999999]), [ids[0]]);
    assert.equal(await pgmq.msg.delete(q, ids[1]), true);
    assert.deepEqual(await pgmq.msg.deleteBatch(q, [ids[1], ids[2]]), [ids[2]]);

    const popped = await pgmq.msg.pop(q);
    assert.equal(popped.msgId, ids[3]);
    assert.equal(await pgmq.msg.pop(q), undefined);

    const queues = await pgmq.queue.list();
    assert.ok(queues.some((x) => x.name === q), 'list shows the queue');
    const metrics = await pgmq.queue.getMetrics(q);
    assert.equal(metrics.queueName, q);
    assert.equal(metrics.queueLength, 0);
    assert.equal(metrics.totalMessages, 5);
    const all = await pgmq.queue.getAllMetrics();
    assert.ok(all.some((x) => x.queueName === q));

    await pgmq.msg.send(q, { id: 6 });
    await pgmq.queue.purge(q);
    assert.equal((await pgmq.queue.getMetrics(q)).queueLength, 0);

    // More concurrent work than the proxy has backends: statements cross backends.
    const sends = await Promise.all(Array.from({ length: 40 }, (_, i) => pgmq.msg.send(q, { n: i })));
    assert.equal(new Set(sends).size, 40);
    const got = await pgmq.msg.readBatch(q, 30, 100);
    assert.equal(got.length, 40);
    await pgmq.queue.drop(q);
    summary.sent = 46;
    summary.queues = queues.length;
  } finally {
    await pgmq.close();
  }
  console.log('OK ' + JSON.stringify(summary));
}

main().catch((err) => {
  console.error('FAIL', err && (err.stack || err));
  process.exit(1);
});
