// Connection settings of the Node client tests: the standard PG*
// environment variables the Go side sets, PGSSL=1 for TLS, and the
// script's own pool options (extra).
'use strict';

function pgConfig(extra = {}) {
  return {
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT),
    database: process.env.PGDATABASE,
    user: process.env.PGUSER,
    password: process.env.PGPASSWORD,
    ssl: process.env.PGSSL === '1' ? { rejectUnauthorized: false } : false,
    ...extra,
  };
}

module.exports = { pgConfig };
