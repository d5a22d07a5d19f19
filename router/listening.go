package router

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// SELECT pg_listening_channels(): the proxy answers LISTEN itself, so no
// backend knows a client's channels, and the proxy answers this query from
// the session's own set. Only the plain form is recognised (one target, no
// FROM, no clauses); the column is named as Postgres would name it.

// listeningChannelsColumn returns the result column of a SELECT that calls
// pg_listening_channels() and nothing else, and whether s is one.
func listeningChannelsColumn(s *pg_query.SelectStmt) (string, bool) {
	if len(s.TargetList) != 1 || len(s.FromClause) != 0 || s.WhereClause != nil || len(s.GroupClause) != 0 ||
		s.HavingClause != nil || len(s.SortClause) != 0 || s.LimitCount != nil || s.LimitOffset != nil ||
		s.WithClause != nil || len(s.DistinctClause) != 0 || len(s.ValuesLists) != 0 || len(s.LockingClause) != 0 ||
		len(s.WindowClause) != 0 || s.IntoClause != nil || s.Op != pg_query.SetOperation_SETOP_NONE {
		return "", false
	}
	rt := s.TargetList[0].GetResTarget()
	if rt == nil || len(rt.Indirection) != 0 {
		return "", false
	}
	fc := rt.Val.GetFuncCall()
	if fc == nil || len(fc.Args) != 0 || fc.AggStar || fc.AggDistinct || fc.FuncVariadic || fc.Over != nil ||
		fc.AggFilter != nil || len(fc.AggOrder) != 0 {
		return "", false
	}
	schema, name := qualifiedName(fc.Funcname)
	if name != "pg_listening_channels" || (schema != "" && schema != "pg_catalog") {
		return "", false
	}
	if rt.Name != "" {
		return rt.Name, true
	}
	return name, true
}

// readsListening reports whether a part calls pg_listening_channels.
func readsListening(p *Part) bool { return slices.Contains(p.Funcs, "pg_listening_channels") }
