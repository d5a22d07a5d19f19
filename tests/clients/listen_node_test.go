package clients

import (
	"fmt"
	"strings"
	"testing"
)

// node-postgres listeners through the proxy, eight of them on a pool of two
// backends: each hears both sends on a mixed-case queue's insert channel
// (the one that LISTENed inside a committed transaction too), the one whose
// LISTEN was rolled back hears only the barrier after them, and
// pg_listening_channels() answers each client's own channels.
func TestNodePostgresListen(t *testing.T) {
	out := runNode(t, "listen_pg.js", "QUEUE=NodeMixed")
	if !strings.Contains(out, "OK listen-pg") {
		t.Fatalf("listen_pg.js output:\n%s", out)
	}
	for i := range 7 {
		if got := strings.Count(out, fmt.Sprintf("GOT %d pgmq.q_NodeMixed.INSERT\n", i)); got != 2 {
			t.Errorf("listener %d printed %d notifications, want 2", i, got)
		}
	}
	if t.Failed() {
		t.Fatalf("listen_pg.js output:\n%s", out)
	}
}

// A pgmq-js consumer that reads only when pgmq's insert notification wakes
// it gets the three messages sent with pgmq-js, one notification each.
func TestPgmqJSListen(t *testing.T) {
	out := runNode(t, "listen_pgmq.js", "QUEUE=JsMixed")
	if !strings.Contains(out, `OK listen-pgmq {"read":3}`) || strings.Count(out, "NOTIFIED pgmq.q_JsMixed.INSERT\n") != 3 {
		t.Fatalf("listen_pgmq.js output:\n%s", out)
	}
}
