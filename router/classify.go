package router

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// cursorOptHold is CURSOR_OPT_HOLD from Postgres' parsenodes.h.
const cursorOptHold = 0x0020

// Classify parses sql and classifies each of its statements. It does not
// use the cache; Router.Classify does.
func Classify(sql string) *Statement {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		// Postgres refuses it too, as a rule; where its grammar and the
		// parser's differ the router cannot say what ran, so the backend
		// is reset after it.
		return summarized(&Statement{ParseError: err.Error(), Parts: []Part{{Kind: KindOther,
			Uncertain: "the statement does not parse", Taints: true}}})
	}
	st := &Statement{}
	if len(tree.Stmts) == 0 {
		st.Parts = []Part{{Kind: KindEmpty}}
		return summarized(st)
	}
	for _, raw := range tree.Stmts {
		st.Parts = append(st.Parts, classifyStmt(raw.Stmt))
	}
	return summarized(st)
}

// classifyStmt names the statement's kind, then walks its whole tree for
// what any kind of statement may carry: function calls, relations, casts.
func classifyStmt(n *pg_query.Node) Part {
	p := kindOf(n)
	sc := newTreeScan(&p)
	sc.walkTree(n)
	if s := n.GetSelectStmt(); s != nil {
		p.Kind = sc.selectKind()
		if col, ok := listeningChannelsColumn(s); ok {
			p.Kind, p.Name = KindListeningChannels, col
		}
	}
	return p
}

// kindOf is the part as far as the statement's own type tells.
func kindOf(n *pg_query.Node) Part {
	switch s := n.Node.(type) {
	case *pg_query.Node_TransactionStmt:
		switch s.TransactionStmt.Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE, pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED,
			pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			return Part{Kind: KindOther, Uncertain: "two-phase commit is not a queue operation"}
		}
		return Part{Kind: KindTransaction}
	case *pg_query.Node_VariableSetStmt:
		return classifySet(s.VariableSetStmt)
	case *pg_query.Node_VariableShowStmt:
		return Part{Kind: KindShow, Setting: strings.ToLower(s.VariableShowStmt.Name)}
	case *pg_query.Node_DiscardStmt:
		return Part{Kind: KindDiscard, Name: discardTargets[s.DiscardStmt.Target]}
	case *pg_query.Node_DeallocateStmt:
		return Part{Kind: KindDeallocate, Name: s.DeallocateStmt.Name}
	case *pg_query.Node_ClosePortalStmt:
		return Part{Kind: KindClose, Name: s.ClosePortalStmt.Portalname}
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
		return Part{Kind: KindConstant}
	case *pg_query.Node_PrepareStmt:
		return Part{Kind: KindOther, Uncertain: "SQL PREPARE", Pin: PinSQLPrepare, Name: s.PrepareStmt.Name}
	case *pg_query.Node_DeclareCursorStmt:
		p := Part{Kind: KindOther, Uncertain: "DECLARE CURSOR"}
		if s.DeclareCursorStmt.Options&cursorOptHold != 0 {
			p.Pin = PinHoldCursor
		}
		return p
	case *pg_query.Node_DoStmt:
		return Part{Kind: KindOther, Uncertain: "DO runs code the router cannot read", Taints: true}
	case *pg_query.Node_CallStmt:
		return Part{Kind: KindOther, Uncertain: "CALL runs a procedure the router cannot read", Taints: true}
	case *pg_query.Node_LoadStmt:
		return Part{Kind: KindOther, Uncertain: "LOAD changes the session", Pin: PinSessionSet}
	case *pg_query.Node_CreateStmt:
		return Part{Kind: KindOther, Uncertain: "CREATE TABLE is not a queue operation"}
	case *pg_query.Node_CreateTableAsStmt:
		return Part{Kind: KindOther, Uncertain: "CREATE TABLE AS is not a queue operation"}
	case *pg_query.Node_CopyStmt:
		cs := s.CopyStmt
		return Part{Kind: KindOther, Uncertain: "COPY is not a queue operation",
			CopyIn: cs.IsFrom && cs.Filename == "" && !cs.IsProgram}
	case *pg_query.Node_NotifyStmt:
		return Part{Kind: KindOther, Uncertain: "NOTIFY is not a queue operation", Notify: true}
	}
	return Part{Kind: KindOther, Uncertain: stmtName(n) + " is not a queue operation"}
}

var discardTargets = map[pg_query.DiscardMode]string{
	pg_query.DiscardMode_DISCARD_ALL: "all", pg_query.DiscardMode_DISCARD_PLANS: "plans",
	pg_query.DiscardMode_DISCARD_SEQUENCES: "sequences", pg_query.DiscardMode_DISCARD_TEMP: "temp",
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

// classifySet reads SET, RESET and SET TRANSACTION: the name, the scope and
// the values. The router pins only the forms no replay can carry (SET
// SESSION CHARACTERISTICS, SET ... FROM CURRENT); whether a plain session
// SET pins is the proxy's decision, which replays on checkout the settings
// Replayed names (the list is in settings.go) and pins for the others.
func classifySet(s *pg_query.VariableSetStmt) Part {
	name := strings.ToLower(s.Name)
	p := Part{Kind: KindSet, Setting: name, Local: s.IsLocal}
	switch s.Kind {
	case pg_query.VariableSetKind_VAR_SET_MULTI: // SET TRANSACTION ..., SET SESSION CHARACTERISTICS
		if name == "transaction" {
			p.Local = true // it lasts until the transaction ends
			return p
		}
		p.Uncertain = "SET " + strings.ToUpper(name) + " is not a setting the proxy replays"
		p.Pin = PinSessionSet
		return p
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		p.Setting = ""
		p.Reset = true
		return p
	case pg_query.VariableSetKind_VAR_RESET, pg_query.VariableSetKind_VAR_SET_DEFAULT:
		p.Reset = true
	case pg_query.VariableSetKind_VAR_SET_CURRENT:
		p.Uncertain = "SET ... FROM CURRENT"
		p.Pin = PinSessionSet
		return p
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		p.Values, p.ValuesKnown = setValues(s.Args)
	}
	if name == "role" || name == "session_authorization" {
		p.Kind = KindOther
		p.Uncertain = "SET " + strings.ToUpper(name) + " changes the session's role"
	}
	return p
}

// setValues renders SET's arguments as set_config would take them: a list
// joined with ", ", identifiers quoted where Postgres would need it. ok is
// false for anything but constants (SET TIME ZONE INTERVAL ...).
func setValues(args []*pg_query.Node) (vals []string, ok bool) {
	for _, a := range args {
		c := a.GetAConst()
		if c == nil || c.Isnull {
			return nil, false
		}
		switch {
		case c.GetSval() != nil:
			vals = append(vals, c.GetSval().Sval)
		case c.GetIval() != nil:
			vals = append(vals, fmt.Sprint(c.GetIval().Ival))
		case c.GetFval() != nil:
			vals = append(vals, c.GetFval().Fval)
		case c.GetBoolval() != nil:
			vals = append(vals, fmt.Sprint(c.GetBoolval().Boolval))
		default:
			return nil, false
		}
	}
	return vals, len(vals) > 0
}

// Value is the SET's value as one set_config string: list settings
// (search_path) joined with ", " and quoted as identifiers where needed.
func (p *Part) Value() string {
	if len(p.Values) == 1 && p.Setting != "search_path" {
		return p.Values[0]
	}
	var b strings.Builder
	for i, v := range p.Values {
		if i > 0 {
			b.WriteString(", ")
		}
		if p.Setting == "search_path" {
			b.WriteString(quoteIdent(v))
		} else {
			b.WriteString(v)
		}
	}
	return b.String()
}

// quoteIdent quotes a name unless it is a plain lower-case identifier.
func quoteIdent(s string) string {
	plain := s != ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '$')) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
