package router

import "strings"

// shapeKey is the cache key of a statement whose numeric literals cannot
// change its classification: the text with each numeric literal replaced by
// 0, so `SELECT ... WHERE id = 41` and `... = 42` (simple-protocol clients
// that inline values, pgbench -S) share one parse. ok is false, and the exact
// text must be the key, when the text has no numeric literal or when the
// scan is not certain that numbers are irrelevant:
//
//   - any identifier that is "pgmq" or the name of a pgmq function (queue
//     arguments are literals, and a number could be one);
//   - anything this small scanner does not follow exactly: dollar quotes,
//     block comments, backslashes in strings, a number run into a letter,
//     underscore or dot (PostgreSQL 16 accepts 1_000 and 0x1F; 1abc is an
//     error).
//
// Strings, quoted identifiers and parameters ($1) are kept as they are.
func shapeKey(sql string) (key string, ok bool) {
	var b strings.Builder
	replaced := false
	last := 0 // sql[last:i] is still to be copied into b
	for i := 0; i < len(sql); {
		c := sql[i]
		var next int
		switch {
		case c == '\'':
			next = skipQuoted(sql, i, '\'')
		case c == '"':
			next = skipQuoted(sql, i, '"')
			if next > 0 && pgmqName(sql[i+1:next-1]) {
				next = -1
			}
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			next = i
			for next < len(sql) && sql[next] != '\n' {
				next++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			next = -1
		case c == '$':
			next = i + 1
			for next < len(sql) && isDigit(sql[next]) {
				next++
			}
			if next == i+1 {
				next = -1 // a dollar quote
			}
		case isIdentStart(c):
			next = i + 1
			for next < len(sql) && isIdentChar(sql[next]) {
				next++
			}
			if pgmqIdent(sql[i:next]) {
				next = -1
			}
		case isDigit(c) || c == '.' && i+1 < len(sql) && isDigit(sql[i+1]):
			if next = numberEnd(sql, i); next < 0 {
				break
			}
			if b.Len() == 0 {
				b.Grow(len(sql))
			}
			b.WriteString(sql[last:i])
			b.WriteByte('0')
			last, replaced = next, true
		default:
			next = i + 1
		}
		if next < 0 {
			return "", false
		}
		i = next
	}
	if !replaced {
		return "", false
	}
	b.WriteString(sql[last:])
	return b.String(), true
}

// skipQuoted returns the index after the string or quoted identifier that
// starts at sql[i] (quote doubled inside), or -1 when it is not closed or,
// for strings, holds a backslash (the scan does not follow escapes).
func skipQuoted(sql string, i int, quote byte) int {
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			if quote == '\'' {
				return -1
			}
		case quote:
			if j+1 < len(sql) && sql[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return -1
}

// numberEnd returns the index after the numeric literal at sql[i], or -1
// when the number runs into a letter, underscore or dot (1_000, 0x1F, 1abc:
// forms the scan does not follow).
func numberEnd(sql string, i int) int {
	j := i
	for j < len(sql) && isDigit(sql[j]) {
		j++
	}
	if j < len(sql) && sql[j] == '.' {
		j++
		for j < len(sql) && isDigit(sql[j]) {
			j++
		}
	}
	if j < len(sql) && (sql[j] == 'e' || sql[j] == 'E') {
		k := j + 1
		if k < len(sql) && (sql[k] == '+' || sql[k] == '-') {
			k++
		}
		if k < len(sql) && isDigit(sql[k]) {
			for k < len(sql) && isDigit(sql[k]) {
				k++
			}
			j = k
		}
	}
	if j < len(sql) && (isIdentChar(sql[j]) || sql[j] == '.') {
		return -1
	}
	return j
}

func pgmqName(name string) bool {
	if name == "pgmq" {
		return true
	}
	_, ok := pgmqFunctions[name]
	return ok
}

// pgmqIdent is pgmqName of an unquoted identifier, folded to lower case
// without allocating (it runs for every keyword of a statement).
func pgmqIdent(id string) bool {
	var buf [64]byte
	if len(id) > len(buf) {
		return pgmqName(strings.ToLower(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	if string(buf[:len(id)]) == "pgmq" {
		return true
	}
	_, ok := pgmqFunctions[string(buf[:len(id)])]
	return ok
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }
