package rest

import (
	"strings"
	"testing"
)

// FuzzQueueTable: a browsed queue name becomes one quoted identifier of
// schema pgmq and nothing else, whatever the name holds.
func FuzzQueueTable(f *testing.F) {
	for _, s := range []string{"orders", "Orders", `a"b`, `x"; DROP TABLE t; --`, "a;b", "é", "", strings.Repeat("q", 47), "a\x00b", `""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, queue string) {
		table, err := queueTable("q", queue)
		if err != nil {
			return
		}
		inner, ok := strings.CutPrefix(table, `pgmq."q_`)
		if !ok || !strings.HasSuffix(inner, `"`) {
			t.Fatalf("%q -> %q", queue, table)
		}
		inner = strings.TrimSuffix(inner, `"`)
		if strings.Contains(strings.ReplaceAll(inner, `""`, ``), `"`) {
			t.Fatalf("%q -> %q: a quote ends the identifier early", queue, table)
		}
		if got := strings.ReplaceAll(inner, `""`, `"`); got != strings.ToLower(queue) {
			t.Fatalf("%q -> %q: names table %q", queue, table, got)
		}
	})
}
