package auth

import "strings"

// glob is a compiled pattern in which '*' matches any run of characters
// (including none) and every other byte matches itself. Matching is linear
// in the length of the name: the literal pieces between stars are found
// leftmost-first, which is exact for star-only globs, so no input can make it
// backtrack.
type glob struct {
	pat   string   // the pattern as matched (lower-cased for queue names)
	parts []string // literal pieces around the stars; nil when there is no star
}

func compileGlob(pat string) glob {
	if !strings.Contains(pat, "*") {
		return glob{pat: pat}
	}
	return glob{pat: pat, parts: strings.Split(pat, "*")}
}

// everything reports whether the pattern is exactly "*".
func (g *glob) everything() bool { return g.pat == "*" }

func (g *glob) match(s string) bool {
	if g.parts == nil {
		return s == g.pat
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, mid := range g.parts[1 : len(g.parts)-1] {
		if mid == "" {
			continue
		}
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return true
}
