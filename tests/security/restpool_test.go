package security

import (
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"mqstack/configs"
)

// REST calls run on the same pooled backends as wire clients, and apply no
// settings of their own: the settings a wire client had replayed on a
// backend (client_encoding, statement_timeout, search_path, ...) must not
// follow the backend into a REST call. With LATIN1 left on it, a REST send's
// UTF-8 message would be stored converted from LATIN1 (mojibake).
func TestSharedStateWireSettingsDoNotReachREST(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.Pool.Size = 1; c.Pool.MaxShare = 1 })
	q := uniquePrefix() + "_restenc"
	createQueue(t, q, 0)
	full := mint(t, "wire-settings", nil, nil)
	for _, params := range []map[string]string{
		{"client_encoding": "LATIN1"},
		{"options": "-c statement_timeout=500 -c lock_timeout=1 -c bytea_output=escape -c search_path=public"},
		{"DateStyle": "SQL, DMY", "extra_float_digits": "-15", "TimeZone": "Pacific/Chatham"},
	} {
		conn, err := e.connect(t, full, pgx.QueryExecModeExec, params)
		if err != nil {
			t.Fatalf("connect with %v: %v", params, err)
		}
		if _, err := run(conn, pgx.QueryExecModeExec, "SELECT 1"); err != nil {
			t.Fatalf("wire statement with %v: %v", params, err)
		}
		status, body := e.rest(t, full, "send", map[string]any{"queue_name": q, "msg": map[string]any{"mark": "✓ ü €"}})
		if status != http.StatusOK {
			t.Fatalf("REST send after a wire client with %v: HTTP %d %s", params, status, body)
		}
		conn.Close(ctxFor(t, 5*time.Second))
	}
	var bad int
	if err := direct(t, "mq").QueryRow(ctxFor(t, 10*time.Second),
		`SELECT count(*) FROM pgmq.q_`+q+` WHERE message->>'mark' <> '✓ ü €'`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("%d REST messages stored altered by a wire client's settings", bad)
	}
}
