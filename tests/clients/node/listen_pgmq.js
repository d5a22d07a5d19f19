// A pgmq-js consumer woken by pgmq's insert notifications through mqstack's
// proxy: it reads only when notified, and gets every message sent.
//
// pgmq-js 1.3.1 has no notification API (nor one for enable_notify_insert):
// the consumer takes a client from the library's own pg pool (the `pool`
// field, private in its TypeScript declarations only) and uses
// node-postgres's LISTEN and 'notification' event on it, while the messages
// go through pgmq-js's msg.send and msg.read. Prints one "NOTIFIED" line per
// notification, then "OK listen-pgmq" and a summary.
'use strict';
const { Pgmq } = require('pgmq-js');
const assert = require('node:assert/strict');
const { pgConfig } = require('./pgenv');

async function main() {
  const q = process.env.QUEUE;
  const channel = `pgmq.q_${q}.INSERT`;
  // pgmq-js replaces max with 1000 when idleTimeoutMillis is left unset.
  const pgmq = await Pgmq.new(pgConfig({ max: 4, idleTimeoutMillis: 10000 }));
  let held;
  try {
    await pgmq.queue.create(q);
    held = await pgmq.pool.connect();
    await held.query('SELECT pgmq.enable_notify_insert($1, 0)', [q]);

    const total = 3;
    const read = [];
    let notified = 0;
    let done;
    let timer;
    const finished = new Promise((resolve, reject) => {
      done = resolve;
      timer = setTimeout(() => reject(new Error(`after 15s: ${notified} notifications, ${read.length} messages read`)), 15000);
    });
    // Each notification triggers a read of all that is visible; reads run
    // one after another, so one notification's read never races another's.
    let chain = Promise.resolve();
    held.on('notification', (n) => {
      assert.equal(n.channel, channel);
      notified++;
      console.log(`NOTIFIED ${n.channel}`);
      chain = chain.then(async () => {
        for (;;) {
          const m = await pgmq.msg.read(q, 30);
          if (!m) break;
          read.push(m.message.n);
          await pgmq.msg.delete(q, m.msgId);
        }
        if (read.length === total && notified === total) done();
      });
    });
    await held.query(`LISTEN "${channel}"`);

    for (let n = 1; n <= total; n++) {
      await pgmq.msg.send(q, { n });
    }
    try {
      await finished;
    } finally {
      clearTimeout(timer);
    }
    await chain;
    assert.deepEqual(read, [1, 2, 3]);
    await held.query(`UNLISTEN "${channel}"`);
    await pgmq.queue.drop(q);
    console.log('OK listen-pgmq ' + JSON.stringify({ read: read.length }));
  } finally {
    if (held) held.release();
    await pgmq.close();
  }
}

main().catch((err) => {
  console.error('FAIL', err && (err.stack || err));
  process.exit(1);
});
