package rest

import (
	"net/http"
	"testing"
)

// The seed's examples are the contract (spec: "The seed's examples are the
// contract"): each request against a fresh queue my_demo, with exact
// statuses and bodies, sent as Python requests sends data=... (no
// Content-Type) and as curl with -H 'Content-Type: application/json'.
func TestSeedContract(t *testing.T) {
	e := newEnv(t, 4)
	styles := []struct {
		name        string
		contentType string
	}{
		{"python-requests", ""},
		{"curl", "application/json"},
		{"curl-charset", "application/json; charset=utf-8"},
	}
	const msg5 = `{"queue_name":"my_demo","msgs":[{"hello":"world-1"},{"hello":"world-2"},{"hello":"world-3"},{"hello":"world-4"},{"hello":"world-5"}]}`
	steps := []struct {
		fn, body string
		status   int
		want     string
	}{
		{"create", `{"queue_name": "my_demo"}`, http.StatusNoContent, ``},
		{"list_queues", ``, http.StatusOK, `[{"queue_name":"my_demo","is_partitioned":false,"is_unlogged":false,"created_at":TS}]`},
		{"send", `{"queue_name": "my_demo", "msg": {"hello": "world-0"}}`, http.StatusOK, `[1]`},
		{"send_batch", msg5, http.StatusOK, `[2,3,4,5,6]`},
		{"read", `{"queue_name": "my_demo", "vt": 30, "qty": 1}`, http.StatusOK,
			`[{"msg_id":1,"read_ct":1,"enqueued_at":TS,"last_read_at":TS,"vt":TS,"message":{"hello":"world-0"},"headers":null}]`},
		{"archive", `{"queue_name": "my_demo", "msg_id": 1}`, http.StatusOK, `true`},
		{"archive", `{"queue_name": "my_demo", "msg_ids": [2, 3]}`, http.StatusOK, `[2,3]`},
		{"delete", `{"queue_name": "my_demo", "msg_id": 4}`, http.StatusOK, `true`},
		{"delete", `{"queue_name": "my_demo", "msg_ids": [5, 6]}`, http.StatusOK, `[5,6]`},
		// The same calls for ids that no longer exist.
		{"archive", `{"queue_name": "my_demo", "msg_id": 1}`, http.StatusOK, `false`},
		{"archive", `{"queue_name": "my_demo", "msg_ids": [2, 3]}`, http.StatusOK, `[]`},
		{"delete", `{"queue_name": "my_demo", "msg_id": 4}`, http.StatusOK, `false`},
		{"delete", `{"queue_name": "my_demo", "msg_ids": [5, 6]}`, http.StatusOK, `[]`},
		{"read", `{"queue_name": "my_demo", "vt": 30, "qty": 1}`, http.StatusOK, `[]`},
	}
	for _, style := range styles {
		t.Run(style.name, func(t *testing.T) {
			// A fresh my_demo, and no other queue in the listing.
			sqlExec(t, e.cluster, `SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta`)
			for _, s := range steps {
				r := e.do(req{path: s.fn, body: s.body, contentType: style.contentType})
				checkResp(t, s.fn+" "+s.body, r, s.status, s.want)
				if s.status == http.StatusOK && r.header.Get("Content-Type") != "application/json; charset=utf-8" {
					t.Fatalf("%s: Content-Type %q", s.fn, r.header.Get("Content-Type"))
				}
				if s.status == http.StatusNoContent && r.header.Get("Content-Type") != "" {
					t.Fatalf("%s: 204 with Content-Type %q", s.fn, r.header.Get("Content-Type"))
				}
			}
		})
	}
	// Python requests with json=...: Content-Type application/json and a
	// compact body; and a call with no body at all.
	sqlExec(t, e.cluster, `SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta`)
	checkResp(t, "create", e.do(req{path: "create", body: `{"queue_name":"my_demo"}`, contentType: "application/json"}), 204, ``)
	checkResp(t, "list_queues (no body)", e.do(req{path: "list_queues"}), 200,
		`[{"queue_name":"my_demo","is_partitioned":false,"is_unlogged":false,"created_at":TS}]`)
	checkResp(t, "metrics (GET)", e.do(req{method: "GET", path: "metrics?queue_name=my_demo"}), 200,
		`{"queue_name":"my_demo","queue_length":0,"newest_msg_age_sec":null,"oldest_msg_age_sec":null,"total_messages":0,"scrape_time":TS,"queue_visible_length":0,"default_partition_length":null}`)
	dropQueues(t, e.cluster, "my_demo")
}
