// Package rest owns mqstack's HTTP API (../shared/spec/rest-api.md):
// POST /pgmq/v1/<function> with PostgREST's RPC semantics, the error body and
// status table, long polling that holds no backend connection while it waits,
// the OpenAPI description generated from the same function table the handlers
// use, and /healthz and /readyz.
//
// A call turns a JSON object of named arguments into one SQL statement with
// named notation and typed parameters (pgmq.read(queue_name => $1::text, ...)),
// which Postgres answers with the JSON of the response (json_agg, to_json), so
// timestamps and values are formatted exactly as Postgres formats them. The
// statement goes through the router's classification and grant check
// (router.Authorize), the same policy the wire proxy applies, and runs on the
// backend pool of the token's role (Pools, a small interface this package
// declares; BackendPools implements it on internal/backend's pools, whose
// Conn.QueryRow drives the protocol).
//
// Long polls also wake on pgmq's insert notifications through the shared
// listener of internal/notify (Hub, a small interface declared here), so a
// message sent by anyone, not only through this process, ends the wait.
//
// rest may import auth, router, configs, internal/backend and internal/notify
// (for its types) of ours; it never imports proxy (and proxy never imports
// rest).
package rest
