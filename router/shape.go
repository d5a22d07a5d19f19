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
		switch {
		case c == '\'':
			j := i + 1
			for ; j < len(sql); j++ {
				if sql[j] == '\\' {
					return "", false
				}
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(sql) {
				return "", false
			}
			i = j + 1
		case c == '"':
			j := i + 1
			for ; j < len(sql); j++ {
				if sql[j] == '"' {
					if j+1 < len(sql) && sql[j+1] == '"' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(sql) || pgmqName(sql[i+1:j]) {
				return "", false
			}
			i = j + 1
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			return "", false
		case c == '$':
			j := i + 1
			for j < len(sql) && isDigit(sql[j]) {
				j++
			}
			if j == i+1 {
				return "", false // a dollar quote
			}
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(sql) && isIdentChar(sql[j]) {
				j++
			}
			if pgmqIdent(sql[i:j]) {
				return "", false
			}
			i = j
		case isDigit(c) || c == '.' && i+1 < len(sql) && isDigit(sql[i+1]):
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
				return "", false
			}
			if b.Len() == 0 {
				b.Grow(len(sql))
			}
			b.WriteString(sql[last:i])
			b.WriteByte('0')
			last, replaced = j, true
			i = j
		default:
			i++
		}
	}
	if !replaced {
		return "", false
	}
	b.WriteString(sql[last:])
	return b.String(), true
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
