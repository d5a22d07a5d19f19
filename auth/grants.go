package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Op is a queue operation a grant may allow (spec: Queue grants). Ops are bits
// so a grant entry holds a set of them.
type Op uint16

const (
	OpSend    Op = 1 << iota // send, send_batch
	OpRead                   // read, read_with_poll, read_grouped*, set_vt; LISTEN on the queue's channel
	OpDelete                 // delete
	OpArchive                // archive
	OpPop                    // pop (also allowed by read plus delete)
	OpCreate                 // create*, convert_archive_partitioned, fifo index, notify_insert, bind/unbind_topic
	OpDrop                   // drop_queue, purge_queue, detach_archive
	OpList                   // list_queues, metrics*, list_topic_bindings, ...: shows only listable queues
	OpPublish                // send_topic, send_batch_topic: matched against routing keys

	// OpAll is the op "*": every op above.
	OpAll = OpSend | OpRead | OpDelete | OpArchive | OpPop | OpCreate | OpDrop | OpList | OpPublish
)

var opNames = []struct {
	op   Op
	name string
}{
	{OpSend, "send"}, {OpRead, "read"}, {OpDelete, "delete"}, {OpArchive, "archive"}, {OpPop, "pop"},
	{OpCreate, "create"}, {OpDrop, "drop"}, {OpList, "list"}, {OpPublish, "publish"},
}

// ParseOp parses an op name as tokens spell it ("send", ..., "publish", or
// "*" for all). Names are lower case; anything else is not an op.
func ParseOp(s string) (Op, bool) {
	if s == "*" {
		return OpAll, true
	}
	for _, o := range opNames {
		if o.name == s {
			return o.op, true
		}
	}
	return 0, false
}

// String names the op, "*" for OpAll, and joins several with "+".
func (o Op) String() string {
	if o == OpAll {
		return "*"
	}
	var names []string
	for _, n := range opNames {
		if o&n.op != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf("Op(%d)", uint16(o))
	}
	return strings.Join(names, "+")
}

// Limits on a grant claim, so that a huge claim is refused quickly.
const (
	MaxGrantEntries  = 1000     // entries in mq.grants + mq.deny + mq.* scope items
	MaxGrantPatterns = 1000     // queue and topic patterns in all entries
	MaxPatternLen    = 255      // bytes in one pattern
	maxOpsPerEntry   = 32       // names in one entry's ops list
	maxGrantJSON     = 64 << 10 // bytes of the mq claim
	maxScopeItems    = 4 * 1024 // space-separated items in scope, mq.* or not
)

// GrantEntry is one element of mq.grants or mq.deny: the ops allowed (or
// denied) on the queues, and for publish on the routing keys, matching the
// globs. Topics globs apply to publish only.
type GrantEntry struct {
	Queues []string `json:"queues,omitempty"`
	Topics []string `json:"topics,omitempty"`
	Ops    []string `json:"ops"`
}

type grantClaim struct {
	Grants []GrantEntry `json:"grants,omitempty"`
	Deny   []GrantEntry `json:"deny,omitempty"`
}

type rule struct {
	g   glob
	ops Op
}

// ruleSet answers "does a rule carrying op match name": exact names in a
// map, patterns with stars in a slice.
type ruleSet struct {
	exact map[string]Op
	globs []rule
	all   Op // ops held on the pattern "*" exactly
	any   Op // ops held by some rule
}

func (rs *ruleSet) add(pat string, ops Op) {
	rs.any |= ops
	g := compileGlob(pat)
	if g.parts == nil {
		if rs.exact == nil {
			rs.exact = map[string]Op{}
		}
		rs.exact[pat] |= ops
		return
	}
	if g.everything() {
		rs.all |= ops
	}
	rs.globs = append(rs.globs, rule{g: g, ops: ops})
}

// match reports whether some rule holding any of ops matches name.
func (rs *ruleSet) match(name string, ops Op) bool {
	if rs.any&ops == 0 {
		return false
	}
	if rs.exact[name]&ops != 0 {
		return true
	}
	for i := range rs.globs {
		if rs.globs[i].ops&ops != 0 && rs.globs[i].g.match(name) {
			return true
		}
	}
	return false
}

// Grants is the queue-grant claim of a token: default deny, a deny beats any
// allow. Queue names are compared lower-cased (pgmq folds them). For publish,
// names are routing keys, which pgmq compares case-sensitively: allow globs
// match them as written, deny globs case-insensitively (so a deny cannot be
// dodged by changing case).
//
// A nil *Grants means the token carries no grant claim: it is limited only by
// its role's Postgres privileges, and every method allows everything. A
// Grants is immutable and safe for concurrent use.
type Grants struct {
	allow, deny           ruleSet // queue globs, lower-cased
	topicAllow, topicDeny ruleSet // routing-key globs; allow as written, deny lower-cased
}

// Limited reports whether the token carries a grant claim at all.
func (g *Grants) Limited() bool { return g != nil }

// Allows reports whether op is allowed on queue (for OpPublish: on the
// routing key). op may hold several ops; all must be allowed. Pop is allowed
// by a pop grant or by read plus delete, and refused by a deny of any of
// pop, read or delete.
func (g *Grants) Allows(op Op, name string) bool {
	if g == nil {
		return true
	}
	if op == 0 || op&^OpAll != 0 {
		return false
	}
	for op != 0 {
		one := Op(1) << bits.TrailingZeros16(uint16(op))
		op &^= one
		if !g.allowsOne(one, name) {
			return false
		}
	}
	return true
}

func (g *Grants) allowsOne(op Op, name string) bool {
	if op == OpPublish {
		return g.AllowsTopic(name)
	}
	q := strings.ToLower(name)
	if op == OpPop {
		if g.deny.match(q, OpPop|OpRead|OpDelete) {
			return false
		}
		return g.allow.match(q, OpPop) || (g.allow.match(q, OpRead) && g.allow.match(q, OpDelete))
	}
	return !g.deny.match(q, op) && g.allow.match(q, op)
}

// AllowsTopicPattern reports whether the token may read every routing key
// a pgmq topic pattern matches (bind_topic): some read topic glob covers the
// pattern, and no read deny glob can match any key of it. In a pattern '*'
// stands for one word and '#' for any words; as globs both are a star, and
// a glob covers the pattern when it matches the pattern's text with the
// pattern's wildcards taken as literal characters (only a glob star can
// match them, and a star can match whatever they stand for).
func (g *Grants) AllowsTopicPattern(pattern string) bool {
	if g == nil {
		return true
	}
	glob := strings.ReplaceAll(pattern, "#", "*")
	low := strings.ToLower(glob)
	for i := range g.topicDeny.globs {
		if g.topicDeny.globs[i].ops&OpRead != 0 && globsOverlap(g.topicDeny.globs[i].g.pat, low) {
			return false
		}
	}
	for name, ops := range g.topicDeny.exact {
		if ops&OpRead != 0 && globsOverlap(name, low) {
			return false
		}
	}
	return g.topicAllow.match(glob, OpRead)
}

// globsOverlap reports whether some string matches both star globs.
func globsOverlap(a, b string) bool {
	memo := map[[2]int]bool{}
	var f func(i, j int) bool
	f = func(i, j int) bool {
		if i == len(a) && j == len(b) {
			return true
		}
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		r := false
		switch {
		case i < len(a) && a[i] == '*':
			r = f(i+1, j) || j < len(b) && f(i, j+1)
		case j < len(b) && b[j] == '*':
			r = f(i, j+1) || i < len(a) && f(i+1, j)
		case i < len(a) && j < len(b) && a[i] == b[j]:
			r = f(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return f(0, 0)
}

// AllowsTopic reports whether publish (send_topic) is allowed with routingKey.
func (g *Grants) AllowsTopic(routingKey string) bool {
	if g == nil {
		return true
	}
	return !g.topicDeny.match(strings.ToLower(routingKey), OpPublish) && g.topicAllow.match(routingKey, OpPublish)
}

// CanList reports whether queue may appear in the results of list_queues,
// metrics_all and the other list functions.
func (g *Grants) CanList(queue string) bool { return g.Allows(OpList, queue) }

// AllowsAll reports whether op is allowed on every queue (or routing key) at
// once, as functions acting on all queues need (create_fifo_indexes_all): an
// allow of op on the pattern "*" exactly and no deny of op anywhere. For pop,
// as Allows: pop on "*", or read and delete on "*", and no deny of pop, read
// or delete.
func (g *Grants) AllowsAll(op Op) bool {
	if g == nil {
		return true
	}
	if op == 0 || op&^OpAll != 0 {
		return false
	}
	for op != 0 {
		one := Op(1) << bits.TrailingZeros16(uint16(op))
		op &^= one
		var ok bool
		switch one {
		case OpPublish:
			ok = g.topicAllow.all&OpPublish != 0 && g.topicDeny.any&OpPublish == 0
		case OpPop:
			ok = g.deny.any&(OpPop|OpRead|OpDelete) == 0 &&
				(g.allow.all&OpPop != 0 || g.allow.all&(OpRead|OpDelete) == OpRead|OpDelete)
		default:
			ok = g.allow.all&one != 0 && g.deny.any&one == 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// AllowsAny reports whether some grant allows op on some queue (or routing
// key), ignoring denies: a cheap test before a call whose queue is filtered
// later (list_queues with CanList).
func (g *Grants) AllowsAny(op Op) bool {
	if g == nil {
		return true
	}
	if op == OpPublish {
		return g.topicAllow.any&OpPublish != 0
	}
	if op == OpPop {
		return g.allow.any&OpPop != 0 || g.allow.any&(OpRead|OpDelete) == OpRead|OpDelete
	}
	return g.allow.any&op != 0
}

// grantsError is a bad_grants refusal.
func grantsError(format string, args ...any) *Error {
	return &Error{Reason: ReasonBadGrants, Detail: fmt.Sprintf(format, args...)}
}

// ParseGrants builds the grants of a token from its mq claim (raw JSON, nil
// or "null" when absent) and its scope items (the scope claim split at
// spaces; items not starting with "mq." are not ours and are skipped). It
// returns nil, nil when the token carries no grant at all. Errors are
// *Error with ReasonBadGrants: an unknown op, an unknown member in the mq
// claim, an entry without queues or ops, a bad pattern, or more than the
// limits above.
func ParseGrants(mq json.RawMessage, scope []string) (*Grants, error) {
	mq = bytes.TrimSpace(mq)
	hasMQ := len(mq) > 0 && !bytes.Equal(mq, []byte("null"))
	if len(scope) > maxScopeItems {
		return nil, grantsError("scope has more than %d items", maxScopeItems)
	}
	var scoped []string
	for _, item := range scope {
		if strings.HasPrefix(item, "mq.") {
			scoped = append(scoped, item)
		}
	}
	if !hasMQ && len(scoped) == 0 {
		return nil, nil
	}
	var claim grantClaim
	if hasMQ {
		if len(mq) > maxGrantJSON {
			return nil, grantsError("mq claim is longer than %d bytes", maxGrantJSON)
		}
		dec := json.NewDecoder(bytes.NewReader(mq))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&claim); err != nil {
			return nil, grantsError("mq claim: %s", jsonProblem(err))
		}
		if dec.More() {
			return nil, grantsError("mq claim: trailing data")
		}
	}
	entries := len(claim.Grants) + len(claim.Deny) + len(scoped)
	if entries > MaxGrantEntries {
		return nil, grantsError("%d grant entries, at most %d", entries, MaxGrantEntries)
	}
	patterns := 0
	for _, list := range [][]GrantEntry{claim.Grants, claim.Deny} {
		for _, e := range list {
			patterns += len(e.Queues) + len(e.Topics)
		}
	}
	if patterns+len(scoped) > MaxGrantPatterns {
		return nil, grantsError("%d grant patterns, at most %d", patterns+len(scoped), MaxGrantPatterns)
	}

	g := &Grants{}
	for i, e := range claim.Grants {
		if err := g.addEntry(e, false); err != nil {
			return nil, grantsError("mq.grants[%d]: %s", i, err)
		}
	}
	for i, e := range claim.Deny {
		if err := g.addEntry(e, true); err != nil {
			return nil, grantsError("mq.deny[%d]: %s", i, err)
		}
	}
	for _, item := range scoped {
		e, err := ParseGrantSpec(item)
		if err != nil {
			return nil, grantsError("scope: %s", err)
		}
		if err := g.addEntry(e, false); err != nil {
			return nil, grantsError("scope: %s", err)
		}
	}
	return g, nil
}

func (g *Grants) addEntry(e GrantEntry, deny bool) error {
	if len(e.Ops) == 0 {
		return fmt.Errorf("no ops")
	}
	if len(e.Ops) > maxOpsPerEntry {
		return fmt.Errorf("more than %d ops", maxOpsPerEntry)
	}
	if len(e.Queues) == 0 && len(e.Topics) == 0 {
		return fmt.Errorf("no queues or topics")
	}
	var ops Op
	for _, name := range e.Ops {
		op, ok := ParseOp(name)
		if !ok {
			return fmt.Errorf("unknown op %q", clip(name))
		}
		ops |= op
	}
	if len(e.Topics) > 0 && ops&(OpPublish|OpRead) == 0 {
		return fmt.Errorf("topics apply to the publish and read ops only")
	}
	for _, p := range e.Queues {
		if err := checkPattern(p); err != nil {
			return err
		}
		if deny {
			g.deny.add(strings.ToLower(p), ops)
		} else {
			g.allow.add(strings.ToLower(p), ops)
		}
	}
	// Globs of an entry that holds publish are routing-key globs too.
	// Read on topics (bind_topic's pattern) comes from topic globs, or from
	// queue globs of an entry that holds publish and read.
	topicOps := ops & (OpPublish | OpRead)
	var topics []string
	if ops&OpPublish != 0 {
		topics = append(topics, e.Queues...)
	} else if len(e.Queues) > 0 {
		topicOps &^= OpRead
	}
	for _, p := range e.Topics {
		if err := checkPattern(p); err != nil {
			return err
		}
		topics = append(topics, p)
	}
	for _, p := range topics {
		if deny {
			g.topicDeny.add(strings.ToLower(p), topicOps)
		} else {
			g.topicAllow.add(p, topicOps)
		}
	}
	return nil
}

// checkPattern accepts 1-255 bytes of printable UTF-8 without white space.
func checkPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern")
	}
	if len(p) > MaxPatternLen {
		return fmt.Errorf("pattern longer than %d bytes", MaxPatternLen)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("pattern is not UTF-8")
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("pattern %q holds a space or control character", clip(p))
		}
	}
	return nil
}

// ParseGrantSpec parses "OP:GLOB" (optionally "mq.OP:GLOB", the scope form)
// into one grant entry: a publish glob is a topic (routing-key) glob, any
// other a queue glob.
func ParseGrantSpec(spec string) (GrantEntry, error) {
	s := strings.TrimPrefix(spec, "mq.")
	name, pat, ok := strings.Cut(s, ":")
	if !ok {
		return GrantEntry{}, fmt.Errorf("%q: want OP:GLOB, e.g. send:orders_*", clip(spec))
	}
	op, ok := ParseOp(name)
	if !ok {
		return GrantEntry{}, fmt.Errorf("unknown op %q (use send, read, delete, archive, pop, create, drop, list, publish or *)", clip(name))
	}
	if err := checkPattern(pat); err != nil {
		return GrantEntry{}, err
	}
	if op == OpPublish {
		return GrantEntry{Topics: []string{pat}, Ops: []string{name}}, nil
	}
	if key, ok := strings.CutPrefix(pat, "topic:"); ok && op == OpRead {
		if err := checkPattern(key); err != nil {
			return GrantEntry{}, err
		}
		return GrantEntry{Topics: []string{key}, Ops: []string{name}}, nil
	}
	return GrantEntry{Queues: []string{pat}, Ops: []string{name}}, nil
}

// clip shortens claim text quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// jsonProblem describes a JSON decoding error without echoing input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te) && te.Field == "":
		return fmt.Sprintf("wrong type (%s)", te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("%s has the wrong type (%s)", clip(te.Field), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown member " + clip(strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return "invalid JSON"
}
