package console

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mqstack/auth"
	"mqstack/internal/testenv"
)

// The banner's link signs in, takes the token out of the address bar and
// shows the queues; the service page shows the process's counters.
func TestBannerLinkOpensConsole(t *testing.T) {
	e := newEnv(t)
	link := e.st.ConsoleURL(e.token)
	if !strings.HasSuffix(link, "/console/#token="+e.token) {
		t.Fatalf("console link %q", link)
	}
	e.open(e.token, "", "queues")
	if h := e.text(`location.hash`); h != "#/queues" {
		t.Fatalf("the token stays in the address bar: hash %q", h)
	}
	e.waitJS("who am I", `document.getElementById("whoami").textContent.includes("Role mq")`)
	e.do("open the service page", chromedp.Click(chromedp.CSS("#nav-service")))
	e.waitJS("the pool of role mq", `Array.from(document.querySelectorAll("#pools-table td")).some(td => td.textContent === "mq")`)
	e.waitJS("client count", `document.getElementById("service-clients").textContent !== "-"`)

	// A pasted token works too, and a bad one is refused with words.
	e.do("sign out", chromedp.Click(chromedp.CSS("#signout")))
	e.waitJS("the sign-in page", `!document.getElementById("page-login").hidden`)
	e.do("paste a bad token", chromedp.SetValue(chromedp.CSS("#token-input"), "not-a-token"),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitJS("the refusal", `document.getElementById("login-error").textContent.includes("Sign in again")`)
	e.do("paste the token", chromedp.SetValue(chromedp.CSS("#token-input"), e.token),
		chromedp.Click(chromedp.CSS("#login-submit")))
	// Signed in again on the page the address names (the service page).
	e.waitJS("the service page again", `!document.getElementById("page-service").hidden &&
		document.getElementById("page-login").hidden`)
	// The refused token is counted where /metrics counts it, and shown.
	e.waitJS("the refusal counted", `Array.from(document.querySelectorAll("#auth-table tr")).some(tr =>
		tr.textContent.startsWith("malformedrest"))`)
}

// Queues created and filled over SQL show their kind and depth by state;
// browsing their messages changes nothing.
func TestQueuesShowDepths(t *testing.T) {
	e := newEnv(t)
	e.freshQueues("depth_a", "depth_u")
	// Made and filled with psql through the proxy, as a user would.
	e.psql(`SELECT pgmq.create('depth_a')`,
		`SELECT pgmq.create_unlogged('depth_u')`,
		`SELECT pgmq.send('depth_a', jsonb_build_object('n', i)) FROM generate_series(1, 4) i`,
		`SELECT pgmq.send('depth_a', '{"later": true}', 300)`,
		`SELECT * FROM pgmq.read('depth_a', 300, 1)`, // message 1 in flight
		`SELECT pgmq.archive('depth_a', 2::bigint)`)
	e.open(e.token, "", "queues")

	e.waitJS("depth_a's visible count", cell("depth_a", "visible")+` === "2"`)
	want := map[string]string{"in_flight": "1", "delayed": "1", "archived": "1", "kind": "plain"}
	for col, v := range want {
		if got := e.text(cell("depth_a", col)); got != v {
			t.Errorf("depth_a %s: %q, want %q", col, got, v)
		}
	}
	if got := e.text(cell("depth_u", "kind")); got != "plain, unlogged" {
		t.Errorf("depth_u kind %q", got)
	}

	before := e.count(`SELECT sum(read_ct) * 1000000 + sum(extract(epoch FROM vt))::bigint FROM pgmq.q_depth_a`)
	e.settled("queues")
	e.do("open depth_a", chromedp.Click(chromedp.CSS(`#queues-table a[href="#/queue/depth_a"]`)))
	e.settled("queue")
	e.waitJS("the visible messages", `document.querySelectorAll("#messages-table tbody tr").length === 2`)
	e.do("show the in-flight messages", chromedp.SetValue(chromedp.CSS("#state-filter"), "in_flight"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("state-filter").dispatchEvent(new Event("change"))`))
	e.waitJS("message 1 in flight", `document.querySelector('#messages-table tr[data-msg-id="1"]') !== null`)
	e.do("open message 1", chromedp.Click(chromedp.CSS(`#messages-table tr[data-msg-id="1"] button`)))
	e.waitJS("message 1's body", `document.getElementById("message-json").textContent.includes('"n": 1')`)
	after := e.count(`SELECT sum(read_ct) * 1000000 + sum(extract(epoch FROM vt))::bigint FROM pgmq.q_depth_a`)
	if before != after {
		t.Fatalf("browsing changed read counts or visibility times: %d -> %d", before, after)
	}
}

// A message sent from the page is there over SQL.
func TestSendFromPage(t *testing.T) {
	e := newEnv(t)
	e.freshQueues("send_page")
	e.sql(`SELECT pgmq.create('send_page')`)
	e.open(e.token, "#/queue/send_page", "queue")
	e.do("send a message",
		chromedp.SetValue(chromedp.CSS("#send-message"), `{"from": "the page", "n": 7}`),
		chromedp.SetValue(chromedp.CSS("#send-headers"), `{"trace": "abc"}`),
		chromedp.Click(chromedp.CSS("#send-submit")))
	e.waitJS("the send's answer", `document.getElementById("send-result").textContent.startsWith("Sent message 1")`)

	var msg, headers []byte
	if err := e.db.QueryRow(t.Context(), `SELECT message::text, headers::text FROM pgmq.read('send_page', 30, 1)`).Scan(&msg, &headers); err != nil {
		t.Fatalf("reading the message over SQL: %v", err)
	}
	var got struct {
		From string `json:"from"`
		N    int    `json:"n"`
	}
	if err := json.Unmarshal(msg, &got); err != nil || got.From != "the page" || got.N != 7 {
		t.Fatalf("message %s", msg)
	}
	if !strings.Contains(string(headers), `"trace": "abc"`) {
		t.Fatalf("headers %s", headers)
	}
}

// Purge asks first, naming the queue; cancel keeps the messages, confirm
// purges them.
func TestPurgeAsksForConfirmation(t *testing.T) {
	e := newEnv(t)
	e.freshQueues("purge_me")
	e.sql(`SELECT pgmq.create('purge_me')`)
	e.sql(`SELECT pgmq.send('purge_me', '{}') FROM generate_series(1, 3)`)
	e.open(e.token, "#/queue/purge_me", "queue")
	e.waitJS("three messages", `document.querySelectorAll("#messages-table tbody tr").length === 3`)

	e.do("ask to purge", chromedp.Click(chromedp.CSS("#purge-queue")))
	e.waitJS("the confirmation", `document.getElementById("confirm").open`)
	if text := e.text(`document.getElementById("confirm-text").textContent`); !strings.Contains(text, "purge_me") {
		t.Fatalf("the confirmation does not name the queue: %q", text)
	}
	e.do("cancel", chromedp.Click(chromedp.CSS("#confirm-cancel")))
	e.waitJS("the dialog closed", `!document.getElementById("confirm").open`)
	if n := e.count(`SELECT count(*) FROM pgmq.q_purge_me`); n != 3 {
		t.Fatalf("cancel purged: %d messages left", n)
	}

	e.do("purge", chromedp.Click(chromedp.CSS("#purge-queue")))
	e.waitJS("the confirmation", `document.getElementById("confirm").open`)
	e.do("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	e.waitJS("the purge's answer", `document.getElementById("send-result").textContent.startsWith("Purged 3")`)
	if n := e.count(`SELECT count(*) FROM pgmq.q_purge_me`); n != 0 {
		t.Fatalf("after purge %d messages", n)
	}
}

// A token limited to some queues lists only those, says what it cannot
// do, and gets a clear message when it tries.
func TestLimitedToken(t *testing.T) {
	e := newEnv(t)
	e.freshQueues("team_a", "other_b")
	e.sql(`SELECT pgmq.create('team_a')`)
	e.sql(`SELECT pgmq.create('other_b')`)
	limited := testenv.Token(t, testSecret, auth.MintOptions{Subject: "reader", Grants: []auth.GrantEntry{
		{Queues: []string{"team_*"}, Ops: []string{"list", "read"}}}})
	e.open(limited, "", "queues")
	e.waitJS("team_a listed", cell("team_a", "visible")+` === "0"`)
	if n := e.text(`String(document.querySelectorAll("#queues-table tbody tr").length)`); n != "1" {
		t.Fatalf("the limited token lists %s queues", n)
	}
	e.waitJS("the grants note", `document.getElementById("grants-note").textContent.includes("limited by queue grants")`)
	if hidden := e.text(`String(document.getElementById("nav-service").hidden)`); hidden != "true" {
		t.Fatal("the service page is offered to a limited token")
	}

	e.settled("queues")
	e.do("open team_a", chromedp.Click(chromedp.CSS(`#queues-table a[href="#/queue/team_a"]`)))
	e.settled("queue")
	e.waitJS("what the token cannot do", `document.getElementById("queue-abilities").textContent.includes("do not allow it to send")`)
	e.do("try to send", chromedp.Click(chromedp.CSS("#send-submit")))
	e.waitJS("the refusal", `!document.getElementById("alert").hidden &&
		document.getElementById("alert-text").textContent.includes("Not allowed: permission denied by queue grants")`)
	if n := e.count(`SELECT count(*) FROM pgmq.q_team_a`); n != 0 {
		t.Fatalf("a refused send landed: %d messages", n)
	}

	// Another queue by its address: the grants refuse it with words too.
	e.do("open other_b", chromedp.Evaluate[chromedp.Void](`location.hash = "#/queue/other_b"`))
	e.waitJS("the refusal to browse", `document.getElementById("messages-empty").textContent.includes("needs the \"read\" grant")`)
}

// The queues page follows sends made elsewhere without a reload.
func TestPageUpdatesWithoutReload(t *testing.T) {
	e := newEnv(t)
	e.freshQueues("live_q")
	e.sql(`SELECT pgmq.create('live_q')`)
	e.open(e.token, "", "queues")
	e.waitJS("live_q empty", cell("live_q", "visible")+` === "0"`)
	e.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	e.sql(`SELECT pgmq.send('live_q', '{}') FROM generate_series(1, 5)`)
	e.waitJS("live_q shows the sends", cell("live_q", "visible")+` === "5"`)
	// The rate comes from the process's counters: send through REST.
	for i := 0; i < 3; i++ {
		restSend(t, e, "live_q")
	}
	e.waitJS("a send rate", `parseFloat(`+cell("live_q", "sent")+`) > 0`)
	if e.text(`String(window.notReloaded)`) != "true" {
		t.Fatal("the page was reloaded")
	}
}

// At 390 px wide nothing overflows sideways and every control is labelled.
func TestNarrowWindowAndLabels(t *testing.T) {
	e := newEnv(t)
	e.freshQueues("narrow_q")
	e.sql(`SELECT pgmq.create('narrow_q')`)
	e.sql(`SELECT pgmq.send('narrow_q', '{"a": 1}')`)
	e.do("a phone-sized window", chromedp.EmulateViewport(390, 844))
	for _, page := range []struct{ hash, id string }{{"", "queues"}, {"#/queue/narrow_q", "queue"}, {"#/service", "service"}} {
		e.open(e.token, page.hash, page.id)
		e.waitJS("content of "+page.id, `document.querySelectorAll("#page-`+page.id+` tbody tr").length > 0`)
		if w := e.text(`String(document.documentElement.scrollWidth)`); w != "390" {
			t.Errorf("page %s is %s px wide in a 390 px window", page.id, w)
		}
		unlabelled := e.text(`Array.from(document.querySelectorAll("input, select, textarea")).filter(c =>
			!(c.labels && c.labels.length) && !c.getAttribute("aria-label")).map(c => c.id).join(",")`)
		if unlabelled != "" {
			t.Errorf("controls without a label: %s", unlabelled)
		}
	}
}

// restSend sends one message through REST, so the process counts it.
func restSend(t *testing.T, e *env, queue string) {
	t.Helper()
	restCall(t, e, "send", `{"queue_name": "`+queue+`", "msg": {"via": "rest"}}`)
}

// restCall calls a pgmq function through REST with the unlimited token.
func restCall(t *testing.T, e *env, fn, args string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+e.st.RESTAddr()+"/pgmq/v1/"+fn, strings.NewReader(args))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("REST %s: %s", fn, res.Status)
	}
}

// The README's screenshot: a real stack with a few queues at 1280 px. The
// picture is taken on every run (so the path that makes it stays working);
// with CONSOLE_SCREENSHOT=<file.png> it is also written there:
//
//	CONSOLE_SCREENSHOT=$PWD/docs/console.png go test -run TestScreenshot ./tests/console
func TestScreenshot(t *testing.T) {
	e := newEnv(t)
	e.freshQueues("orders", "emails", "audit_log")
	e.sql(`SELECT pgmq.create('orders')`)
	e.sql(`SELECT pgmq.create_unlogged('emails')`)
	e.sql(`SELECT pgmq.create('audit_log')`)
	e.sql(`SELECT pgmq.create_fifo_index('orders')`)
	e.sql(`SELECT pgmq.send('orders', jsonb_build_object('order', i, 'total', i * 10)) FROM generate_series(1, 42) i`)
	e.sql(`SELECT pgmq.send('emails', '{"to": "ops@example.com"}', 120) FROM generate_series(1, 3)`)
	e.sql(`SELECT * FROM pgmq.read('orders', 300, 5)`)
	e.sql(`SELECT pgmq.archive('orders', ARRAY[6, 7]::bigint[])`)
	e.sql(`SELECT pgmq.send('audit_log', '{}') FROM generate_series(1, 7)`)
	e.open(e.token, "", "queues")
	// Some traffic over a few samples, so the charts have a shape.
	for i := 0; i < 12; i++ {
		n := e.st.History.Len()
		for j := 0; j < 1+i%3; j++ {
			restSend(t, e, "orders")
		}
		restCall(t, e, "read", `{"queue_name": "orders", "vt": 300, "qty": `+strconv.Itoa(i%2+1)+`}`)
		restSend(t, e, "audit_log")
		testenv.WaitFor(t, 10*time.Second, "the next sample", func() bool { return e.st.History.Len() > n })
	}
	e.waitJS("orders' depth", cell("orders", "visible")+` === "41"`)
	e.waitJS("the charts", `document.querySelectorAll("#queues-table .sparkbox canvas").length === 3 && parseFloat(`+cell("orders", "sent")+`) > 0`)
	out := os.Getenv("CONSOLE_SCREENSHOT")
	e.screenshot(out)
	// The queue page, for docs/console.md: out with -queue before .png.
	e.settled("queues")
	e.do("open orders", chromedp.Click(chromedp.CSS(`#queues-table a[href="#/queue/orders"]`)))
	e.settled("queue")
	e.waitJS("orders' messages and charts", `document.querySelectorAll("#messages-table tbody tr").length === 41 &&
		document.querySelectorAll("#page-queue .chart canvas").length === 2`)
	e.do("open a message", chromedp.Click(chromedp.CSS(`#messages-table tr[data-msg-id="26"] button`)))
	e.waitJS("message 26", `document.getElementById("message-json").textContent.includes('"order": 26')`)
	e.do("back to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	e.screenshot(suffixed(out, "-queue"))
	// And the queues page in a phone-sized window.
	e.do("a phone-sized window", chromedp.EmulateViewport(390, 844),
		chromedp.Evaluate[chromedp.Void](`location.hash = "#/queues"`))
	e.waitJS("the queues as cards", `document.querySelectorAll("#queues-table tbody tr").length === 3 &&
		document.documentElement.scrollWidth === 390`)
	e.screenshot(suffixed(out, "-narrow"))
}

// suffixed puts suffix before the .png of name ("" stays "").
func suffixed(name, suffix string) string {
	if name == "" {
		return ""
	}
	return strings.TrimSuffix(name, ".png") + suffix + ".png"
}

// screenshot takes a picture of the page (checking it is a PNG) and writes
// it to out unless out is "".
func (e *env) screenshot(out string) {
	e.t.Helper()
	png, err := chromedp.Run(e.ctx, chromedp.CaptureScreenshot())
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		e.t.Fatalf("screenshot: %v", err)
	}
	if out == "" {
		return
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("wrote %s", out)
}
