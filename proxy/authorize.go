package proxy

import (
	"mqstack/router"
)

// The checks a statement passes before it reaches a backend: the rules for
// every token (checkStatement), and a grant-limited token's grants, at
// Query and Parse or, when queue names are parameters, at Bind.

// checkStatement applies the rules that hold before the grants: for every
// token SessionDenial; for grant-limited tokens the statement_timeout
// bound, which nothing they send may lift.
func (s *session) checkStatement(cls *router.Statement) error {
	if d := cls.Session; d != nil {
		return d
	}
	if !s.limited() {
		return nil
	}
	if p := single(cls); p != nil && p.Kind == router.KindDiscard && p.Name == "all" && s.isPinned() {
		return &router.Denial{Kind: p.Kind, Reason: "kind_not_allowed",
			Detail: "DISCARD ALL would reset a pinned backend's statement_timeout under statements pipelined behind it; use UNLISTEN * and DEALLOCATE ALL"}
	}
	if !cls.HasSets {
		return nil
	}
	if why := s.limitedSetDenial(cls); why != "" {
		return &router.Denial{Kind: router.KindSet, Reason: "kind_not_allowed", Detail: why}
	}
	return nil
}

// authorizeQuery checks a simple query (or a Parse without bound queue
// names) of a grant-limited token. filter says the result rows must be
// filtered to listable queues.
func (s *session) authorizeQuery(st *router.Statement) (filter bool, err error) {
	dec, err := router.Authorize(s.login.id, st, noParams)
	if err != nil {
		return false, err
	}
	if dec.FilterListing && len(st.Parts) != 1 {
		return false, &router.Denial{Kind: router.KindPgmq, Reason: "uncertain",
			Detail: "send a listing as a statement of its own, so that its rows can be filtered"}
	}
	return dec.FilterListing, nil
}

// authorizeBind checks a Bind (s.deny.bind) of a statement whose queue
// names are parameters.
func (s *session) authorizeBind(st *router.Statement) (filter bool, err error) {
	if d := s.binaryTarget(st); d != nil {
		return false, d
	}
	dec, err := router.Authorize(s.login.id, st, s.deny.param)
	if err != nil {
		return false, err
	}
	if dec.FilterListing && len(st.Parts) != 1 {
		return false, &router.Denial{Kind: router.KindPgmq, Reason: "uncertain",
			Detail: "send a listing as a statement of its own, so that its rows can be filtered"}
	}
	return dec.FilterListing, nil
}

// binaryTarget finds a pgmq call whose queue is bound in binary format as
// a type the proxy cannot read as text.
func (s *session) binaryTarget(st *router.Statement) *router.Denial {
	b := &s.deny.bind
	for i := range st.Parts {
		for _, c := range st.Parts[i].Calls {
			for _, a := range []router.Arg{c.Target, c.Pattern} {
				j := a.Param - 1
				if j < 0 || b.m == nil {
					continue
				}
				if formatOf(b.m.ParameterFormatCodes, j) != 0 && !textOID(b.oids, j) {
					return &router.Denial{Kind: router.KindPgmq, Op: c.Op, Reason: "uncertain",
						Detail: "a name given to pgmq." + c.Function + " is bound in binary format as a type other than text or varchar"}
				}
				if !keepsName(b.oids, j) {
					return &router.Denial{Kind: router.KindPgmq, Op: c.Op, Reason: "uncertain",
						Detail: "a name given to pgmq." + c.Function + " is declared of a type other than text or varchar, which may change it (bpchar drops trailing blanks, name truncates)"}
				}
			}
		}
	}
	return nil
}
