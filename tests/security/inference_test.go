package security

import (
	"fmt"
	"testing"
)

// A parameter is typed at its first use: in
// `SELECT pgmq.read($1, 0, 1) FROM (SELECT $1::char(10)) s` Postgres would
// make $1 char(10), and pgmq would get the name without its trailing
// blanks, another queue than the grant check read (found by
// tests/differential). The proxy declares such parameters text, so pgmq
// gets the name as bound: the denied queue is never reached, whatever the
// statement then answers.
func TestQueueNameCastsParameterTypedElsewhere(t *testing.T) {
	f := newCastFixture(t)
	e := newEnv(t, nil)
	by := e.newBystander(t, f.v.orders)
	p := f.v.payments
	n := len(p) + 2
	for _, sql := range []string{
		fmt.Sprintf("SELECT * FROM (SELECT $1::char(%d) AS x) s, pgmq.read($1, 0, 1)", n),
		fmt.Sprintf("SELECT pgmq.send($1, '{}') FROM (SELECT $1::char(%d)) s", n),
		"WITH x AS (SELECT $1::bpchar) SELECT * FROM pgmq.read($1, 0, 1)",
		"SELECT $1::bpchar, pgmq.pop($1)",
	} {
		t.Run(sql, func(t *testing.T) {
			refill(t, p)
			before := stateOf(t, p)
			r := e.mustRaw(t, f.deny, nil)
			res, err := r.extended("", sql, nil, p+"  ")
			t.Logf("answer: %d rows, %v", res.Rows, err)
			untouched(t, p, before)
			if _, err := r.query(f.granted(f.deny)); err != nil {
				t.Errorf("granted call on the same connection: %v", err)
			}
			e.serves(t, nil, f.deny, f.granted(f.deny), by)
		})
	}
}
