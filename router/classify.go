package router

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TrackedSettings are the session settings the proxy replays on every
// backend it checks out, so setting them does not pin a client.
var TrackedSettings = setOf("application_name", "client_encoding", "datestyle", "timezone",
	"intervalstyle", "standard_conforming_strings", "search_path", "extra_float_digits")

// forbiddenSettings change who the session is: never allowed under grants.
var forbiddenSettings = setOf("role", "session_authorization")

// cursorOptHold is CURSOR_OPT_HOLD from Postgres' parsenodes.h.
const cursorOptHold = 0x0020

// Classify parses sql and classifies each of its statements. It does not
// use the cache; Router.Classify does.
func Classify(sql string) *Statement {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return &Statement{ParseError: err.Error(), Parts: []Part{{Kind: KindOther, Uncertain: "the statement does not parse", Pin: PinParseFailures}}}
	}
	st := &Statement{}
	if len(tree.Stmts) == 0 {
		st.Parts = []Part{{Kind: KindEmpty}}
		return st
	}
	for _, raw := range tree.Stmts {
		st.Parts = append(st.Parts, classifyStmt(raw.Stmt))
	}
	return st
}

func classifyStmt(n *pg_query.Node) Part {
	switch s := n.Node.(type) {
	case *pg_query.Node_TransactionStmt:
		return Part{Kind: KindTransaction}
	case *pg_query.Node_VariableSetStmt:
		return classifySet(s.VariableSetStmt)
	case *pg_query.Node_VariableShowStmt:
		return Part{Kind: KindShow, Setting: strings.ToLower(s.VariableShowStmt.Name)}
	case *pg_query.Node_DiscardStmt:
		return Part{Kind: KindDiscard}
	case *pg_query.Node_DeallocateStmt:
		return Part{Kind: KindDeallocate}
	case *pg_query.Node_ClosePortalStmt:
		return Part{Kind: KindClose}
	case *pg_query.Node_ListenStmt:
		return Part{Kind: KindListen, Channel: s.ListenStmt.Conditionname, Pin: PinListen}
	case *pg_query.Node_UnlistenStmt:
		ch := s.UnlistenStmt.Conditionname
		if ch == "" {
			ch = "*"
		}
		return Part{Kind: KindUnlisten, Channel: ch}
	case *pg_query.Node_CreateExtensionStmt:
		ce := s.CreateExtensionStmt
		if ce.Extname == "pgmq" && ce.IfNotExists && onlyCascadeOption(ce.Options) {
			return Part{Kind: KindCreateExtension}
		}
		return Part{Kind: KindOther, Uncertain: "CREATE EXTENSION other than CREATE EXTENSION IF NOT EXISTS pgmq"}
	case *pg_query.Node_SelectStmt:
		return classifySelect(s.SelectStmt)
	case *pg_query.Node_PrepareStmt:
		return Part{Kind: KindOther, Uncertain: "SQL PREPARE", Pin: PinSQLPrepare}
	case *pg_query.Node_DeclareCursorStmt:
		p := Part{Kind: KindOther, Uncertain: "DECLARE CURSOR"}
		if s.DeclareCursorStmt.Options&cursorOptHold != 0 {
			p.Pin = PinHoldCursor
		}
		return p
	case *pg_query.Node_CreateStmt:
		p := Part{Kind: KindOther, Uncertain: "CREATE TABLE"}
		// A temporary table dropped at commit does not outlive the
		// transaction, so it does not pin.
		if rel := s.CreateStmt.Relation; rel != nil && rel.Relpersistence == "t" &&
			s.CreateStmt.Oncommit != pg_query.OnCommitAction_ONCOMMIT_DROP {
			p.Pin = PinTempTable
		}
		return p
	case *pg_query.Node_CreateTableAsStmt:
		p := Part{Kind: KindOther, Uncertain: "CREATE TABLE AS"}
		if into := s.CreateTableAsStmt.Into; into != nil && into.Rel != nil && into.Rel.Relpersistence == "t" &&
			into.OnCommit != pg_query.OnCommitAction_ONCOMMIT_DROP {
			p.Pin = PinTempTable
		}
		return p
	}
	return Part{Kind: KindOther, Uncertain: stmtName(n) + " is not a queue operation"}
}

// stmtName turns Node_InsertStmt into "INSERT".
func stmtName(n *pg_query.Node) string {
	name := fmt.Sprintf("%T", n.Node)
	name = strings.TrimPrefix(name, "*pg_query.Node_")
	name = strings.TrimSuffix(name, "Stmt")
	return strings.ToUpper(name)
}

func onlyCascadeOption(opts []*pg_query.Node) bool {
	for _, o := range opts {
		if d := o.GetDefElem(); d == nil || d.Defname != "cascade" {
			return false
		}
	}
	return true
}

func classifySet(s *pg_query.VariableSetStmt) Part {
	name := strings.ToLower(s.Name)
	p := Part{Kind: KindSet, Setting: name, Local: s.IsLocal}
	if forbiddenSettings[name] {
		p.Kind = KindOther
		p.Uncertain = "SET " + strings.ToUpper(name) + " changes the session's role"
		return p
	}
	switch s.Kind {
	case pg_query.VariableSetKind_VAR_SET_MULTI: // SET TRANSACTION ..., SET SESSION CHARACTERISTICS
		if strings.HasPrefix(name, "transaction") {
			return p
		}
		p.Pin = PinSessionSet
		return p
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		p.Setting = ""
		return p
	}
	if !s.IsLocal && !TrackedSettings[name] {
		p.Pin = PinSessionSet
	}
	return p
}

// selectScan gathers what a SELECT touches.
type selectScan struct {
	part          Part
	ctes          map[string]bool
	catalog       bool
	pgmq          bool // a pgmq function is called, even if uncertainly
	unlockAllOnly bool
	otherFuncs    int
}

func classifySelect(sel *pg_query.SelectStmt) Part {
	sc := &selectScan{ctes: map[string]bool{}}
	// CTE names first, so references to them are not mistaken for tables.
	walk(sel.ProtoReflect(), func(m protoreflect.Message) bool {
		if cte, ok := m.Interface().(*pg_query.CommonTableExpr); ok {
			sc.ctes[strings.ToLower(cte.Ctename)] = true
		}
		return true
	})
	walk(sel.ProtoReflect(), sc.visit)
	p := sc.part
	switch {
	case sc.pgmq:
		p.Kind = KindPgmq
	case sc.catalog:
		p.Kind = KindCatalog
	case sc.unlockAllOnly && sc.otherFuncs == 0:
		p.Kind = KindAdvisoryUnlockAll
	default:
		p.Kind = KindConstant
	}
	return p
}

func (sc *selectScan) uncertain(format string, args ...any) {
	if sc.part.Uncertain == "" {
		sc.part.Uncertain = fmt.Sprintf(format, args...)
	}
}

func (sc *selectScan) visit(m protoreflect.Message) bool {
	switch n := m.Interface().(type) {
	case *pg_query.FuncCall:
		sc.funcCall(n)
	case *pg_query.RangeVar:
		sc.rangeVar(n)
	case *pg_query.IntoClause:
		sc.uncertain("SELECT INTO creates a table")
	case *pg_query.LockingClause:
		sc.uncertain("SELECT ... FOR UPDATE/SHARE locks rows")
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
		sc.uncertain("a data-modifying WITH clause")
	}
	return true
}

func (sc *selectScan) funcCall(fc *pg_query.FuncCall) {
	schema, name := funcName(fc)
	spec, isPgmq := pgmqFunctions[name]
	if schema == "pgmq" || (schema == "" && isPgmq) {
		if !isPgmq {
			sc.uncertain("pgmq.%s is internal to pgmq", name)
			return
		}
		sc.pgmqCall(name, spec, fc)
		return
	}
	if schema != "" && schema != "pg_catalog" {
		sc.uncertain("calls %s.%s, which may do anything", schema, name)
		return
	}
	switch name {
	case "pg_advisory_unlock_all":
		sc.unlockAllOnly = true
		return
	case "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared":
		sc.part.Pin = PinAdvisoryLock
		sc.uncertain("%s takes a session lock", name)
		return
	case "set_config":
		// set_config(name, value, true) lasts until the transaction ends;
		// only a literal true is certain to.
		if !literalTrue(fc.Args, 2) {
			sc.part.Pin = PinSessionSet
		}
		sc.uncertain("set_config changes settings at run time")
		return
	}
	if !safeFunctions[name] {
		sc.uncertain("calls %s, which may do anything", name)
		return
	}
	sc.otherFuncs++
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

func funcName(fc *pg_query.FuncCall) (schema, name string) {
	var parts []string
	for _, n := range fc.Funcname {
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

func (sc *selectScan) pgmqCall(name string, spec fnSpec, fc *pg_query.FuncCall) {
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
		spec = fnSpec{op: OpList, scope: ScopeQueue, arg: "queue_name"}
		call.Scope = ScopeQueue
	}
	if spec.scope == ScopeQueue || spec.scope == ScopeTopic {
		node := named[spec.arg]
		if node == nil && spec.pos < len(positional) {
			node = positional[spec.pos]
		}
		if node == nil {
			sc.uncertain("pgmq.%s without its %s argument", name, spec.arg)
			return
		}
		arg, ok := argValue(node)
		if !ok {
			sc.uncertain("the %s of pgmq.%s is computed at run time", spec.arg, name)
			return
		}
		call.Target = arg
	}
	if spec.msg != "" {
		node := named[spec.msg]
		if node == nil && len(positional) > 1 {
			node = positional[1]
		}
		if node != nil {
			if m, ok := argValue(node); ok && !m.Null {
				call.Message = m
			}
		}
	}
	sc.part.Calls = append(sc.part.Calls, call)
}

// argValue accepts a string literal, NULL or a parameter, under any casts.
func argValue(n *pg_query.Node) (Arg, bool) {
	for {
		tc := n.GetTypeCast()
		if tc == nil {
			break
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

func (sc *selectScan) rangeVar(rv *pg_query.RangeVar) {
	schema, rel := strings.ToLower(rv.Schemaname), strings.ToLower(rv.Relname)
	switch {
	case schema == "" && sc.ctes[rel]:
	case schema == "pg_catalog" || schema == "information_schema" || (schema == "" && strings.HasPrefix(rel, "pg_")):
		sc.catalog = true
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
