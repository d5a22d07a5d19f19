package rest

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Every curl example of docs/rest.md runs as written (with $MQ and $TOKEN
// set as the page says) and prints what the page shows, timestamps aside.
func TestDocsCurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed to check docs/rest.md: %v", err)
	}
	data, err := os.ReadFile("../docs/rest.md")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 2)
	sqlExec(t, e.cluster, `SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta`)
	t.Cleanup(func() { dropQueues(t, e.cluster, "my_demo") })
	ts := regexp.MustCompile(tsPattern[1 : len(tsPattern)-1])
	blocks := regexp.MustCompile("(?s)```sh\n(curl [^`]*?)\n```\n```\n(.*?)\n```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) < 10 {
		t.Fatalf("only %d curl examples found", len(blocks))
	}
	for _, b := range blocks {
		cmd := exec.Command("bash", "-c", b[1])
		cmd.Env = append(os.Environ(), "MQ="+e.ts.URL, "TOKEN="+e.token)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", b[1], err)
		}
		got := ts.ReplaceAllString(strings.TrimSpace(string(out)), "TS")
		want := ts.ReplaceAllString(strings.TrimSpace(b[2]), "TS")
		if got != want {
			t.Errorf("%s\n got %s\nwant %s", b[1], got, want)
		}
	}
}
