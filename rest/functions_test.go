package rest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

// Every function of the API, in its forms, against real Postgres.
func TestEveryFunction(t *testing.T) {
	e := newEnv(t, 4)
	const q = "fn_q"
	dropQueues(t, e.cluster, q, "fn_unlogged", "fn_part", "fn_plain", "Fn_Case")
	t.Cleanup(func() { dropQueues(t, e.cluster, q, "fn_unlogged", "fn_part", "fn_plain", "Fn_Case") })
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := "2020-01-01T00:00:00Z"
	steps := []struct {
		fn, body string
		status   int
		want     string
	}{
		// lifecycle
		{"create", `{"queue_name":"fn_q"}`, 204, ``},
		{"create", `{"queue_name":"fn_q"}`, 204, ``}, // idempotent
		{"create_non_partitioned", `{"queue_name":"fn_plain"}`, 204, ``},
		{"create_unlogged", `{"queue_name":"fn_unlogged"}`, 204, ``},
		{"create_partitioned", `{"queue_name":"fn_part","partition_interval":"10","retention_interval":"100"}`, 204, ``},
		{"create_partitioned", `{"queue_name":"fn_part2","premake":0}`, 400, `{"code":"P0001","message":"premake must be at least 1, got 0","details":null,"hint":null}`},
		{"convert_archive_partitioned", `{"table_name":"fn_plain"}`, 204, ``},
		{"detach_archive", `{"queue_name":"fn_plain"}`, 204, ``},
		{"list_queues", ``, 200, `[ANY"queue_name":"fn_part","is_partitioned":true,"is_unlogged":false,"created_at":TSANY]`},
		{"list_queues", ``, 200, `[ANY{"queue_name":"fn_unlogged","is_partitioned":false,"is_unlogged":true,"created_at":TS}ANY]`},
		// send: the six overloads, delay as number, digit string and timestamps
		{"send", `{"queue_name":"fn_q","msg":{"n":1}}`, 200, `[1]`},
		{"send", `{"queue_name":"fn_q","msg":{"n":2},"headers":{"x-pgmq-group":"a"}}`, 200, `[2]`},
		{"send", `{"queue_name":"fn_q","msg":{"n":3},"delay":3600}`, 200, `[3]`},
		{"send", `{"queue_name":"fn_q","msg":{"n":4},"delay":"3600"}`, 200, `[4]`},
		{"send", fmt.Sprintf(`{"queue_name":"fn_q","msg":{"n":5},"delay":%q}`, future), 200, `[5]`},
		{"send", `{"queue_name":"fn_q","msg":{"n":6},"headers":{"h":1},"delay":3600}`, 200, `[6]`},
		{"send", fmt.Sprintf(`{"queue_name":"fn_q","msg":{"n":7},"headers":{"h":2},"delay":%q}`, past), 200, `[7]`},
		{"send", `{"queue_name":"fn_q","msg":"just text"}`, 200, `[8]`},
		{"send", `{"queue_name":"fn_q","msg":{"n":9},"delay":1.5}`, 400, `{"code":"22P02","message":"invalid input syntax for type integer: \"1.5\"","details":null,"hint":null}`},
		{"send", `{"queue_name":"fn_q","msg":{"n":9},"delay":"tomorrow-ish"}`, 400, `{"code":"22007","message":"invalid input syntax for type timestamp with time zone: \"tomorrow-ish\"","details":null,"hint":null}`},
		// send_batch: six overloads
		{"send_batch", `{"queue_name":"fn_q","msgs":[{"b":1},{"b":2}]}`, 200, `[9,10]`},
		{"send_batch", `{"queue_name":"fn_q","msgs":[{"b":3}],"headers":[{"h":3}]}`, 200, `[11]`},
		{"send_batch", `{"queue_name":"fn_q","msgs":[{"b":4}],"delay":3600}`, 200, `[12]`},
		{"send_batch", fmt.Sprintf(`{"queue_name":"fn_q","msgs":[{"b":5}],"delay":%q}`, future), 200, `[13]`},
		{"send_batch", `{"queue_name":"fn_q","msgs":[{"b":6}],"headers":[null],"delay":"3600"}`, 200, `[14]`},
		{"send_batch", fmt.Sprintf(`{"queue_name":"fn_q","msgs":[{"b":7}],"headers":[{"q\"uote":"back\\slash"}],"delay":%q}`, future), 200, `[15]`},
		{"send_batch", `{"queue_name":"fn_q","msgs":[]}`, 400, `{"code":"P0001","message":"msgs cannot be NULL or empty","details":null,"hint":null}`},
		{"send_batch", `{"queue_name":"fn_q","msgs":[{}],"headers":[]}`, 400, `{"code":"P0001","message":"headers array length (0) must match msgs array length (1)",ANY}`},
		// reads: 1, 2, 7, 8, 9, 10, 11 are visible (7 had a delay in the past)
		{"read", `{"queue_name":"fn_q","vt":0,"qty":1}`, 200, `[{"msg_id":1,"read_ct":1,"enqueued_at":TS,"last_read_at":TS,"vt":TS,"message":{"n":1},"headers":null}]`},
		{"read", `{"queue_name":"fn_q","vt":"0","qty":"1","conditional":{"n":2}}`, 200, `[{"msg_id":2,"read_ct":1,ANY,"message":{"n":2},"headers":{"x-pgmq-group":"a"}}]`},
		{"read", `{"queue_name":"fn_q","vt":1.5,"qty":1}`, 400, `{"code":"22P02","message":"invalid input syntax for type integer: \"1.5\"","details":null,"hint":null}`},
		{"read", `{"queue_name":"fn_q","vt":30,"qty":-1}`, 400, `{"code":"2201W","message":"LIMIT must not be negative",ANY}`},
		{"read_with_poll", `{"queue_name":"fn_q","vt":0,"qty":1,"max_poll_seconds":1,"poll_interval_ms":10}`, 200, `[{"msg_id":1,"read_ct":2,ANY}]`},
		{"read_with_poll", `{"queue_name":"fn_q","vt":0,"qty":1,"max_poll_seconds":0}`, 200, `[]`},
		{"read_with_poll", `{"queue_name":"fn_q","vt":0,"qty":1,"max_poll_seconds":1,"conditional":{"b":3}}`, 200, `[{"msg_id":11,ANY}]`},
		{"read_grouped", `{"queue_name":"fn_q","vt":0,"qty":1}`, 200, `[{"msg_id":1,ANY}]`},
		{"read_grouped_rr", `{"queue_name":"fn_q","vt":0,"qty":1}`, 200, `[{"msg_id":1,ANY}]`},
		{"read_grouped_head", `{"queue_name":"fn_q","vt":0,"qty":1}`, 200, `[{"msg_id":1,ANY}]`},
		{"read_grouped_with_poll", `{"queue_name":"fn_q","vt":0,"qty":1,"max_poll_seconds":1}`, 200, `[{"msg_id":1,ANY}]`},
		{"read_grouped_rr_with_poll", `{"queue_name":"fn_q","vt":0,"qty":1,"max_poll_seconds":1,"poll_interval_ms":50}`, 200, `[{"msg_id":1,ANY}]`},
		{"read_grouped_head_with_poll", `{"queue_name":"fn_q","vt":0,"qty":1,"max_poll_seconds":"1"}`, 200, `[{"msg_id":1,ANY}]`},
		{"read_with_poll", `{"queue_name":"fn_q","vt":0,"qty":1,"max_poll_seconds":1.5}`, 400, `{"code":"22P02","message":"invalid input syntax for type integer: \"1.5\"","details":null,"hint":null}`},
		// set_vt: four overloads
		{"set_vt", `{"queue_name":"fn_q","msg_id":1,"vt":0}`, 200, `[{"msg_id":1,ANY}]`},
		{"set_vt", fmt.Sprintf(`{"queue_name":"fn_q","msg_id":1,"vt":%q}`, past), 200, `[{"msg_id":1,"read_ct":ANY,"vt":"2020-01-01T00:00:00+00:00",ANY}]`},
		{"set_vt", `{"queue_name":"fn_q","msg_ids":[1,2],"vt":"0"}`, 200, `[{"msg_id":1,ANY},{"msg_id":2,ANY}]`},
		{"set_vt", fmt.Sprintf(`{"queue_name":"fn_q","msg_ids":["1",99],"vt":%q}`, past), 200, `[{"msg_id":1,ANY}]`},
		{"set_vt", `{"queue_name":"fn_q","msg_id":99,"vt":0}`, 200, `[]`},
		// pop, archive, delete
		{"pop", `{"queue_name":"fn_q"}`, 200, `[{"msg_id":1,ANY}]`},
		{"pop", `{"queue_name":"fn_q","qty":2}`, 200, `[{"msg_id":2,ANY},{"msg_id":7,ANY}]`},
		{"archive", `{"queue_name":"fn_q","msg_id":"8"}`, 200, `true`},
		{"archive", `{"queue_name":"fn_q","msg_ids":[9,"10",null]}`, 200, `[9,10]`},
		{"delete", `{"queue_name":"fn_q","msg_id":11}`, 200, `true`},
		{"delete", `{"queue_name":"fn_q","msg_ids":[12,13,999]}`, 200, `[12,13]`},
		{"delete", `{"queue_name":"fn_q","msg_ids":[1.5]}`, 400, `{"code":"22P02",ANY}`},
		// metrics
		{"metrics", `{"queue_name":"fn_q"}`, 200, `{"queue_name":"fn_q","queue_length":6,"newest_msg_age_sec":ANY,"oldest_msg_age_sec":ANY,"total_messages":15,"scrape_time":TS,"queue_visible_length":0,"default_partition_length":null}`},
		{"metrics_all", ``, 200, `[ANY{"queue_name":"fn_q","queue_length":6,ANY]`},
		{"purge_queue", `{"queue_name":"fn_q"}`, 200, `6`},
		// FIFO indexes
		{"create_fifo_index", `{"queue_name":"fn_q"}`, 204, ``},
		{"create_fifo_indexes_all", ``, 204, ``},
		// topics
		{"bind_topic", `{"pattern":"fn.*","queue_name":"fn_q"}`, 204, ``},
		{"bind_topic", `{"pattern":"fn.#","queue_name":"fn_unlogged"}`, 204, ``},
		{"test_routing", `{"routing_key":"fn.x"}`, 200, `[{"pattern":"fn.#","queue_name":"fn_unlogged","compiled_regex":"^fn\\..*$"},{"pattern":"fn.*","queue_name":"fn_q","compiled_regex":"^fn\\.[^.]+$"}]`},
		{"list_topic_bindings", `{"queue_name":"fn_q"}`, 200, `[{"pattern":"fn.*","queue_name":"fn_q","bound_at":TS,"compiled_regex":"^fn\\.[^.]+$"}]`},
		{"list_topic_bindings", ``, 200, `[ANY"pattern":"fn.#"ANY]`},
		{"send_topic", `{"routing_key":"fn.x","msg":{"t":1}}`, 200, `2`},
		{"send_topic", `{"routing_key":"fn.x","msg":{"t":2},"delay":0}`, 200, `2`},
		{"send_topic", `{"routing_key":"fn.x","msg":{"t":3},"headers":{"h":1},"delay":"0"}`, 200, `2`},
		{"send_topic", `{"routing_key":"nothing.bound","msg":{"t":4}}`, 200, `0`},
		{"send_batch_topic", `{"routing_key":"fn.x","msgs":[{"t":5},{"t":6}]}`, 200, `[{"queue_name":"fn_q","msg_id":19},{"queue_name":"fn_q","msg_id":20},{"queue_name":"fn_unlogged","msg_id":4},{"queue_name":"fn_unlogged","msg_id":5}]`},
		{"send_batch_topic", `{"routing_key":"fn.x.y","msgs":[{"t":7}],"headers":[{"h":1}],"delay":0}`, 200, `[{"queue_name":"fn_unlogged","msg_id":6}]`},
		{"send_batch_topic", fmt.Sprintf(`{"routing_key":"fn.x.y","msgs":[{"t":8}],"delay":%q}`, past), 200, `[{"queue_name":"fn_unlogged","msg_id":7}]`},
		{"send_topic", `{"routing_key":"bad..key","msg":{}}`, 400, `{"code":"P0001","message":"routing_key cannot contain consecutive dots. Got: bad..key",ANY}`},
		{"unbind_topic", `{"pattern":"fn.*","queue_name":"fn_q"}`, 200, `true`},
		{"unbind_topic", `{"pattern":"fn.*","queue_name":"fn_q"}`, 200, `false`},
		// notify on insert
		{"enable_notify_insert", `{"queue_name":"fn_q"}`, 204, ``},
		{"update_notify_insert", `{"queue_name":"fn_q","throttle_interval_ms":1000}`, 204, ``},
		{"list_notify_insert_throttles", ``, 200, `[ANY{"queue_name":"fn_q","throttle_interval_ms":1000,"last_notified_at":TS}ANY]`},
		{"disable_notify_insert", `{"queue_name":"fn_q"}`, 204, ``},
		{"enable_notify_insert", `{"queue_name":"fn_q","throttle_interval_ms":-1}`, 400, `{"code":"P0001","message":"throttle_interval_ms must be non-negative",ANY}`},
		// case folding: Fn_Case shares nothing with fn_case but folds to q_fn_case
		{"create", `{"queue_name":"Fn_Case"}`, 204, ``},
		{"send", `{"queue_name":"Fn_Case","msg":1}`, 200, `[1]`},
		{"drop_queue", `{"queue_name":"Fn_Case"}`, 200, `true`},
		// drop: both overloads
		{"drop_queue", `{"queue_name":"fn_unlogged"}`, 200, `true`},
		{"drop_queue", `{"queue_name":"fn_unlogged"}`, 200, `false`},
		{"drop_queue", `{"queue_name":"fn_part","partitioned":true}`, 200, `true`},
		{"drop_queue", `{"queue_name":"fn_plain","partitioned":"false"}`, 200, `true`},
		// a NULL integer delay fails the insert (and uses up an id)
		{"send", `{"queue_name":"fn_q","msg":{"n":9},"delay":null}`, 400, `{"code":"23502",ANY}`},
	}
	for _, s := range steps {
		r := e.call(s.fn, s.body)
		checkResp(t, s.fn+" "+s.body, r, s.status, s.want)
	}
	// Every function of the table was called.
	called := map[string]bool{}
	for _, s := range steps {
		called[s.fn] = true
	}
	for _, f := range functionList {
		if !called[f.name] {
			t.Errorf("function %s is not exercised", f.name)
		}
	}
}

// The spec's error table, row by row.
func TestErrorRows(t *testing.T) {
	e := newEnv(t, 2, withConfig(func(c *configs.RESTConfig) { c.MaxBodyBytes = 4096 }))
	dropQueues(t, e.cluster, "err_q")
	e.must("create", `{"queue_name":"err_q"}`, 204, ``)
	t.Cleanup(func() { dropQueues(t, e.cluster, "err_q") })

	t.Run("401 no token", func(t *testing.T) {
		r := e.do(req{path: "list_queues", token: "-"})
		checkResp(t, "no token", r, 401, `{"code":"PGRST302","message":"no token: send Authorization: Bearer <JWT>","details":null,"hint":null}`)
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="mqstack"` {
			t.Fatalf("WWW-Authenticate %q", got)
		}
		r = e.do(req{path: "list_queues", token: "-", header: map[string]string{"Authorization": "Basic dXNlcjpwdw=="}})
		checkResp(t, "basic", r, 401, `{"code":"PGRST302",ANY}`)
	})
	t.Run("401 bad token", func(t *testing.T) {
		r := e.do(req{path: "list_queues", token: "not.a.jwt"})
		checkResp(t, "bad token", r, 401, `{"code":"PGRST301","message":"malformed tokenANY","details":null,"hint":null}`)
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="mqstack", error="invalid_token", error_description="malformed token`) {
			t.Fatalf("WWW-Authenticate %q", got)
		}
		other := testenv.Token(t, []byte("another-secret-0123456789abcdef-0123456789"), auth.MintOptions{})
		r = e.do(req{path: "list_queues", token: other})
		checkResp(t, "wrong key", r, 401, `{"code":"PGRST301","message":"bad token signatureANY}`)
	})
	t.Run("401 expired", func(t *testing.T) {
		r := e.do(req{path: "list_queues", token: expiredToken(t)})
		checkResp(t, "expired", r, 401, `{"code":"PGRST303","message":"token expiredANY}`)
		if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token", error_description="token expired`) {
			t.Fatalf("WWW-Authenticate %q", got)
		}
	})
	t.Run("bearer scheme is case-insensitive", func(t *testing.T) {
		r := e.do(req{path: "list_queues", token: "-", header: map[string]string{"Authorization": "bEaReR " + e.token}})
		checkResp(t, "bEaReR", r, 200, `[ANY]`)
	})
	t.Run("403 superuser role", func(t *testing.T) {
		r := e.do(req{path: "list_queues", token: testenv.Token(t, testSecret, auth.MintOptions{Role: "postgres"})})
		checkResp(t, "superuser", r, 403, `{"code":"28000","message":"superuser role not allowedANY}`)
	})
	t.Run("403 unknown role", func(t *testing.T) {
		r := e.do(req{path: "list_queues", token: testenv.Token(t, testSecret, auth.MintOptions{Role: "no_such_role"})})
		checkResp(t, "no such role", r, 403, `{"code":"28000","message":"role \"no_such_role\" does not exist",ANY}`)
	})
	t.Run("404 unknown function", func(t *testing.T) {
		for _, fn := range []string{"format_table_name", "_belongs_to_pgmq", "validate_queue_name", "acquire_queue_lock", "nope"} {
			r := e.call(fn, `{"queue_name":"x"}`)
			checkResp(t, fn, r, 404, `{"code":"PGRST202","message":"Could not find the function pgmq.`+fn+`(queue_name) in the schema cache","details":"pgmq.`+fn+` is not a function of the REST API","hint":null}`)
		}
	})
	t.Run("404 unknown key", func(t *testing.T) {
		r := e.call("send", `{"queue_name":"err_q","message":{}}`)
		checkResp(t, "send message", r, 404, `{"code":"PGRST202","message":"Could not find the function pgmq.send(message, queue_name) in the schema cache","details":"Searched for the function pgmq.send with parameters message, queue_name, but no matches were found","hint":"pgmq.send accepts (queue_name, msg[, headers][, delay])"}`)
		r = e.call("archive", `{"queue_name":"err_q","msg_id":1,"msg_ids":[1]}`)
		checkResp(t, "archive both", r, 404, `{"code":"PGRST202",ANY"hint":"pgmq.archive accepts (queue_name, msg_id) or (queue_name, msg_ids)"}`)
		r = e.call("read", ``)
		checkResp(t, "read without args", r, 404, `{"code":"PGRST202","message":"Could not find the function pgmq.read() in the schema cache","details":"Searched for the function pgmq.read with no parameters, but no matches were found","hint":"pgmq.read accepts (queue_name, vt, qty[, conditional])"}`)
		r = e.call("send_topic", `{"routing_key":"a","msg":{},"headers":{}}`)
		checkResp(t, "send_topic headers without delay", r, 404, `{"code":"PGRST202",ANY}`)
	})
	t.Run("404 unknown queue", func(t *testing.T) {
		r := e.call("send", `{"queue_name":"no_such_queue","msg":{}}`)
		checkResp(t, "unknown queue", r, 404, `{"code":"42P01","message":"relation \"pgmq.q_no_such_queue\" does not exist","details":null,"hint":null}`)
		r = e.call("metrics", `{"queue_name":"no_such_queue"}`)
		checkResp(t, "metrics unknown queue", r, 404, `{"code":"42P01",ANY}`)
	})
	t.Run("400 invalid queue name", func(t *testing.T) {
		r := e.call("create", `{"queue_name":"bad;name"}`)
		checkResp(t, "invalid", r, 400, `{"code":"P0001","message":"queue name contains invalid characters: $, ;, --, or \\'","details":null,"hint":null}`)
		r = e.call("create", `{"queue_name":"`+strings.Repeat("x", 48)+`"}`)
		checkResp(t, "too long", r, 400, `{"code":"P0001","message":"queue name is too long, maximum length is 47 characters",ANY}`)
	})
	t.Run("400 bad JSON", func(t *testing.T) {
		checkResp(t, "garbage", e.call("send", `{"queue_name":`), 400, `{"code":"PGRST102","message":"invalid JSON in the body: ANY","details":null,"hint":null}`)
		checkResp(t, "array", e.call("send", `[1,2]`), 400, `{"code":"PGRST102","message":"the body must be a JSON object of named arguments","details":null,"hint":null}`)
		checkResp(t, "trailing", e.call("send", `{} {}`), 400, `{"code":"PGRST102","message":"invalid JSON in the body: data after the object",ANY}`)
		checkResp(t, "NUL", e.call("send", `{"queue_name":"a\u0000b","msg":1}`), 400, `{"code":"22021",ANY}`)
		checkResp(t, "jsonb NUL string", e.call("send", `{"queue_name":"err_q","msg":"\u0000"}`), 400, `{"code":"22P05","message":"unsupported Unicode escape sequence","details":"\\u0000 cannot be converted to text.","hint":null}`)
		checkResp(t, "jsonb NUL escape", e.call("send", `{"queue_name":"err_q","msg":{"a":"\u0000"}}`), 400, `{"code":"22P05",ANY}`)
	})
	t.Run("413", func(t *testing.T) {
		big := `{"queue_name":"err_q","msg":"` + strings.Repeat("x", 5000) + `"}`
		checkResp(t, "big", e.call("send", big), 413, `{"code":"54000","message":"the request body is larger than rest.max_body_bytes (4096 bytes)","details":null,"hint":null}`)
	})
	t.Run("415", func(t *testing.T) {
		r := e.do(req{path: "send", body: `{"queue_name":"err_q","msg":1}`, contentType: "application/x-www-form-urlencoded"})
		checkResp(t, "form", r, 415, `{"code":"PGRST107","message":"Content-Type \"application/x-www-form-urlencoded\" is not supported: send application/json (or no Content-Type)",ANY}`)
		r = e.do(req{path: "send", body: `{}`, contentType: "application/json; charset=latin1"})
		checkResp(t, "latin1", r, 415, `{"code":"PGRST107",ANY}`)
	})
	t.Run("405 and GET", func(t *testing.T) {
		checkResp(t, "GET send", e.do(req{method: "GET", path: "send?queue_name=err_q"}), 405, `{"code":"PGRST117","message":"method GET not allowed for pgmq.send (allowed: POST)",ANY}`)
		checkResp(t, "GET list_queues", e.do(req{method: "GET", path: "list_queues"}), 200, `[ANY"queue_name":"err_q"ANY]`)
		checkResp(t, "GET metrics_all", e.do(req{method: "GET", path: "metrics_all"}), 200, `[ANY"queue_name":"err_q"ANY]`)
		checkResp(t, "GET metrics unknown key", e.do(req{method: "GET", path: "metrics?queue=err_q"}), 404, `{"code":"PGRST202",ANY}`)
	})
	t.Run("X-Request-Id", func(t *testing.T) {
		r := e.do(req{path: "list_queues", header: map[string]string{"X-Request-Id": "abc-123"}})
		if r.header.Get("X-Request-Id") != "abc-123" {
			t.Fatalf("X-Request-Id not echoed: %q", r.header.Get("X-Request-Id"))
		}
		r = e.do(req{path: "list_queues"})
		if len(r.header.Get("X-Request-Id")) != 16 {
			t.Fatalf("X-Request-Id not generated: %q", r.header.Get("X-Request-Id"))
		}
	})
}

// 500 and 503 come from the backend side; a scripted pool produces them.
func TestServerErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		pools  Pools
		status int
		want   string
	}{
		{"500 internal", fakePools{queryErr: pgErr("XX000", "something broke")}, 500, `{"code":"XX000","message":"something broke","details":"error id ANY","hint":null}`},
		{"500 go error", fakePools{queryErr: errBoom}, 503, `{"code":"08006","message":"the database backend is unavailable","details":"error id ANY","hint":null}`},
		{"503 pool timeout", fakePools{acquireErr: pgErr("53300", "no backend connection free")}, 503, `{"code":"53300","message":"no backend connection free","details":"error id ANY","hint":null}`},
		{"503 backend down", fakePools{acquireErr: errBoom}, 503, `{"code":"08006",ANY}`},
		{"503 admin shutdown", fakePools{queryErr: pgErr("57P01", "terminating connection due to administrator command")}, 503, `{"code":"57P01",ANY}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newFakeEnv(t, c.pools)
			r := e.call("list_queues", ``)
			checkResp(t, c.name, r, c.status, c.want)
			id := r.header.Get("X-Error-Id")
			if id == "" || !strings.Contains(r.body, id) {
				t.Fatalf("error id %q not in body %s", id, r.body)
			}
			if !e.logged(id) {
				t.Fatalf("error id %q not logged", id)
			}
			if c.status == 503 && r.header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
}

// /healthz and /readyz.
func TestHealthAndReady(t *testing.T) {
	e := newEnv(t, 2)
	checkResp(t, "healthz", e.do(req{method: "GET", path: "/healthz", token: "-"}), 200, `{"status":"ok"}`)
	checkResp(t, "readyz", e.do(req{method: "GET", path: "/readyz", token: "-"}), 200, `{"status":"ok"}`)
	down := newFakeEnv(t, fakePools{acquireErr: errBoom})
	checkResp(t, "readyz down", down.do(req{method: "GET", path: "/readyz", token: "-"}), 503, `{"code":"08006",ANY}`)
	checkResp(t, "unknown path", e.do(req{method: "GET", path: "/nope", token: "-"}), 404, `{"code":"PGRST125",ANY}`)
}
