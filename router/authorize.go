package router

import (
	"fmt"
	"strings"

	"mqstack/auth"
)

// Denial is a statement the grant check refuses. The proxy sends it as
// ERROR 42501 (the session stays usable); REST answers 403.
type Denial struct {
	Kind   Kind   // statement kind
	Queue  string // the queue or routing key, "" when none
	Op     Op     // the missing op, "" when the kind itself is not allowed
	Reason string // bounded metric label: missing_grant, uncertain, kind_not_allowed
	Detail string // why, for the message
}

func (d *Denial) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "permission denied by queue grants: %s", d.Kind)
	if d.Queue != "" {
		fmt.Fprintf(&b, " on %q", d.Queue)
	}
	if d.Op != "" {
		fmt.Fprintf(&b, " needs the %q grant", d.Op)
	}
	if d.Detail != "" {
		fmt.Fprintf(&b, " (%s)", d.Detail)
	}
	return b.String()
}

// Params resolves $n (1-based) to its bound value as text; ok is false when
// the value is missing or NULL.
type Params func(n int) (value string, ok bool)

// Decision is what Authorize found.
type Decision struct {
	// FilterListing: a listing (list_queues, metrics_all, ...) whose rows
	// must be filtered to the queues the token may list.
	FilterListing bool
}

// Authorize checks a classified statement against the identity's grants.
// A token without grants may run anything (its role's privileges limit it).
func Authorize(id auth.Identity, st *Statement, params Params) (Decision, error) {
	var dec Decision
	g := id.Grants
	if !g.Limited() {
		return dec, nil
	}
	for i := range st.Parts {
		p := &st.Parts[i]
		if p.Uncertain != "" {
			return dec, &Denial{Kind: p.Kind, Reason: "uncertain", Detail: p.Uncertain + "; grant-limited tokens may only run statements the router can vouch for"}
		}
		switch p.Kind {
		case KindEmpty, KindTransaction, KindSet, KindShow, KindDiscard, KindDeallocate, KindClose,
			KindUnlisten, KindConstant, KindCatalog, KindCreateExtension, KindAdvisoryUnlockAll:
			continue
		case KindListen:
			queue, ok := NotifyChannelQueue(p.Channel)
			if !ok {
				return dec, &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Detail: "only a queue's insert-notification channel pgmq.q_<queue>.INSERT may be listened to"}
			}
			if !g.Allows(auth.OpRead, queue) {
				return dec, &Denial{Kind: p.Kind, Queue: queue, Op: OpRead, Reason: "missing_grant"}
			}
		case KindPgmq:
			for _, c := range p.Calls {
				filter, err := authorizeCall(g, p.Kind, c, params)
				if err != nil {
					return dec, err
				}
				dec.FilterListing = dec.FilterListing || filter
			}
		default:
			return dec, &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Detail: "grant-limited tokens may only call pgmq functions"}
		}
	}
	return dec, nil
}

func authorizeCall(g *auth.Grants, kind Kind, c Call, params Params) (filter bool, err error) {
	var op auth.Op
	if c.Op != "" {
		o, ok := auth.ParseOp(string(c.Op))
		if !ok {
			return false, fmt.Errorf("BUG: router op %q unknown to auth", c.Op)
		}
		op = o
	}
	switch c.Scope {
	case ScopePure:
		return false, nil
	case ScopeAllQueues:
		if !g.AllowsAll(op) {
			return false, &Denial{Kind: kind, Queue: "*", Op: c.Op, Reason: "missing_grant", Detail: "pgmq." + c.Function + " acts on every queue"}
		}
		return false, nil
	case ScopeListing:
		if !g.AllowsAny(op) {
			return false, &Denial{Kind: kind, Op: c.Op, Reason: "missing_grant", Detail: "pgmq." + c.Function + " needs list on some queue"}
		}
		return true, nil
	}
	name, ok := c.Target.Literal, !c.Target.Null
	if c.Target.Param > 0 {
		name, ok = params(c.Target.Param)
	}
	if !ok {
		return false, &Denial{Kind: kind, Op: c.Op, Reason: "uncertain", Detail: "the queue name of pgmq." + c.Function + " is NULL or not bound"}
	}
	if c.Scope == ScopeTopic {
		if !g.AllowsTopic(name) {
			return false, &Denial{Kind: kind, Queue: name, Op: c.Op, Reason: "missing_grant", Detail: "routing key"}
		}
		return false, nil
	}
	if !g.Allows(op, name) {
		return false, &Denial{Kind: kind, Queue: name, Op: c.Op, Reason: "missing_grant"}
	}
	return false, nil
}

// NotifyChannelQueue returns the queue of a pgmq insert-notification channel
// ("pgmq.q_<queue>.INSERT").
func NotifyChannelQueue(channel string) (string, bool) {
	q, ok := strings.CutPrefix(channel, "pgmq.q_")
	if !ok {
		return "", false
	}
	q, ok = strings.CutSuffix(q, ".INSERT")
	return q, ok && q != ""
}
