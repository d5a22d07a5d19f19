package rest

import (
	"encoding/json"
	"testing"

	"mqstack/router"
)

// Request bodies are untrusted: whatever they hold, building the call must
// not panic, and a call that builds is one statement the router vouches for
// as a call of the function (or of its single read, for a long poll).
func FuzzBuildCall(f *testing.F) {
	f.Add(uint8(0), `{"queue_name":"q","msg":{"a":1},"delay":"2030-01-01T00:00:00Z"}`)
	f.Add(uint8(1), `{"queue_name":"q","msgs":["x",null,{"\"":"\\"}],"headers":[1],"delay":5}`)
	f.Add(uint8(2), `{"queue_name":"q); DROP TABLE x; --","msg_ids":["1","2}"]}`)
	f.Fuzz(func(t *testing.T, idx uint8, body string) {
		fn := functionList[int(idx)%len(functionList)]
		var args map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &args) != nil {
			return
		}
		c, err := buildCall(fn, args)
		if err != nil {
			return
		}
		st := router.Classify(c.sql)
		want := fn.name
		if fn.poll != "" {
			want = fn.poll
		}
		if calls := st.Calls(); st.Uncertain() != "" || len(calls) != 1 || calls[0].Function != want {
			t.Fatalf("%s: router sees %+v (uncertain %q)", c.sql, calls, st.Uncertain())
		}
		if len(c.args) > len(fn.sigs[0].params)+4 {
			t.Fatalf("more parameters than arguments: %d", len(c.args))
		}
	})
}
