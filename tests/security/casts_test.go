package security

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Casts on the queue argument: the router compares the queue name it reads
// with the grants, but Postgres compares what the cast makes of it (bpchar
// drops trailing spaces, varchar(n) and char(n) truncate, name truncates at
// 63 bytes, functions and operators compute anything). A limited token's
// queue argument must be a plain literal or a text parameter, optionally
// cast to text or unconstrained varchar; anything else is refused (42501)
// and no message is returned.

// castFixture is the queues and tokens of the cast tests.
type castFixture struct {
	v       victims
	ordersA string // orders_a: granted to the read token, holds messages
	// deny holds every op on every queue but payments; read holds read on
	// orders_* (so not on orders itself).
	deny, read string
}

func newCastFixture(t *testing.T) castFixture {
	v := newVictims(t)
	f := castFixture{v: v, ordersA: v.orders + "_a"}
	createQueue(t, f.ordersA, victimMessages)
	f.deny = mint(t, "deny-payments", []string{"*:*"}, []string{"*:" + v.payments})
	f.read = mint(t, "read-orders", []string{"read:" + v.orders + "_*"}, nil)
	return f
}

type castCase struct {
	name   string
	tok    string // the token
	sql    string
	victim string // the queue the cast reaches
}

func (f castFixture) literalCases() []castCase {
	p, o := f.v.payments, f.v.orders
	n, m := len(p), len(o)
	half := n / 2
	up := strings.ToUpper(p)
	read := func(arg string) string { return fmt.Sprintf("SELECT * FROM pgmq.read(%s, 0, 1)", arg) }
	return []castCase{
		{"char(n)", f.deny, read(fmt.Sprintf("'%s  '::char(%d)", p, n+2)), p},
		{"bpchar", f.deny, read(fmt.Sprintf("'%s  '::bpchar", p)), p},
		{"character(n)", f.deny, read(fmt.Sprintf("'%s  '::character(%d)", p, n+2)), p},
		{"CAST_AS_char(n)", f.deny, read(fmt.Sprintf("CAST('%s  ' AS char(%d))", p, n+2)), p},
		{"text_then_char(n)", f.deny, read(fmt.Sprintf("'%s'::text::char(%d)", p, n)), p},
		{"char(n)_then_text", f.deny, read(fmt.Sprintf("('%s  '::char(%d))::text", p, n+2)), p},
		{"name", f.deny, read(fmt.Sprintf("'%s'::name", p)), p},
		{"lower()", f.deny, read(fmt.Sprintf("lower('%s')", up)), p},
		{"rtrim()", f.deny, read(fmt.Sprintf("rtrim('%s  ')", p)), p},
		{"format()", f.deny, read(fmt.Sprintf("format('%%s', '%s')", p)), p},
		{"concat_operator", f.deny, read(fmt.Sprintf("'%s' || '%s'", p[:half], p[half:])), p},
		{"upper_case_name", f.deny, read(fmt.Sprintf("'%s'", up)), p},
		{"select_list_char(n)", f.deny, fmt.Sprintf("SELECT pgmq.read('%s  '::char(%d), 0, 1)", p, n+2), p},
		{"named_argument_char(n)", f.deny, fmt.Sprintf("SELECT * FROM pgmq.read(queue_name => '%s  '::char(%d), vt => 0, qty => 1)", p, n+2), p},
		{"pop_bpchar", f.deny, fmt.Sprintf("SELECT * FROM pgmq.pop('%s  '::bpchar)", p), p},
		{"purge_char(n)", f.deny, fmt.Sprintf("SELECT pgmq.purge_queue('%s '::char(%d))", p, n+1), p},
		{"varchar(n)_truncates", f.read, read(fmt.Sprintf("'%s_x'::varchar(%d)", o, m)), o},
		{"character_varying(n)", f.read, read(fmt.Sprintf("'%s_x'::character varying(%d)", o, m)), o},
		{"CAST_AS_varchar(n)", f.read, read(fmt.Sprintf("CAST('%s_x' AS varchar(%d))", o, m)), o},
		{"varchar(n)_then_text", f.read, read(fmt.Sprintf("('%s_x'::varchar(%d))::text", o, m)), o},
		{"varchar(n)_then_varchar", f.read, read(fmt.Sprintf("'%s_x'::varchar(%d)::varchar", o, m)), o},
		{"char(n)_truncates", f.read, read(fmt.Sprintf("'%s_x'::char(%d)", o, m)), o},
		{"name_of_a_granted_queue", f.read, read(fmt.Sprintf("'%s_x'::name", o)), o},
		{"substr()", f.read, read(fmt.Sprintf("substr('%s_x', 1, %d)", o, m)), o},
		{"rtrim_chars()", f.read, read(fmt.Sprintf("rtrim('%s_x', '_x')", o)), o},
	}
}

// granted is the call each token may make.
func (f castFixture) granted(tok string) string {
	if tok == f.read {
		return fmt.Sprintf("SELECT * FROM pgmq.read('%s', 0, 1)", f.ordersA)
	}
	return fmt.Sprintf("SELECT * FROM pgmq.read('%s', 0, 1)", f.v.orders)
}

func TestQueueNameCastsLiteral(t *testing.T) {
	f := newCastFixture(t)
	e := newEnv(t, nil)
	by := e.newBystander(t, f.v.orders)
	for _, c := range f.literalCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("%s", c.sql)
			for _, mode := range execModes {
				t.Run(modeName(mode), func(t *testing.T) {
					refill(t, c.victim)
					before := stateOf(t, c.victim)
					conn := e.mustConnect(t, c.tok, mode)
					rows, err := run(conn, mode, c.sql)
					wantError(t, c.name, err, "ERROR", "42501")
					if rows > 0 {
						t.Errorf("%d rows of %s returned", rows, c.victim)
					}
					untouched(t, c.victim, before)
					e.serves(t, conn, c.tok, f.granted(c.tok), by)
				})
			}
		})
	}
}

// The queue as a parameter of a type that is not text: bpchar (OID 1042)
// drops trailing spaces, name (OID 19) truncates; and a cast written on
// the parameter.
func TestQueueNameCastsParameter(t *testing.T) {
	f := newCastFixture(t)
	e := newEnv(t, nil)
	by := e.newBystander(t, f.v.orders)
	p, o := f.v.payments, f.v.orders
	cases := []struct {
		name   string
		tok    string
		sql    string
		oid    uint32
		value  string
		victim string
	}{
		{"oid_bpchar", f.deny, "SELECT * FROM pgmq.read($1, 0, 1)", 1042, p + "  ", p},
		{"oid_bpchar_granted_value", f.read, "SELECT * FROM pgmq.read($1, 0, 1)", 1042, o + "_x", o},
		{"oid_name", f.read, "SELECT * FROM pgmq.read($1, 0, 1)", 19, o + "_x", o},
		{"oid_name_denied_value", f.deny, "SELECT * FROM pgmq.read($1, 0, 1)", 19, p, p},
		{"cast_char(n)_on_text_param", f.deny, fmt.Sprintf("SELECT * FROM pgmq.read($1::char(%d), 0, 1)", len(p)+2), 25, p + "  ", p},
		{"cast_varchar(n)_on_param", f.read, fmt.Sprintf("SELECT * FROM pgmq.read($1::varchar(%d), 0, 1)", len(o)), 0, o + "_x", o},
		{"cast_bpchar_on_param", f.deny, "SELECT * FROM pgmq.read($1::bpchar, 0, 1)", 0, p + "  ", p},
		{"cast_name_on_param", f.read, "SELECT * FROM pgmq.read($1::name, 0, 1)", 0, o + "_x", o},
	}
	for _, c := range cases {
		t.Run(c.name+"/raw", func(t *testing.T) {
			refill(t, c.victim)
			before := stateOf(t, c.victim)
			r := e.mustRaw(t, c.tok, nil)
			var oids []uint32
			if c.oid != 0 {
				oids = []uint32{c.oid}
			}
			res, err := r.extended("", c.sql, oids, c.value)
			wantError(t, c.name, err, "ERROR", "42501")
			if res.Rows > 0 {
				t.Errorf("%d rows of %s returned", res.Rows, c.victim)
			}
			untouched(t, c.victim, before)
			if _, err := r.query(f.granted(c.tok)); err != nil {
				t.Errorf("granted call on the same connection: %v", err)
			}
			e.serves(t, nil, c.tok, f.granted(c.tok), by)
		})
		t.Run(c.name+"/pgconn", func(t *testing.T) {
			refill(t, c.victim)
			before := stateOf(t, c.victim)
			conn := e.mustConnect(t, c.tok, pgx.QueryExecModeCacheStatement)
			ctx := ctxFor(t, 15*time.Second)
			var oids []uint32
			if c.oid != 0 {
				oids = []uint32{c.oid}
			}
			rows := 0
			_, err := conn.PgConn().Prepare(ctx, "attack", c.sql, oids)
			if err == nil {
				rr := conn.PgConn().ExecPrepared(ctx, "attack", [][]byte{[]byte(c.value)}, nil, nil)
				for rr.NextRow() {
					rows++
				}
				_, err = rr.Close()
			}
			wantError(t, c.name, err, "ERROR", "42501")
			if rows > 0 {
				t.Errorf("%d rows of %s returned", rows, c.victim)
			}
			untouched(t, c.victim, before)
			e.serves(t, conn, c.tok, f.granted(c.tok), by)
		})
	}
}

// What the contract still allows: a literal or a text parameter, cast to
// text or unconstrained varchar at most.
func TestQueueNameCastsAllowed(t *testing.T) {
	f := newCastFixture(t)
	e := newEnv(t, nil)
	a, o := f.ordersA, f.v.orders
	cases := []struct {
		name string
		tok  string
		sql  string
		args []any
	}{
		{"literal", f.read, fmt.Sprintf("SELECT * FROM pgmq.read('%s', 0, 1)", a), nil},
		{"text", f.read, fmt.Sprintf("SELECT * FROM pgmq.read('%s'::text, 0, 1)", a), nil},
		{"varchar", f.read, fmt.Sprintf("SELECT * FROM pgmq.read('%s'::varchar, 0, 1)", a), nil},
		{"CAST_AS_text", f.read, fmt.Sprintf("SELECT * FROM pgmq.read(CAST('%s' AS text), 0, 1)", a), nil},
		{"param", f.read, "SELECT * FROM pgmq.read($1, 0, 1)", []any{a}},
		{"param_text", f.read, "SELECT * FROM pgmq.read($1::text, 0, 1)", []any{a}},
		{"param_varchar", f.read, "SELECT * FROM pgmq.read($1::varchar, 0, 1)", []any{a}},
		{"deny_token_other_queue", f.deny, fmt.Sprintf("SELECT * FROM pgmq.read('%s'::text, 0, 1)", o), nil},
	}
	for _, c := range cases {
		for _, mode := range execModes {
			t.Run(c.name+"/"+modeName(mode), func(t *testing.T) {
				conn := e.mustConnect(t, c.tok, mode)
				rows, err := run(conn, mode, c.sql, c.args...)
				if err != nil {
					t.Fatalf("%s refused: %v", c.sql, err)
				}
				if rows != 1 {
					t.Errorf("%s: %d rows, want 1 (the queue holds visible messages)", c.sql, rows)
				}
			})
		}
	}
	t.Run("raw_param_oid_text", func(t *testing.T) {
		r := e.mustRaw(t, f.read, nil)
		res, err := r.extended("", "SELECT * FROM pgmq.read($1, 0, 1)", []uint32{25}, a)
		if err != nil || res.Rows != 1 {
			t.Errorf("text parameter: %v, %d rows", err, res.Rows)
		}
	})
}

// REST has no casts: the queue name is a JSON string, compared as Postgres
// will compare it.
func TestQueueNameCastsREST(t *testing.T) {
	f := newCastFixture(t)
	e := newEnv(t, nil)
	p, o := f.v.payments, f.v.orders
	// A name that is not the victim's may be refused (403), found invalid
	// (400) or missing (404); the victim's name in upper case is the
	// victim (pgmq folds names), so it is a 403.
	anyRefusal := []int{http.StatusForbidden, http.StatusNotFound, http.StatusBadRequest}
	refused := []struct {
		name, tok, queue, victim string
		codes                    []int
	}{
		{"trailing_spaces", f.deny, p + "  ", p, anyRefusal},
		{"upper_case", f.deny, strings.ToUpper(p), p, []int{http.StatusForbidden}},
		{"longer_name", f.read, o + "_x", o, anyRefusal},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			refill(t, c.victim)
			before := stateOf(t, c.victim)
			code, body := e.rest(t, c.tok, "read", map[string]any{"queue_name": c.queue, "vt": 0, "qty": 1})
			if !slices.Contains(c.codes, code) {
				t.Errorf("read %q: HTTP %d %s, want one of %v", c.queue, code, oneLine(string(body)), c.codes)
			}
			untouched(t, c.victim, before)
		})
	}
	t.Run("granted", func(t *testing.T) {
		code, body := e.rest(t, f.read, "read", map[string]any{"queue_name": f.ordersA, "vt": 0, "qty": 1})
		if code != http.StatusOK || !strings.Contains(string(body), "victim") {
			t.Errorf("granted read: HTTP %d %s", code, oneLine(string(body)))
		}
	})
}
