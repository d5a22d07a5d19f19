package proxy

import "strings"

// Pin causes: session state that cannot survive a transaction boundary, so
// the client keeps its backend connection for the rest of its session.
const (
	pinListen       = "listen"
	pinSet          = "session_set"
	pinTempTable    = "temp_table"
	pinAdvisoryLock = "advisory_lock"
	pinPrepare      = "sql_prepare"
	pinHoldCursor   = "hold_cursor"
	pinSessionMode  = "session_mode"
)

// PinCauses lists every pin cause (metric label values).
func PinCauses() []string {
	return []string{pinListen, pinSet, pinTempTable, pinAdvisoryLock, pinPrepare, pinHoldCursor}
}

type interceptKind int

const (
	interceptNone interceptKind = iota
	interceptDeallocate
	interceptDeallocateAll
	interceptDiscardAll
)

// scanResult is what a cheap lexical look at SQL text found.
type scanResult struct {
	pin       string // first pin cause, "" if none
	intercept interceptKind
	name      string // DEALLOCATE's statement name
}

// token is a lexical token: a lower-cased word (keyword or identifier), a
// quoted identifier (kept as written, quoted=true) or one punctuation byte.
type token struct {
	text   string
	quoted bool
}

// lex splits SQL into statements of tokens, skipping comments, string
// literals and dollar-quoted bodies. It never fails: unterminated input just
// ends. It is a scan for pooling decisions, not a parser; when it cannot
// tell, callers pin.
func lex(sql string) [][]token {
	var stmts [][]token
	var cur []token
	i, n := 0, len(sql)
	for i < n {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			depth := 0
			for i < n {
				if sql[i] == '/' && i+1 < n && sql[i+1] == '*' {
					depth++
					i += 2
				} else if sql[i] == '*' && i+1 < n && sql[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case c == '\'':
			i = skipString(sql, i+1, false)
			cur = append(cur, token{text: "'"})
		case (c == 'e' || c == 'E') && i+1 < n && sql[i+1] == '\'':
			i = skipString(sql, i+2, true)
			cur = append(cur, token{text: "'"})
		case c == '"':
			j := i + 1
			var b strings.Builder
			for j < n {
				if sql[j] == '"' {
					if j+1 < n && sql[j+1] == '"' {
						b.WriteByte('"')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(sql[j])
				j++
			}
			cur = append(cur, token{text: b.String(), quoted: true})
			i = j + 1
		case c == '$' && i+1 < n && (sql[i+1] == '$' || isIdentStart(sql[i+1])):
			j := i + 1
			for j < n && sql[j] != '$' && isIdentChar(sql[j]) {
				j++
			}
			if j < n && sql[j] == '$' {
				tag := sql[i : j+1]
				end := strings.Index(sql[j+1:], tag)
				if end < 0 {
					i = n
				} else {
					i = j + 1 + end + len(tag)
				}
				cur = append(cur, token{text: "'"})
			} else {
				cur = append(cur, token{text: "$"})
				i++
			}
		case isIdentStart(c):
			j := i
			for j < n && (isIdentChar(sql[j]) || sql[j] == '$') {
				j++
			}
			cur = append(cur, token{text: strings.ToLower(sql[i:j])})
			i = j
		case c == ';':
			if len(cur) > 0 {
				stmts = append(stmts, cur)
				cur = nil
			}
			i++
		default:
			cur = append(cur, token{text: sql[i : i+1]})
			i++
		}
	}
	if len(cur) > 0 {
		stmts = append(stmts, cur)
	}
	return stmts
}

func skipString(sql string, i int, backslash bool) int {
	for i < len(sql) {
		switch sql[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case '\'':
			if i+1 < len(sql) && sql[i+1] == '\'' {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return i
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// scanSQL looks at SQL a client sends (simple Query or Parse) for session
// state that must pin the client, and for the statements the proxy answers
// itself (DEALLOCATE, DISCARD ALL).
func scanSQL(sql string) scanResult {
	stmts := lex(sql)
	var r scanResult
	if len(stmts) == 1 {
		r.intercept, r.name = intercepted(stmts[0])
	}
	for _, st := range stmts {
		if cause := pinCause(st); cause != "" {
			r.pin = cause
			return r
		}
	}
	return r
}

func word(ts []token, i int) string {
	if i < len(ts) && !ts[i].quoted {
		return ts[i].text
	}
	return ""
}

func intercepted(st []token) (interceptKind, string) {
	switch word(st, 0) {
	case "discard":
		if len(st) == 2 && word(st, 1) == "all" {
			return interceptDiscardAll, ""
		}
	case "deallocate":
		i := 1
		if word(st, 1) == "prepare" {
			i = 2
		}
		if len(st) != i+1 {
			return interceptNone, ""
		}
		if word(st, i) == "all" {
			return interceptDeallocateAll, ""
		}
		if st[i].text == "'" || len(st[i].text) == 1 && !isIdentStart(st[i].text[0]) {
			return interceptNone, ""
		}
		return interceptDeallocate, st[i].text
	}
	return interceptNone, ""
}

var advisoryLockFuncs = map[string]bool{
	"pg_advisory_lock": true, "pg_advisory_lock_shared": true,
	"pg_try_advisory_lock": true, "pg_try_advisory_lock_shared": true,
}

func pinCause(st []token) string {
	switch word(st, 0) {
	case "listen":
		return pinListen
	case "prepare":
		return pinPrepare
	case "set":
		if setIsTracked(st[1:]) {
			break
		}
		return pinSet
	case "reset":
		if len(st) >= 2 && word(st, 1) != "all" && isTrackedName(st[1:]) {
			break
		}
		return pinSet
	case "declare":
		for i := 1; i+1 < len(st); i++ {
			if word(st, i) == "with" && word(st, i+1) == "hold" {
				return pinHoldCursor
			}
		}
	case "create":
		if createsTemp(st) {
			return pinTempTable
		}
	case "load":
		return pinSet
	}
	for i := 0; i < len(st); i++ {
		w := word(st, i)
		switch {
		case advisoryLockFuncs[w] && word(st, i+1) == "(":
			return pinAdvisoryLock
		case w == "set_config" && word(st, i+1) == "(":
			if !setConfigIsLocal(st[i+1:]) {
				return pinSet
			}
		case w == "into" && (word(st, i+1) == "temp" || word(st, i+1) == "temporary") && word(st, 0) == "select":
			return pinTempTable
		}
	}
	return ""
}

// setIsTracked reports whether SET (after the keyword) only changes state the
// proxy tracks or that ends with the transaction.
func setIsTracked(rest []token) bool {
	switch word(rest, 0) {
	case "local", "transaction", "constraints":
		return true
	case "session":
		if word(rest, 1) == "characteristics" || word(rest, 1) == "authorization" {
			return false
		}
		rest = rest[1:]
	}
	if word(rest, 0) == "time" && word(rest, 1) == "zone" {
		return true
	}
	if word(rest, 0) == "names" {
		return true // client_encoding
	}
	return isTrackedName(rest)
}

// isTrackedName reports whether the setting named at the start of ts (a
// name, possibly dotted, not followed by another dot) is replayed by the
// proxy.
func isTrackedName(ts []token) bool {
	if len(ts) == 0 {
		return false
	}
	if len(ts) > 1 && ts[1].text == "." {
		return false
	}
	name := canonicalSetting(ts[0].text)
	for _, r := range replayedReported {
		if r == name {
			return true
		}
	}
	return false
}

func createsTemp(st []token) bool {
	temp := false
	for i := 1; i < len(st) && i < 5; i++ {
		switch word(st, i) {
		case "temp", "temporary":
			temp = true
		}
	}
	if !temp {
		return false
	}
	// ON COMMIT DROP tables end with their transaction.
	for i := 0; i+2 < len(st); i++ {
		if word(st, i) == "on" && word(st, i+1) == "commit" && word(st, i+2) == "drop" {
			return false
		}
	}
	return true
}

// setConfigIsLocal reports whether a set_config( call's third argument is
// the literal true (ts starts at the open parenthesis).
func setConfigIsLocal(ts []token) bool {
	depth := 0
	for i, t := range ts {
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return i > 0 && word(ts, i-1) == "true"
			}
		}
	}
	return false
}
