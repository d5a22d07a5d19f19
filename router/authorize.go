package router

import (
	"fmt"
	"strings"

	"github.com/jackc/pgerrcode"

	"mqstack/auth"
)

// Denial is a statement the grant check refuses. The proxy sends it as
// ERROR 42501 (the session stays usable); REST answers 403.
type Denial struct {
	Kind   Kind    // statement kind
	Queue  string  // the queue or routing key, "" when none
	Op     auth.Op // the missing op, 0 when the kind itself is not allowed
	Reason string  // bounded metric label: missing_grant, uncertain, kind_not_allowed
	Detail string  // why, for the message
	// Session marks a rule that holds for every token (SessionDenial), not
	// a grant.
	Session bool
}

func (d *Denial) Error() string {
	var b strings.Builder
	if d.Session {
		fmt.Fprintf(&b, "refused by the proxy for every token: %s", d.Kind)
	} else {
		fmt.Fprintf(&b, "permission denied by queue grants: %s", d.Kind)
	}
	if d.Queue != "" {
		fmt.Fprintf(&b, " on %q", d.Queue)
	}
	if d.Op != 0 {
		fmt.Fprintf(&b, " needs the %q grant", d.Op.String())
	}
	if d.Detail != "" {
		fmt.Fprintf(&b, " (%s)", d.Detail)
	}
	return b.String()
}

// SQLState is 42501 (insufficient_privilege), as Postgres refuses what a
// role may not do.
func (d *Denial) SQLState() string { return pgerrcode.InsufficientPrivilege }

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
// A token without grants may run anything its role may (its role's
// privileges limit it); SessionDenial holds for every token.
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
		if err := authorizePart(g, p, params, &dec); err != nil {
			return dec, err
		}
	}
	return dec, nil
}

func authorizePart(g *auth.Grants, p *Part, params Params, dec *Decision) error {
	switch p.Kind {
	case KindEmpty, KindTransaction, KindDiscard, KindDeallocate, KindClose, KindUnlisten,
		KindCreateExtension, KindAdvisoryUnlockAll, KindListeningChannels:
		return nil
	case KindSet:
		if why := limitedSetDenial(p); why != "" {
			return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Detail: why}
		}
		return nil
	case KindShow:
		if !Readable(p.Setting) {
			return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Detail: "grant-limited tokens may not read setting " + p.Setting}
		}
		return nil
	case KindConstant, KindCatalog:
		if why := limitedReadDenial(p); why != "" {
			return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Detail: why}
		}
		return nil
	case KindListen:
		queue, ok := NotifyChannelQueue(p.Channel)
		if !ok {
			return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Detail: "only a queue's insert-notification channel pgmq.q_<queue>.INSERT may be listened to"}
		}
		if !g.Allows(auth.OpRead, queue) {
			return &Denial{Kind: p.Kind, Queue: queue, Op: auth.OpRead, Reason: "missing_grant"}
		}
		return nil
	case KindPgmq:
		if why := limitedReadDenial(p); why != "" {
			return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Detail: why}
		}
		for _, c := range p.Calls {
			filter, err := authorizeCall(g, p.Kind, c, params)
			if err != nil {
				return err
			}
			dec.FilterListing = dec.FilterListing || filter
		}
		return nil
	}
	return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Detail: "grant-limited tokens may only call pgmq functions"}
}

// limitedSetDenial checks a SET or RESET of a grant-limited token.
func limitedSetDenial(p *Part) string {
	if p.Setting == "" || p.Local && p.Setting == "transaction" {
		return "" // RESET ALL (the proxy answers it) and SET TRANSACTION
	}
	if !Replayed(p.Setting) {
		return "grant-limited tokens may only change " + allowedSettingsText
	}
	if p.Reset {
		return ""
	}
	if !p.ValuesKnown {
		return "SET " + p.Setting + " with a value that is not a constant"
	}
	if p.Setting == "search_path" {
		return searchPathDenial(p.Values)
	}
	return SettingDenial(p.Setting, p.Value(), true)
}

// SessionDenial checks what holds for every token, limited or not: the
// settings that keep the router reading what the server reads, no role
// change, and DEALLOCATE only as a statement of its own (the proxy answers
// it on the client's own statements).
func SessionDenial(st *Statement) *Denial {
	for i := range st.Parts {
		p := &st.Parts[i]
		if (p.Setting == "role" || p.Setting == "session_authorization") && !p.Reset {
			return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Session: true, Detail: "SET " + strings.ToUpper(p.Setting) +
				" would change the session's role; the token decides the role"}
		}
		if p.Kind == KindSet && !p.Reset && p.ValuesKnown {
			if why := SettingDenial(p.Setting, p.Value(), false); why != "" {
				return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Session: true, Detail: why}
			}
		}
		for _, sc := range p.SetConfigs {
			if why := SettingDenial(sc[0], sc[1], false); sc[0] != "" && why != "" {
				return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Session: true, Detail: why}
			}
		}
		if p.Kind == KindDeallocate && len(st.Parts) > 1 {
			return &Denial{Kind: p.Kind, Reason: "kind_not_allowed", Session: true,
				Detail: "DEALLOCATE must be sent as a statement of its own: the proxy answers it on the client's own statements"}
		}
	}
	return nil
}

func authorizeCall(g *auth.Grants, kind Kind, c Call, params Params) (filter bool, err error) {
	switch c.Scope {
	case ScopePure:
		return false, nil
	case ScopeAllQueues:
		if !g.AllowsAll(c.Op) {
			return false, &Denial{Kind: kind, Queue: "*", Op: c.Op, Reason: "missing_grant", Detail: "pgmq." + c.Function + " acts on every queue"}
		}
		return false, nil
	case ScopeListing:
		if !g.AllowsAny(c.Op) {
			return false, &Denial{Kind: kind, Op: c.Op, Reason: "missing_grant", Detail: "pgmq." + c.Function + " needs list on some queue"}
		}
		return true, nil
	}
	name, err := resolveName(kind, c, c.Target, params)
	if err != nil {
		return false, err
	}
	if c.Scope == ScopeTopic {
		if !g.AllowsTopic(name) {
			return false, &Denial{Kind: kind, Queue: name, Op: c.Op, Reason: "missing_grant", Detail: "routing key"}
		}
		return false, nil
	}
	if !g.Allows(c.Op, name) {
		return false, &Denial{Kind: kind, Queue: name, Op: c.Op, Reason: "missing_grant"}
	}
	if c.Function == "bind_topic" {
		pattern, err := resolveName(kind, c, c.Pattern, params)
		if err != nil {
			return false, err
		}
		if !g.AllowsTopicPattern(pattern) {
			return false, &Denial{Kind: kind, Queue: pattern, Op: auth.OpRead, Reason: "missing_grant",
				Detail: "bind_topic delivers every message sent under the pattern's routing keys: it needs read on topics covering the pattern"}
		}
	}
	return false, nil
}

// resolveName is the literal or bound value of a queue, routing key or
// pattern argument. Only ASCII names are compared: Postgres folds the case
// of other characters by its collation, the grant check by Unicode rules.
func resolveName(kind Kind, c Call, a Arg, params Params) (string, error) {
	name, ok := a.Literal, !a.Null
	if a.Param > 0 {
		name, ok = params(a.Param)
	}
	if !ok {
		return "", &Denial{Kind: kind, Op: c.Op, Reason: "uncertain", Detail: "the queue name of pgmq." + c.Function + " is NULL or not bound"}
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return "", &Denial{Kind: kind, Op: c.Op, Reason: "uncertain",
				Detail: "the name given to pgmq." + c.Function + " is not ASCII; grant-limited tokens use ASCII queue names, which Postgres and the grant check fold alike"}
		}
	}
	return name, nil
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
