package rest

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// exampleArgs are values the handlers accept for each argument name, typed
// as the document says (an array for the jsonb[] headers of batches).
func exampleValue(name string, schema map[string]any) any {
	if schema["type"] == "array" {
		switch name {
		case "msg_ids":
			return []any{1}
		case "msgs":
			return []any{map[string]any{"oa": 1}}
		}
		return []any{map[string]any{}}
	}
	switch name {
	case "queue_name", "table_name":
		return "oa_q"
	case "msg", "conditional", "headers":
		return map[string]any{}
	case "routing_key":
		return "oa.key"
	case "pattern":
		return "oa.*"
	case "partition_interval", "retention_interval":
		return "10"
	case "partitioned":
		return false
	case "max_poll_seconds":
		return 0
	case "qty", "msg_id", "premake", "leading_partition":
		return 1
	}
	return 0 // vt, delay, throttle_interval_ms, poll_interval_ms
}

// The OpenAPI document describes exactly what the handlers serve: every
// function of the table has a path; every request shape it documents (all
// arguments, and only the required ones) reaches the function instead of
// PGRST202, with a documented status; a name it does not document is 404.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	e := newEnv(t, 2)
	dropQueues(t, e.cluster, "oa_q")
	t.Cleanup(func() { dropQueues(t, e.cluster, "oa_q") })
	e.must("create", `{"queue_name":"oa_q"}`, 204, ``)

	for _, path := range []string{"", "openapi.json"} {
		r := e.do(req{method: "GET", path: path, token: "-"})
		if r.status != 200 || r.body != string(OpenAPI()) {
			t.Fatalf("GET /pgmq/v1/%s: %d", path, r.status)
		}
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Parameters []struct {
				Name     string `json:"name"`
				Required bool   `json:"required"`
			} `json:"parameters"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(pgmqPaths(t, OpenAPI()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	for _, f := range functionList {
		if _, ok := doc.Paths["/"+f.name]; !ok {
			t.Errorf("function %s has no path", f.name)
		}
	}
	names := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		item := doc.Paths[p]
		fn := strings.TrimPrefix(p, "/")
		post := item["post"]
		schema := post.RequestBody.Content["application/json"].Schema
		alts := []map[string]any{schema}
		if oneOf, ok := schema["oneOf"].([]any); ok {
			alts = nil
			for _, a := range oneOf {
				alts = append(alts, a.(map[string]any))
			}
		}
		for _, alt := range alts {
			props, _ := alt["properties"].(map[string]any)
			required := map[string]bool{}
			for _, r := range alt["required"].([]any) {
				required[r.(string)] = true
			}
			for _, onlyRequired := range []bool{false, true} {
				body := map[string]any{}
				for name, sc := range props {
					if onlyRequired && !required[name] {
						continue
					}
					body[name] = exampleValue(name, sc.(map[string]any))
				}
				raw, _ := json.Marshal(body)
				r := e.call(fn, string(raw))
				if strings.Contains(r.body, `"PGRST202"`) {
					t.Errorf("%s %s: the documented request is not served: %s", fn, raw, r.body)
				}
				if _, ok := post.Responses[strconv.Itoa(r.status)]; !ok {
					t.Errorf("%s %s: status %d is not documented (%s)", fn, raw, r.status, r.body)
				}
			}
		}
		if get, ok := item["get"]; ok {
			var q []string
			for _, prm := range get.Parameters {
				q = append(q, prm.Name+"=oa_q")
			}
			r := e.do(req{method: "GET", path: fn + "?" + strings.Join(q, "&")})
			if _, ok := get.Responses[strconv.Itoa(r.status)]; !ok || strings.Contains(r.body, `"PGRST202"`) {
				t.Errorf("GET %s: %d %s", fn, r.status, r.body)
			}
		} else if r := e.do(req{method: "GET", path: fn}); r.status != 405 {
			t.Errorf("GET %s is not documented but answers %d", fn, r.status)
		}
	}
	// A function the document does not name is not served.
	for _, fn := range []string{"format_table_name", "_send_batch", "notify_queue_listeners", "validate_routing_key"} {
		if _, ok := doc.Paths["/"+fn]; ok {
			t.Errorf("internal function %s is documented", fn)
		}
		if r := e.call(fn, `{}`); r.status != 404 {
			t.Errorf("%s answers %d", fn, r.status)
		}
	}
}

// pgmqPaths is the document without the paths that have a server of their
// own (the console's /mqstack/v1 endpoints, checked in browse_test.go).
func pgmqPaths(t *testing.T, doc []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	paths := m["paths"].(map[string]any)
	for p, item := range paths {
		if _, own := item.(map[string]any)["servers"]; own {
			delete(paths, p)
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
