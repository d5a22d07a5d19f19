package differential

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// routerCorpusSettings: the router tests' statements and the fuzz corpus
// run under the default session and two other settings each, in turn, so
// every setting sees a share of them (all of them under every setting
// would not fit the package's time budget).
const routerCorpusSettings = settingsSome

// routerDir is the router package, relative to this package.
const routerDir = "../../router"

// routerTestFiles are the router tests whose SQL joins the corpus, with the
// least number of statements each must yield (so a refactor that hides the
// SQL from the extractor fails here instead of shrinking the corpus).
var routerTestFiles = []struct {
	name string
	min  int
}{
	{"classify_test.go", 50},
	{"authorize_test.go", 25},
	{"shape_test.go", 15},
	{"allowlist_test.go", 40},
}

// Which session settings a statement runs under (besides none).
const (
	settingsNone  = iota // only the default session
	settingsSome         // two of the other settings, in turn
	settingsParse        // the settings that change how text is read or names resolve
	settingsAll          // every setting (the inert ones in turn)
)

// entry is one statement of the corpus.
type entry struct {
	sql      string
	source   string // where it came from: a router test file, fuzz:<name>, generated
	settings int    // settingsNone ... settingsAll
}

type corpus struct {
	entries  []entry
	seen     map[string]int // sql -> index in entries
	bySource map[string]int // statements contributed (after dedup)
	dups     int
}

func (c *corpus) add(sql, source string, settings int) {
	if c.seen == nil {
		c.seen = map[string]int{}
		c.bySource = map[string]int{}
	}
	if i, ok := c.seen[sql]; ok {
		c.dups++
		if settings > c.entries[i].settings {
			c.entries[i].settings = settings
		}
		return
	}
	c.seen[sql] = len(c.entries)
	c.entries = append(c.entries, entry{sql: sql, source: source, settings: settings})
	c.bySource[sourceGroup(source)]++
}

func sourceGroup(source string) string {
	if strings.HasPrefix(source, "fuzz:") {
		return "fuzz corpus"
	}
	return source
}

// buildCorpus gathers the router tests' SQL, the fuzz corpus and the
// generated statements, deduplicated by text, in a fixed order.
func buildCorpus(t *testing.T) *corpus {
	t.Helper()
	c := &corpus{}
	for _, f := range routerTestFiles {
		sqls, err := sqlLiterals(filepath.Join(routerDir, f.name))
		if err != nil {
			t.Fatalf("reading the SQL of router/%s: %v", f.name, err)
		}
		if len(sqls) < f.min {
			t.Fatalf("router/%s yielded %d SQL strings, expected at least %d: has the layout of its case tables changed? (sqlLiterals looks for struct fields named sql, Classify/shapeKey arguments and variables named sql)", f.name, len(sqls), f.min)
		}
		for _, s := range sqls {
			// Router tests hold statements meant to be refused as well as
			// allowed ones; all join the corpus (the router filters).
			c.add(s, f.name, routerCorpusSettings)
		}
	}
	fuzz, err := fuzzCorpus(filepath.Join(routerDir, "testdata", "fuzz", "FuzzClassify"))
	if err != nil {
		t.Fatalf("reading the router's fuzz corpus: %v", err)
	}
	for _, f := range fuzz {
		c.add(f.sql, "fuzz:"+f.file, routerCorpusSettings)
	}
	for _, g := range generatedStatements() {
		c.add(g.sql, "generated", g.settings)
	}
	return c
}

// sqlLiterals returns the SQL strings of a router test file: string
// literals in a struct field named sql of a case table, arguments of
// Classify(...)/r.Classify(...)/shapeKey(...), elements of a []string ranged
// over with a variable named sql, and values assigned to a variable named
// sql.
func sqlLiterals(path string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	var bad error
	addLit := func(e ast.Expr) {
		bl, ok := e.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(bl.Value)
		if err != nil {
			bad = fmt.Errorf("%s: %v", fset.Position(bl.Pos()), err)
			return
		}
		out = append(out, s)
	}
	isSQL := func(e ast.Expr) bool {
		id, ok := e.(*ast.Ident)
		return ok && id.Name == "sql"
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch calleeName(n.Fun) {
			case "Classify", "shapeKey":
				for _, a := range n.Args {
					addLit(a)
				}
			}
		case *ast.CompositeLit:
			at, ok := n.Type.(*ast.ArrayType)
			if !ok {
				return true
			}
			st, ok := at.Elt.(*ast.StructType)
			if !ok {
				return true
			}
			var fields []string
			for _, fl := range st.Fields.List {
				for _, nm := range fl.Names {
					fields = append(fields, nm.Name)
				}
			}
			for _, el := range n.Elts {
				cl, ok := el.(*ast.CompositeLit)
				if !ok {
					continue
				}
				for i, v := range cl.Elts {
					name := ""
					if kv, ok := v.(*ast.KeyValueExpr); ok {
						if id, ok := kv.Key.(*ast.Ident); ok {
							name = id.Name
						}
						v = kv.Value
					} else if i < len(fields) {
						name = fields[i]
					}
					if name == "sql" {
						addLit(v)
					}
				}
			}
		case *ast.RangeStmt:
			if n.Value != nil && isSQL(n.Value) {
				if cl, ok := n.X.(*ast.CompositeLit); ok {
					for _, e := range cl.Elts {
						addLit(e)
					}
				}
			}
		case *ast.AssignStmt:
			for i, l := range n.Lhs {
				if isSQL(l) && i < len(n.Rhs) {
					addLit(n.Rhs[i])
				}
			}
		case *ast.ValueSpec:
			for i, nm := range n.Names {
				if nm.Name == "sql" && i < len(n.Values) {
					addLit(n.Values[i])
				}
			}
		}
		return true
	})
	return out, bad
}

func calleeName(e ast.Expr) string {
	switch f := e.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

type fuzzEntry struct{ file, sql string }

// fuzzCorpus decodes a Go fuzz corpus directory of a func(*testing.T,
// string) target: files of "go test fuzz v1" then one string("...") line.
func fuzzCorpus(dir string) ([]fuzzEntry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []fuzzEntry
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
		if len(lines) == 0 || strings.TrimSpace(lines[0]) != "go test fuzz v1" {
			return nil, fmt.Errorf("%s: not a Go fuzz corpus file (first line %q)", name, lines[0])
		}
		n := 0
		for _, l := range lines[1:] {
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			inner, ok1 := strings.CutPrefix(l, "string(")
			inner, ok2 := strings.CutSuffix(inner, ")")
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: value %q is not a string(...)", name, l)
			}
			s, err := strconv.Unquote(inner)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			out = append(out, fuzzEntry{file: name, sql: s})
			n++
		}
		if n != 1 {
			return nil, fmt.Errorf("%s: %d values, FuzzClassify takes one string", name, n)
		}
	}
	return out, nil
}

func TestCorpusExtraction(t *testing.T) {
	c := buildCorpus(t) // checks each router test file's yield
	// The extractor takes the SQL of case tables, not the case names or
	// the denial substrings next to it.
	for _, notSQL := range []string{"psql send", "computed at run time", `needs the "read" grant`, "cast"} {
		if _, ok := c.seen[notSQL]; ok {
			t.Errorf("corpus holds %q, which is not SQL from a case table", notSQL)
		}
	}
	if c.bySource["fuzz corpus"] == 0 {
		t.Errorf("the router's fuzz corpus yielded nothing")
	}
	for _, a := range attackForms {
		if _, ok := c.seen[a]; !ok {
			t.Errorf("corpus lacks the attack form %q", a)
		}
	}
	if len(c.entries) > maxCorpus {
		t.Errorf("corpus has %d statements, cap is %d (runtime)", len(c.entries), maxCorpus)
	}
}
