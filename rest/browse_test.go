package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// browseState is what browsing must never change: each message's read
// count and visibility time.
func browseState(t *testing.T, e *testEnv, queue string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.cluster.ConnString("mq", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	q := `SELECT coalesce(string_agg(msg_id || ':' || read_ct || ':' || vt, ',' ORDER BY msg_id), '') FROM ` +
		pgx.Identifier{"pgmq", "q_" + queue}.Sanitize()
	if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

type browsePageBody struct {
	Queue     string `json:"queue"`
	State     string `json:"state"`
	NextAfter *int64 `json:"next_after"`
	Messages  []struct {
		MsgID        int64  `json:"msg_id"`
		ReadCt       int    `json:"read_ct"`
		Preview      string `json:"preview"`
		MessageBytes int    `json:"message_bytes"`
		HasHeaders   bool   `json:"has_headers"`
	} `json:"messages"`
}

func (e *testEnv) browse(t *testing.T, path string, token string) (int, browsePageBody, string) {
	t.Helper()
	r := e.do(req{method: http.MethodGet, path: "/mqstack/v1/" + path, token: token})
	var b browsePageBody
	if r.status == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &b); err != nil {
			t.Fatalf("%s: %v in %s", path, err, r.body)
		}
	}
	return r.status, b, r.body
}

func TestBrowseChangesNothing(t *testing.T) {
	e := newEnv(t, 2)
	dropQueues(t, e.cluster, "browse_q")
	t.Cleanup(func() { dropQueues(t, e.cluster, "browse_q") })
	e.must("create", `{"queue_name":"browse_q"}`, 204, ``)
	for i := 0; i < 5; i++ {
		e.must("send", `{"queue_name":"browse_q","msg":{"n":`+string(rune('0'+i))+`},"headers":{"h":1}}`, 200, `[ANY]`)
	}
	e.must("send", `{"queue_name":"browse_q","msg":{"later":true},"delay":300}`, 200, `[6]`)
	e.must("read", `{"queue_name":"browse_q","vt":300,"qty":1}`, 200, `[ANY]`)
	e.must("archive", `{"queue_name":"browse_q","msg_id":2}`, 200, `true`)
	before := browseState(t, e, "browse_q")

	cases := []struct {
		state string
		ids   []int64
	}{{"visible", []int64{3, 4, 5}}, {"in_flight", []int64{1}}, {"delayed", []int64{6}}, {"archived", []int64{2}}}
	for _, c := range cases {
		status, b, body := e.browse(t, "queues/browse_q/messages?state="+c.state, "")
		if status != 200 || len(b.Messages) != len(c.ids) {
			t.Fatalf("%s: %d %s", c.state, status, body)
		}
		for i, m := range b.Messages {
			if m.MsgID != c.ids[i] {
				t.Errorf("%s: message %d is %d, want %d", c.state, i, m.MsgID, c.ids[i])
			}
		}
	}
	// Paging: two per page, the next page starts after the last shown.
	_, p1, _ := e.browse(t, "queues/browse_q/messages?limit=2", "")
	if len(p1.Messages) != 2 || p1.NextAfter == nil || *p1.NextAfter != 4 {
		t.Fatalf("page 1: %+v", p1)
	}
	_, p2, _ := e.browse(t, "queues/browse_q/messages?limit=2&after=4", "")
	if len(p2.Messages) != 1 || p2.Messages[0].MsgID != 5 || p2.NextAfter != nil {
		t.Fatalf("page 2: %+v", p2)
	}
	one := e.do(req{method: http.MethodGet, path: "/mqstack/v1/queues/browse_q/messages/3"})
	checkResp(t, "message 3", one, 200, `{"msg_id":3,"read_ct":0,"enqueued_at":TS,"last_read_at":null,"vt":TS,"message_bytes":8,"headers_bytes":8,"message":{"n":2},"headers":{"h":1}}`)
	arch := e.do(req{method: http.MethodGet, path: "/mqstack/v1/queues/browse_q/messages/2?state=archived"})
	checkResp(t, "archived message 2", arch, 200, `{"msg_id":2,ANY"archived_at":TSANY}`)

	if after := browseState(t, e, "browse_q"); after != before {
		t.Fatalf("browsing changed the queue:\nbefore %s\nafter  %s", before, after)
	}
}

func TestBrowseRefusals(t *testing.T) {
	e := newEnv(t, 2)
	dropQueues(t, e.cluster, "browse_open", "browse_secret")
	t.Cleanup(func() { dropQueues(t, e.cluster, "browse_open", "browse_secret") })
	e.must("create", `{"queue_name":"browse_open"}`, 204, ``)
	e.must("create", `{"queue_name":"browse_secret"}`, 204, ``)
	limited := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{
		{Queues: []string{"browse_open"}, Ops: []string{"read", "list"}}}})
	noRole := testenv.Token(t, testSecret, auth.MintOptions{Role: "browse_no_such_role"})

	cases := []struct {
		name, path, token string
		status            int
		want              string
	}{
		{"no token", "queues/browse_open/messages", "-", 401, `{"code":"PGRST302",ANY}`},
		{"grant refuses", "queues/browse_secret/messages", limited, 403,
			`{"code":"42501","message":"permission denied by queue grants: browsing \"browse_secret\" needs the \"read\" grant",ANY}`},
		{"grant refuses one message", "queues/browse_secret/messages/1", limited, 403, `{"code":"42501",ANY}`},
		{"grant allows", "queues/browse_open/messages", limited, 200, `{"queue":"browse_open",ANY}`},
		{"bad state", "queues/browse_open/messages?state=read", "", 400, `{"code":"22023",ANY}`},
		{"limit too large", "queues/browse_open/messages?limit=201", "", 400, `{"code":"22023",ANY}`},
		{"bad after", "queues/browse_open/messages?after=-1", "", 400, `{"code":"22023",ANY}`},
		{"bad name", "queues/a;b/messages", "", 400, `{"code":"22023",ANY}`},
		{"name too long", "queues/" + strings.Repeat("x", 48) + "/messages", "", 400, `{"code":"22023",ANY}`},
		{"no queue", "queues/browse_nothing/messages", "", 404, `{"code":"42P01","message":"no queue named \"browse_nothing\"",ANY}`},
		{"no message", "queues/browse_open/messages/99", "", 404, `{"code":"PGRST116",ANY}`},
		{"stats without console", "stats", "", 404, `{"code":"PGRST125",ANY}`},
		{"session", "session", "", 200, `{"role":"mq","subject":"mqstack-dev","expires_at":ANY,"limited":false,"can_list":true,"service":true,"console":false}`},
		{"limited session", "session", limited, 200, `{"role":"mq",ANY"limited":true,"can_list":true,"service":false,ANY}`},
		{"role that cannot log in", "session", noRole, 403, `{"code":"28000",ANY}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{method: http.MethodGet, path: "/mqstack/v1/" + c.path, token: c.token})
			checkResp(t, c.path, r, c.status, c.want)
		})
	}
}

func TestQueueOverviewFollowsGrants(t *testing.T) {
	e := newEnv(t, 2)
	names := []string{"ov_team_a", "ov_team_b", "ov_other"}
	dropQueues(t, e.cluster, names...)
	t.Cleanup(func() { dropQueues(t, e.cluster, names...) })
	e.must("create", `{"queue_name":"ov_team_a"}`, 204, ``)
	e.must("create_unlogged", `{"queue_name":"ov_team_b"}`, 204, ``)
	e.must("create", `{"queue_name":"ov_other"}`, 204, ``)
	e.must("send", `{"queue_name":"ov_team_a","msg":{}}`, 200, `[1]`)
	e.must("send", `{"queue_name":"ov_team_a","msg":{},"delay":300}`, 200, `[2]`)
	limited := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{
		{Queues: []string{"ov_team_*"}, Ops: []string{"list", "read"}}}})

	r := e.do(req{method: http.MethodGet, path: "/mqstack/v1/queues", token: limited})
	checkResp(t, "overview", r, 200, `{"queues":[ANY],"truncated":false,"max_queues":200}`)
	var body struct {
		Queues []queueRow `json:"queues"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	got := map[string]queueRow{}
	for _, q := range body.Queues {
		got[q.Name] = q
	}
	if _, ok := got["ov_other"]; ok {
		t.Fatalf("limited token lists ov_other: %s", r.body)
	}
	a, b := got["ov_team_a"], got["ov_team_b"]
	if a.Depth == nil || a.Depth.Visible != 1 || a.Depth.Delayed != 1 || a.Depth.InFlight != 0 || a.Depth.Archived != 0 {
		t.Fatalf("ov_team_a depth: %+v", a.Depth)
	}
	if !b.Unlogged || b.Partitioned {
		t.Fatalf("ov_team_b kind: %+v", b)
	}
	if !a.Can["read"] || a.Can["send"] || a.Can["drop"] {
		t.Fatalf("ov_team_a abilities: %v", a.Can)
	}
	noList := testenv.Token(t, testSecret, auth.MintOptions{Grants: []auth.GrantEntry{
		{Queues: []string{"ov_team_a"}, Ops: []string{"send"}}}})
	r = e.do(req{method: http.MethodGet, path: "/mqstack/v1/queues", token: noList})
	checkResp(t, "overview without list", r, 403, `{"code":"42501",ANY}`)
}

// The OpenAPI document describes the console's endpoints: each documented
// path answers with a documented status.
func TestBrowseOpenAPI(t *testing.T) {
	e := newEnv(t, 2)
	dropQueues(t, e.cluster, "oa_browse")
	t.Cleanup(func() { dropQueues(t, e.cluster, "oa_browse") })
	e.must("create", `{"queue_name":"oa_browse"}`, 204, ``)
	e.must("send", `{"queue_name":"oa_browse","msg":{}}`, 200, `[1]`)
	var doc struct {
		Paths map[string]struct {
			Servers []struct {
				URL string `json:"url"`
			} `json:"servers"`
			Get struct {
				Responses map[string]any `json:"responses"`
			} `json:"get"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for p, item := range doc.Paths {
		if len(item.Servers) == 0 {
			continue
		}
		n++
		path := item.Servers[0].URL + strings.NewReplacer("{queue}", "oa_browse", "{msg_id}", "1").Replace(p)
		r := e.do(req{method: http.MethodGet, path: path})
		if _, ok := item.Get.Responses[strconv.Itoa(r.status)]; !ok {
			t.Errorf("GET %s: status %d is not documented (%s)", path, r.status, r.body)
		}
	}
	if n != 6 {
		t.Fatalf("%d console paths documented, want 6", n)
	}
}
