// node-postgres listeners through mqstack's proxy: more listening clients
// than the proxy has backends (LISTEN must not hold one), a LISTEN made
// inside a committed transaction and one inside a rolled-back transaction,
// pg_listening_channels(), and pgmq's insert notifications on a queue whose
// name has capitals (the channel is quoted). Prints one "GOT" line per
// listener and notification, then "OK listen-pg".
'use strict';
const { Pool, Client } = require('pg');
const assert = require('node:assert/strict');
const { pgConfig: config } = require('./pgenv');

// A connected client that keeps what it is notified of, and can wait for
// the next notification.
async function listener() {
  const client = new Client(config());
  await client.connect();
  const notes = [];
  let wake = null;
  client.on('notification', (n) => {
    notes.push(n);
    if (wake) wake();
  });
  const next = async () => {
    if (notes.length === 0) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no notification within 10s')), 10000);
        wake = () => { clearTimeout(timer); wake = null; resolve(); };
      });
    }
    return notes.shift();
  };
  return { client, next, notes };
}

async function main() {
  const q = process.env.QUEUE;
  const channel = `pgmq.q_${q}.INSERT`;
  const pool = new Pool({ ...config(), max: 3 });
  const clients = [];
  try {
    await pool.query('SELECT pgmq.create($1)', [q]);
    // Throttle 0: each send notifies.
    await pool.query('SELECT pgmq.enable_notify_insert($1, 0)', [q]);

    // Six plain listeners: three times the proxy's pool of two backends.
    for (let i = 0; i < 6; i++) {
      const l = await listener();
      clients.push(l);
      await l.client.query(`LISTEN "${channel}"`);
    }
    const committed = await listener();
    clients.push(committed);
    await committed.client.query('BEGIN');
    await committed.client.query(`LISTEN "${channel}"`);
    await committed.client.query('COMMIT');
    const rolledBack = await listener();
    clients.push(rolledBack);
    await rolledBack.client.query('BEGIN');
    await rolledBack.client.query(`LISTEN "${channel}"`);
    await rolledBack.client.query('ROLLBACK');
    await rolledBack.client.query('LISTEN node_barrier');

    const own = await committed.client.query('SELECT pg_listening_channels()');
    assert.deepEqual(own.rows.map((r) => r.pg_listening_channels), [channel]);
    const none = await rolledBack.client.query('SELECT pg_listening_channels()');
    assert.deepEqual(none.rows.map((r) => r.pg_listening_channels), ['node_barrier']);

    // While eight clients listen, the pool's queries still get backends.
    for (let i = 0; i < 2; i++) {
      await pool.query('SELECT pgmq.send($1, $2::jsonb)', [q, { i }]);
    }
    await pool.query("SELECT pg_notify('node_barrier', 'end')");

    for (const [i, l] of clients.slice(0, 7).entries()) {
      for (let k = 0; k < 2; k++) {
        const n = await l.next();
        assert.equal(n.channel, channel, `listener ${i} notification ${k}`);
        console.log(`GOT ${i} ${n.channel}`);
      }
    }
    const barrier = await rolledBack.next();
    assert.equal(barrier.channel, 'node_barrier', 'a LISTEN rolled back is not in effect');
    assert.equal(rolledBack.notes.length, 0);
    await pool.query('SELECT pgmq.drop_queue($1)', [q]);
  } finally {
    await Promise.all(clients.map((l) => l.client.end()));
    await pool.end();
  }
  console.log('OK listen-pg');
}

main().catch((err) => {
  console.error('FAIL', err && (err.stack || err));
  process.exit(1);
});
