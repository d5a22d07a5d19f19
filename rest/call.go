package rest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgerrcode"
)

// call is one REST call turned into SQL.
type call struct {
	fn  *function
	sig *signature
	// sql runs the function (for a long poll: its single-read function
	// once) and returns the response JSON; args are its parameters.
	sql  string
	args []*string
	// pollSeconds and pollIntervalMS are the long-poll arguments (after
	// their defaults); only for functions with poll set.
	pollSeconds    int
	pollIntervalMS int
}

// buildCall resolves the signature for the given arguments and writes the
// statement. Arguments are bound as text with the cast of their type, in
// the signature's order, so one argument set always gives the same SQL text
// (the router's cache and the prepared-statement caches depend on it).
func buildCall(f *function, args map[string]json.RawMessage) (*call, error) {
	keys := make(map[string]bool, len(args))
	for k := range args {
		keys[k] = true
	}
	s := f.resolve(keys)
	if s == nil {
		return nil, errNoFunction(f.name, f, keys)
	}
	c := &call{fn: f, sig: s, args: make([]*string, 0, len(args))}
	base := f.name
	if f.poll != "" {
		base = f.poll
		c.pollSeconds, c.pollIntervalMS = 5, 100
	}
	var b strings.Builder
	b.Grow(128)
	b.WriteString("pgmq.")
	b.WriteString(base)
	b.WriteByte('(')
	n := 0
	for _, prm := range s.params {
		raw, ok := args[prm.name]
		if !ok {
			continue
		}
		if prm.pollOnly {
			v, err := pollInt(prm.name, raw)
			if err != nil {
				return nil, err
			}
			if prm.name == "max_poll_seconds" {
				c.pollSeconds = v
			} else {
				c.pollIntervalMS = v
			}
			continue
		}
		v, typ, err := bindArg(prm, raw)
		if err != nil {
			return nil, err
		}
		c.args = append(c.args, v)
		n++
		if n > 1 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s => $%d::%s", prm.name, n, typ.sqlName())
	}
	b.WriteByte(')')
	callSQL := b.String()
	switch s.result {
	case resultVoid:
		c.sql = "SELECT " + callSQL
	case resultScalar:
		c.sql = "SELECT to_json(" + callSQL + ")"
	case resultRow:
		c.sql = "SELECT to_json(r) FROM " + callSQL + " AS r"
	case resultScalarSet, resultRowSet:
		c.sql = "SELECT count(*), coalesce(json_agg(r), '[]') FROM " + callSQL + " AS r"
	}
	return c, nil
}

// pollInt reads max_poll_seconds or poll_interval_ms as Postgres' int4
// input would (these two never reach Postgres: the long poll is ours).
func pollInt(name string, raw json.RawMessage) (int, error) {
	v, err := textOf(raw)
	if err != nil {
		return 0, err
	}
	if v == nil {
		return 0, errBadValue(pgerrcode.NullValueNotAllowedDataException, fmt.Sprintf("%s must not be null", name))
	}
	s := strings.TrimSpace(*v)
	if !isSeconds(s) {
		return 0, errBadValue(pgerrcode.InvalidTextRepresentation, fmt.Sprintf("invalid input syntax for type integer: %q", *v))
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
	if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
		return 0, errBadValue(pgerrcode.NumericValueOutOfRange, fmt.Sprintf("value %q is out of range for type integer", *v))
	}
	return int(n), nil
}
