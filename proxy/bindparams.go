package proxy

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/router"
)

// Bind decoding: the queue names a Bind's parameters carry, read as
// Postgres will read them, or not at all.

// OIDs of the types whose binary form is the text itself.
const (
	oidText    = 25
	oidVarchar = 1043
)

// bindValues is the Bind being read; bindParam reads it for router.Params
// (through denials.param, a method value made once per session, so no
// allocation per Bind).
type bindValues struct {
	m    *pgproto3.Bind
	oids []uint32
}

func formatOf(codes []int16, i int) int16 {
	switch len(codes) {
	case 0:
		return 0
	case 1:
		return codes[0]
	}
	if i < len(codes) {
		return codes[i]
	}
	return 0
}

// textOID reports whether parameter i is declared text or varchar: types
// whose value is the name as sent. (name truncates to 63 bytes, bpchar
// drops trailing blanks: Postgres would see another name than the check.)
func textOID(oids []uint32, i int) bool {
	if i >= len(oids) {
		return false
	}
	switch oids[i] {
	case oidText, oidVarchar:
		return true
	}
	return false
}

// keepsName reports whether a parameter in text format reaches a text
// argument unchanged: declared text or varchar, or left for the server to
// infer (0), which makes it the argument's type, text.
func keepsName(oids []uint32, i int) bool {
	return i >= len(oids) || oids[i] == 0 || textOID(oids, i)
}

// bindParam resolves $n from the Bind being checked: text format as sent,
// binary format only for text-like declared types; a parameter declared
// of a type that changes the name fails closed.
func (s *session) bindParam(n int) (string, bool) {
	b := &s.deny.bind
	i := n - 1
	if b.m == nil || i < 0 || i >= len(b.m.Parameters) || b.m.Parameters[i] == nil {
		return "", false
	}
	if formatOf(b.m.ParameterFormatCodes, i) != 0 && !textOID(b.oids, i) || !keepsName(b.oids, i) {
		return "", false
	}
	return string(b.m.Parameters[i]), true
}

func noParams(int) (string, bool) { return "", false }

// resolveQueues reads the bound queue names of st's calls from the Bind
// being handled, s.deny.bind (nil when every queue is a literal).
func (s *session) resolveQueues(st *router.Statement) []string {
	if !st.Bound() {
		return nil
	}
	var out []string
	for i := range st.Parts {
		for _, c := range st.Parts[i].Calls {
			q := ""
			if c.Target.Param > 0 {
				q, _ = s.bindParam(c.Target.Param)
			}
			out = append(out, q)
		}
	}
	return out
}

// pinNameParams declares text every parameter that names a queue, routing
// key or pattern and that the client left to the server (OID 0). Postgres
// types a parameter at its first use: in
// `SELECT pgmq.read($1, 0, 1) FROM (SELECT $1::char(10)) s` the name would
// become char(10) and lose its trailing blanks before pgmq saw it, another
// name than the grant check read. Declared text, it reaches pgmq as bound.
func pinNameParams(cls *router.Statement, oids []uint32) []uint32 {
	for _, n := range cls.NameParams {
		if n > maxPinnedParam {
			break
		}
		for len(oids) < n {
			oids = append(oids, 0)
		}
		if oids[n-1] == 0 {
			oids[n-1] = oidText
		}
	}
	return oids
}

// maxPinnedParam bounds the parameter numbers pinNameParams pads up to
// (Postgres allows 65535 parameters).
const maxPinnedParam = 65535
