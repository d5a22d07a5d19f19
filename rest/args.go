package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgerrcode"
)

// The arguments of a call reach Postgres as text parameters with a cast
// ($1::integer), so Postgres' own input functions judge them: "30" and 30 are
// the same integer, 1.5 is 22P02, as PostgREST (which casts JSON to the
// argument types) behaved. Go only decides what Postgres cannot: which
// overload a JSON value means, and how a JSON array becomes an array literal.

// jsonKind is the JSON type of a raw value.
func jsonKind(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	switch c := raw[0]; c {
	case '"', '{', '[', 't', 'f', 'n':
		return c
	}
	return '0' // a number
}

// textOf is the text a JSON value gives as a text parameter: a string's
// contents, a number's or boolean's literal, an object's or array's JSON; nil
// for null.
func textOf(raw json.RawMessage) (*string, error) {
	switch jsonKind(raw) {
	case 'n':
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, errBadValue(pgerrcode.CharacterNotInRepertoire, `invalid byte sequence for encoding "UTF8": 0x00`)
		}
		return &s, nil
	}
	s := string(bytes.TrimSpace(raw))
	return &s, nil
}

// isSeconds reports whether s is an integer as Postgres' int4 input reads it
// (white space, sign, digits): a delay or vt in seconds rather than a
// timestamp.
func isSeconds(s string) bool {
	s = strings.TrimSpace(s)
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// bindArg turns the JSON value of one argument into its parameter text (nil
// for NULL) and the SQL type to cast it to.
func bindArg(prm param, raw json.RawMessage) (*string, argType, error) {
	typ := prm.typ
	kind := jsonKind(raw)
	switch typ {
	case typeSecondsOrTime:
		typ = typeInteger
		if kind == '"' {
			v, err := textOf(raw)
			if err != nil {
				return nil, typ, err
			}
			if !isSeconds(*v) {
				typ = typeTimestamptz
			}
			return v, typ, nil
		}
	case typeJSONB:
		if kind == 'n' {
			return nil, typ, nil
		}
		s := string(bytes.TrimSpace(raw))
		return &s, typ, nil
	case typeJSONBArray, typeBigintArray:
		if kind == '[' {
			lit, err := arrayLiteral(raw, typ == typeJSONBArray)
			if err != nil {
				return nil, typ, err
			}
			return &lit, typ, nil
		}
	}
	v, err := textOf(raw)
	return v, typ, err
}

// arrayLiteral writes a JSON array as a Postgres array literal: jsonb
// elements as their JSON text, bigint elements as their literal (strings as
// given, so Postgres judges them), JSON null as NULL.
func arrayLiteral(raw json.RawMessage, jsonb bool) (string, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		kind := jsonKind(e)
		var text string
		switch {
		case kind == 'n':
			b.WriteString("NULL")
			continue
		case jsonb:
			text = string(bytes.TrimSpace(e))
		case kind == '"':
			v, err := textOf(e)
			if err != nil {
				return "", err
			}
			text = *v
		case kind == '[' || kind == '{':
			return "", errBadValue(pgerrcode.InvalidTextRepresentation, fmt.Sprintf("malformed array literal: element %d is not a number", i+1))
		default:
			text = string(bytes.TrimSpace(e))
		}
		if strings.IndexByte(text, 0) >= 0 {
			return "", errBadValue(pgerrcode.CharacterNotInRepertoire, `invalid byte sequence for encoding "UTF8": 0x00`)
		}
		b.WriteByte('"')
		for j := 0; j < len(text); j++ {
			if c := text[j]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(text[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}
