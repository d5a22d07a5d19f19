// node-postgres (pg) through mqstack's proxy: simple and extended queries,
// named prepared statements shared by a pool larger than the proxy's backend
// pool, transactions, and LISTEN/NOTIFY on a queue's insert channel.
'use strict';
const { Pool, Client } = require('pg');
const assert = require('node:assert/strict');
const { pgConfig: config } = require('./pgenv');

async function main() {
  const q = process.env.QUEUE || 'node_pg';
  const pool = new Pool({ ...config(), max: 12 });
  try {
    // simple protocol
    const v = await pool.query('SELECT 1 AS one; SELECT 2 AS two');
    assert.equal(v[1].rows[0].two, 2);
    await pool.query(`SELECT pgmq.create('${q}')`);

    // extended protocol, unnamed statements
    const sent = await pool.query('SELECT * FROM pgmq.send($1, $2::jsonb)', [q, { hello: 'world' }]);
    assert.equal(Number(sent.rows[0].send), 1);

    // named prepared statements from 12 pool clients at once
    const stmt = (i) => ({ name: 'mq_send', text: 'SELECT * FROM pgmq.send($1, $2::jsonb)', values: [q, { i }] });
    const res = await Promise.all(Array.from({ length: 60 }, (_, i) => pool.query(stmt(i))));
    assert.equal(new Set(res.map((r) => r.rows[0].send)).size, 60);
    const read = { name: 'mq_read', text: 'SELECT msg_id, message FROM pgmq.read($1, 30, $2)' };
    const rows = await Promise.all(Array.from({ length: 6 }, () => pool.query({ ...read, values: [q, 20] })));
    const ids = rows.flatMap((r) => r.rows.map((x) => x.msg_id));
    assert.equal(ids.length, 61);
    assert.equal(new Set(ids).size, 61, 'no message read twice');

    // a transaction keeps its backend; rollback undoes the delete
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      const d = await c.query('SELECT pgmq.delete($1, $2::bigint)', [q, ids[0]]);
      assert.equal(d.rows[0].delete, true);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    const m = await pool.query('SELECT queue_length FROM pgmq.metrics($1)', [q]);
    assert.equal(Number(m.rows[0].queue_length), 61);

    // LISTEN on the queue's insert channel goes to the proxy's shared
    // listener (no pin); a send notifies it
    await pool.query('SELECT pgmq.enable_notify_insert($1, 0)', [q]);
    const listener = new Client(config());
    await listener.connect();
    const got = new Promise((resolve) => listener.on('notification', (n) => resolve(n.channel)));
    await listener.query(`LISTEN "pgmq.q_${q}.INSERT"`);
    await pool.query('SELECT pgmq.send($1, $2::jsonb)', [q, {}]);
    const channel = await Promise.race([got, new Promise((_, rej) => setTimeout(() => rej(new Error('no notification')), 5000))]);
    assert.equal(channel, `pgmq.q_${q}.INSERT`);
    await listener.end();

    // errors keep their SQLSTATE
    await assert.rejects(pool.query('SELECT * FROM pgmq.read($1, 30, 1)', ['no_such_queue']), (e) => e.code === '42P01');
    await pool.query('SELECT pgmq.drop_queue($1)', [q]);
  } finally {
    await pool.end();
  }
  console.log('OK node-postgres');
}

main().catch((err) => {
  console.error('FAIL', err && (err.stack || err));
  process.exit(1);
});
