package router

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"mqstack/auth"
)

// treeScan walks one statement's parse tree and records on its Part what
// any statement may carry: pgmq calls, other function calls, relations,
// casts and operators. A SELECT's kind follows from what it found.
type treeScan struct {
	part          *Part
	ctes          map[string]bool
	catalog       bool
	pgmq          bool // a pgmq function is called, even if uncertainly
	unlockAllOnly bool
	otherFuncs    int
}

func newTreeScan(p *Part) *treeScan { return &treeScan{part: p, ctes: map[string]bool{}} }

func (sc *treeScan) walkTree(n *pg_query.Node) {
	// CTE names first, so references to them are not mistaken for tables.
	walk(n.ProtoReflect(), func(m protoreflect.Message) bool {
		if cte, ok := m.Interface().(*pg_query.CommonTableExpr); ok {
			sc.ctes[strings.ToLower(cte.Ctename)] = true
		}
		return true
	})
	walk(n.ProtoReflect(), sc.visit)
}

func (sc *treeScan) selectKind() Kind {
	switch {
	case sc.pgmq:
		return KindPgmq
	case sc.catalog:
		return KindCatalog
	case sc.unlockAllOnly && sc.otherFuncs == 0:
		return KindAdvisoryUnlockAll
	}
	return KindConstant
}

func (sc *treeScan) uncertain(format string, args ...any) {
	if sc.part.Uncertain == "" {
		sc.part.Uncertain = fmt.Sprintf(format, args...)
	}
}

func (sc *treeScan) visit(m protoreflect.Message) bool {
	switch n := m.Interface().(type) {
	case *pg_query.FuncCall:
		sc.funcCall(n)
	case *pg_query.RangeVar:
		sc.rangeVar(n)
	case *pg_query.TypeCast:
		sc.typeCast(n)
	case *pg_query.A_Expr:
		sc.operator(n.Name)
	case *pg_query.IntoClause:
		sc.uncertain("SELECT INTO creates a table")
		if n.Rel != nil && n.Rel.Relpersistence == "t" && n.OnCommit != pg_query.OnCommitAction_ONCOMMIT_DROP {
			sc.part.Pin = PinTempTable
		}
	case *pg_query.CreateStmt:
		sc.createsTemp(n.Relation, n.Oncommit)
	case *pg_query.CreateTableAsStmt:
		if n.Into != nil {
			sc.createsTemp(n.Into.Rel, n.Into.OnCommit)
		}
	case *pg_query.ViewStmt:
		sc.createsTemp(n.View, pg_query.OnCommitAction_ONCOMMIT_NOOP)
	case *pg_query.CreateSeqStmt:
		sc.createsTemp(n.Sequence, pg_query.OnCommitAction_ONCOMMIT_NOOP)
	case *pg_query.CreateFunctionStmt:
		if schema, _ := qualifiedName(n.Funcname); schema == "pg_temp" {
			sc.part.Pin = PinTempTable
		}
	case *pg_query.LockingClause:
		sc.uncertain("SELECT ... FOR UPDATE/SHARE locks rows")
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
		if sc.part.Kind == KindConstant {
			sc.uncertain("a data-modifying WITH clause")
		}
	}
	return true
}

// createsTemp pins a session that creates a temporary object outliving
// its transaction.
func (sc *treeScan) createsTemp(rel *pg_query.RangeVar, onCommit pg_query.OnCommitAction) {
	if rel == nil || onCommit == pg_query.OnCommitAction_ONCOMMIT_DROP {
		return
	}
	if rel.Relpersistence == "t" || strings.EqualFold(rel.Schemaname, "pg_temp") {
		sc.part.Pin = PinTempTable
	}
}

func (sc *treeScan) funcCall(fc *pg_query.FuncCall) {
	schema, name := qualifiedName(fc.Funcname)
	spec, isPgmq := pgmqFunctions[name]
	if schema == "pgmq" || (schema == "" && isPgmq) {
		if !isPgmq {
			sc.uncertain("pgmq.%s is internal to pgmq", name)
			sc.part.Taints = true
			return
		}
		sc.pgmqCall(name, spec, fc)
		return
	}
	if schema != "" && schema != "pg_catalog" {
		sc.uncertain("calls %s.%s, which may do anything", schema, name)
		sc.part.Taints = true
		return
	}
	sc.part.Funcs = append(sc.part.Funcs, name)
	switch name {
	case "pg_advisory_unlock_all":
		sc.unlockAllOnly = true
		return
	case "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared":
		sc.part.Pin = PinAdvisoryLock
		sc.uncertain("%s takes a session lock", name)
		return
	case "set_config":
		sc.setConfig(fc)
		return
	case "current_setting":
		if len(fc.Args) == 0 {
			return
		}
		if a, ok := argValue(fc.Args[0]); ok && a.Param == 0 && !a.Null {
			sc.part.SettingReads = append(sc.part.SettingReads, strings.ToLower(a.Literal))
		} else {
			sc.part.SettingReads = append(sc.part.SettingReads, "")
		}
	}
	if !vouchedFunctions[name] {
		sc.uncertain("calls %s, which may do anything", name)
		sc.part.Taints = true
		return
	}
	sc.otherFuncs++
}

// setConfig reads set_config(name, value, is_local). With constant
// arguments it is a SET like any other (checked by SettingDenial);
// anything else is a setting the router cannot name.
func (sc *treeScan) setConfig(fc *pg_query.FuncCall) {
	sc.uncertain("set_config changes settings at run time; use SET")
	local := literalTrue(fc.Args, 2)
	if !local {
		sc.part.Pin = PinSessionSet
	}
	if len(fc.Args) >= 2 {
		name, ok1 := argValue(fc.Args[0])
		val, ok2 := argValue(fc.Args[1])
		if ok1 && ok2 && name.Param == 0 && val.Param == 0 && !name.Null {
			sc.part.SetConfigs = append(sc.part.SetConfigs, [2]string{strings.ToLower(name.Literal), val.Literal})
			return
		}
	}
	sc.part.SetConfigs = append(sc.part.SetConfigs, [2]string{"", ""})
	sc.part.Taints = true
}

// typeCast notes casts to the reg* types, which look objects up by name
// (and so tell whether a queue table exists).
func (sc *treeScan) typeCast(tc *pg_query.TypeCast) {
	if tc.TypeName == nil {
		return
	}
	_, t := qualifiedName(tc.TypeName.Names)
	if strings.HasPrefix(t, "reg") {
		sc.part.RegCast = true
	}
}

// operator: an operator named with a schema other than pg_catalog runs a
// function of that schema.
func (sc *treeScan) operator(name []*pg_query.Node) {
	if schema, op := qualifiedName(name); schema != "" && schema != "pg_catalog" {
		sc.uncertain("uses operator %s.%s, which may do anything", schema, op)
		sc.part.Taints = true
	}
}

// literalTrue reports whether argument i is the boolean literal true.
func literalTrue(args []*pg_query.Node, i int) bool {
	if i >= len(args) {
		return false
	}
	n := args[i]
	for tc := n.GetTypeCast(); tc != nil; tc = n.GetTypeCast() {
		n = tc.Arg
	}
	c := n.GetAConst()
	return c != nil && c.GetBoolval() != nil && c.GetBoolval().Boolval
}

// qualifiedName splits a name list (function, type or operator) into its
// schema ("" when unqualified) and name.
func qualifiedName(names []*pg_query.Node) (schema, name string) {
	var parts []string
	for _, n := range names {
		parts = append(parts, n.GetString_().GetSval())
	}
	switch len(parts) {
	case 0:
		return "", ""
	case 1:
		return "", parts[0]
	}
	return parts[len(parts)-2], parts[len(parts)-1]
}

func (sc *treeScan) pgmqCall(name string, spec fnSpec, fc *pg_query.FuncCall) {
	if sc.part.Kind != KindConstant {
		// Inside INSERT, EXPLAIN, ...: not a call the proxy accounts or a
		// grant-limited token may make; its own kind refuses it.
		return
	}
	sc.pgmq = true
	call := Call{Function: name, Op: spec.op, Scope: spec.scope}
	var positional []*pg_query.Node
	named := map[string]*pg_query.Node{}
	for _, a := range fc.Args {
		if na := a.GetNamedArgExpr(); na != nil {
			named[na.Name] = na.Arg
			continue
		}
		positional = append(positional, a)
	}
	if name == "list_topic_bindings" && len(fc.Args) > 0 {
		spec = fnSpec{op: auth.OpList, scope: ScopeQueue, arg: "queue_name"}
		call.Scope = ScopeQueue
	}
	if spec.scope == ScopeQueue || spec.scope == ScopeTopic {
		arg, ok := sc.argument(name, spec.arg, spec.pos, named, positional)
		if !ok {
			return
		}
		call.Target = arg
	}
	if spec.pattern != "" {
		arg, ok := sc.argument(name, spec.pattern, 0, named, positional)
		if !ok {
			return
		}
		call.Pattern = arg
	}
	if spec.msg != "" {
		node := named[spec.msg]
		if node == nil && len(positional) > 1 {
			node = positional[1]
		}
		if node != nil {
			if m, ok := messageValue(node); ok && !m.Null {
				call.Message = m
			}
		}
	}
	sc.part.Calls = append(sc.part.Calls, call)
}

// argument finds a pgmq call's queue, routing key or pattern argument; it
// must be a plain literal or parameter (argValue).
func (sc *treeScan) argument(fn, arg string, pos int, named map[string]*pg_query.Node, positional []*pg_query.Node) (Arg, bool) {
	node := named[arg]
	if node == nil && pos < len(positional) {
		node = positional[pos]
	}
	if node == nil {
		sc.uncertain("pgmq.%s without its %s argument", fn, arg)
		return Arg{}, false
	}
	a, ok := argValue(node)
	if !ok {
		sc.uncertain("the %s of pgmq.%s is computed at run time, or cast to a type that may change it (only text and varchar without a length keep a name as written)", arg, fn)
		return Arg{}, false
	}
	return a, true
}

// argValue accepts a string literal, NULL or a parameter, cast at most to
// text or to varchar without a length: casts to char(n), bpchar,
// varchar(n) or name change the value (trailing blanks dropped, truncation),
// so Postgres would see another name than the router checked.
func argValue(n *pg_query.Node) (Arg, bool) {
	for {
		tc := n.GetTypeCast()
		if tc == nil {
			break
		}
		if !keepsText(tc.TypeName) {
			return Arg{}, false
		}
		n = tc.Arg
	}
	if p := n.GetParamRef(); p != nil {
		return Arg{Param: int(p.Number)}, p.Number > 0
	}
	if c := n.GetAConst(); c != nil {
		if c.Isnull {
			return Arg{Null: true}, true
		}
		if s := c.GetSval(); s != nil {
			return Arg{Literal: s.Sval}, true
		}
	}
	return Arg{}, false
}

// messageValue is a send's message argument for size metrics: a literal
// or parameter under any casts (its value is not checked against grants).
func messageValue(n *pg_query.Node) (Arg, bool) {
	for tc := n.GetTypeCast(); tc != nil; tc = n.GetTypeCast() {
		n = tc.Arg
	}
	return argValue(n)
}

// keepsText reports whether a cast leaves a string as it is: text or
// varchar, unqualified or in pg_catalog, without length or array bounds.
func keepsText(t *pg_query.TypeName) bool {
	if t == nil || len(t.Typmods) > 0 || len(t.ArrayBounds) > 0 || t.Setof || t.PctType {
		return false
	}
	schema, name := qualifiedName(t.Names)
	if schema != "" && schema != "pg_catalog" {
		return false
	}
	return name == "text" || name == "varchar"
}

func (sc *treeScan) rangeVar(rv *pg_query.RangeVar) {
	schema, rel := strings.ToLower(rv.Schemaname), strings.ToLower(rv.Relname)
	switch {
	case schema == "" && sc.ctes[rel]:
	case schema == "pg_catalog" || schema == "information_schema" || (schema == "" && strings.HasPrefix(rel, "pg_")):
		sc.catalog = true
		name := rel
		if schema == "information_schema" {
			name = schema + "." + rel
		}
		sc.part.Relations = append(sc.part.Relations, name)
	case schema == "pgmq":
		sc.uncertain("reads the pgmq table %s directly", rel)
	default:
		name := rel
		if schema != "" {
			name = schema + "." + rel
		}
		sc.uncertain("reads table %s", name)
	}
}

// walk visits every message of a parse tree, depth first.
func walk(m protoreflect.Message, visit func(protoreflect.Message) bool) {
	if !visit(m) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), visit)
			}
			return true
		}
		walk(v.Message(), visit)
		return true
	})
}
