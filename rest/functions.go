package rest

import (
	"sort"
	"strings"
)

// argType is the Postgres type a JSON argument is cast to.
type argType uint8

const (
	typeText argType = iota
	typeInteger
	typeBigint
	typeBoolean
	typeJSONB
	typeJSONBArray
	typeBigintArray
	typeTimestamptz
	// typeSecondsOrTime is the `delay` of send* and the `vt` of set_vt: pgmq
	// overloads them as integer seconds and as timestamptz. A JSON number or a
	// string of digits means seconds, any other string a timestamp.
	typeSecondsOrTime
)

// sqlName is the type in the cast of the statement's parameter.
func (t argType) sqlName() string {
	switch t {
	case typeText:
		return "text"
	case typeInteger:
		return "integer"
	case typeBigint:
		return "bigint"
	case typeBoolean:
		return "boolean"
	case typeJSONB:
		return "jsonb"
	case typeJSONBArray:
		return "jsonb[]"
	case typeBigintArray:
		return "bigint[]"
	case typeTimestamptz:
		return "timestamp with time zone"
	}
	panic("BUG: argType without a single SQL type")
}

// resultKind is the shape of a function's result, which decides the shape of
// the HTTP response (spec: Responses).
type resultKind uint8

const (
	resultVoid      resultKind = iota // 204, no body
	resultScalar                      // 200, bare JSON value
	resultScalarSet                   // 200, array of scalars
	resultRow                         // 200, object
	resultRowSet                      // 200, array of objects, [] when empty
)

// param is one named argument of a signature.
type param struct {
	name string
	typ  argType
	// optional: the key may be left out, because the SQL function has a
	// DEFAULT for it (def holds it, for the documentation) or because
	// pgmq has an overload without it (def is "").
	optional bool
	def      string
	// pollOnly arguments (max_poll_seconds, poll_interval_ms) are consumed
	// by the REST long poll and never sent to Postgres.
	pollOnly bool
}

// signature is one accepted set of arguments of a function. pgmq overloads
// that differ only by optional arguments or by typeSecondsOrTime are one
// signature here; named notation with only the given keys picks the overload.
type signature struct {
	params []param
	result resultKind
	// rowType names the result's JSON schema for OpenAPI: a scalar type
	// ("boolean", "bigint", "integer") or a record in recordSchemas.
	rowType string
}

// function is a public pgmq function callable over REST.
type function struct {
	name    string
	summary string
	sigs    []signature
	// get: also callable with GET and query parameters (read-only listings).
	get bool
	// poll: the single-read function a long-polling function repeats.
	poll string
}

func p(name string, typ argType) param { return param{name: name, typ: typ} }
func opt(name string, typ argType, def string) param {
	return param{name: name, typ: typ, optional: true, def: def}
}
func pollArg(name, def string) param {
	return param{name: name, typ: typeInteger, optional: true, def: def, pollOnly: true}
}

func sig(result resultKind, rowType string, params ...param) signature {
	return signature{params: params, result: result, rowType: rowType}
}

var (
	queueName = p("queue_name", typeText)
	vtSeconds = p("vt", typeInteger)
	qty       = p("qty", typeInteger)
	maxPoll   = pollArg("max_poll_seconds", "5")
	pollEvery = pollArg("poll_interval_ms", "100")
)

func voidQueueFn(name, summary string) *function {
	return &function{name: name, summary: summary, sigs: []signature{sig(resultVoid, "", queueName)}}
}

func groupedRead(name, summary string) *function {
	return &function{name: name, summary: summary, sigs: []signature{sig(resultRowSet, "message_record", queueName, vtSeconds, qty)}}
}

func groupedPoll(name, base, summary string) *function {
	return &function{name: name, summary: summary, poll: base,
		sigs: []signature{sig(resultRowSet, "message_record", queueName, vtSeconds, qty, maxPoll, pollEvery)}}
}

// functionList is every function of the REST API (spec: Calls), with the
// signatures of ../shared/spec/pgmq-signatures.txt. Which grant each needs
// and which argument names its queue is the router's table; the handlers
// learn it by classifying the statement they build.
var functionList = []*function{
	voidQueueFn("create", "Create a queue (calls create_non_partitioned)."),
	voidQueueFn("create_non_partitioned", "Create a queue with a logged table; does nothing if it exists."),
	voidQueueFn("create_unlogged", "Create a queue whose table is UNLOGGED (faster, not crash-safe)."),
	{name: "create_partitioned", summary: "Create a queue partitioned by pg_partman.",
		sigs: []signature{sig(resultVoid, "", queueName,
			opt("partition_interval", typeText, "'10000'"), opt("retention_interval", typeText, "'100000'"),
			opt("premake", typeInteger, "4"))}},
	{name: "convert_archive_partitioned", summary: "Turn a queue's archive into a pg_partman partitioned table.",
		sigs: []signature{sig(resultVoid, "", p("table_name", typeText),
			opt("partition_interval", typeText, "'10000'"), opt("retention_interval", typeText, "'100000'"),
			opt("leading_partition", typeInteger, "10"))}},
	{name: "drop_queue", summary: "Drop a queue and its archive; false if it did not exist.",
		sigs: []signature{sig(resultScalar, "boolean", queueName),
			sig(resultScalar, "boolean", queueName, p("partitioned", typeBoolean))}},
	{name: "purge_queue", summary: "Delete every message of a queue; returns how many there were.",
		sigs: []signature{sig(resultScalar, "bigint", queueName)}},
	voidQueueFn("detach_archive", "Deprecated no-op (emits a warning)."),
	{name: "list_queues", summary: "List the queues.", get: true,
		sigs: []signature{sig(resultRowSet, "queue_record")}},
	{name: "send", summary: "Send one message; returns its msg_id.",
		sigs: []signature{sig(resultScalarSet, "bigint", queueName, p("msg", typeJSONB),
			opt("headers", typeJSONB, ""), opt("delay", typeSecondsOrTime, ""))}},
	{name: "send_batch", summary: "Send several messages; returns their msg_ids in order.",
		sigs: []signature{sig(resultScalarSet, "bigint", queueName, p("msgs", typeJSONBArray),
			opt("headers", typeJSONBArray, ""), opt("delay", typeSecondsOrTime, ""))}},
	{name: "read", summary: "Read up to qty visible messages, hiding them for vt seconds.",
		sigs: []signature{sig(resultRowSet, "message_record", queueName, vtSeconds, qty,
			opt("conditional", typeJSONB, "'{}'"))}},
	{name: "read_with_poll", poll: "read",
		summary: "Like read, but wait up to max_poll_seconds for messages (holding no backend connection).",
		sigs: []signature{sig(resultRowSet, "message_record", queueName, vtSeconds, qty, maxPoll, pollEvery,
			opt("conditional", typeJSONB, "'{}'"))}},
	groupedRead("read_grouped", "FIFO read: whole groups (header x-pgmq-group) in order of their first message."),
	groupedRead("read_grouped_rr", "FIFO read, round robin over the groups."),
	groupedRead("read_grouped_head", "FIFO read of at most one message (the head) per group."),
	groupedPoll("read_grouped_with_poll", "read_grouped", "Like read_grouped, but wait up to max_poll_seconds for messages."),
	groupedPoll("read_grouped_rr_with_poll", "read_grouped_rr", "Like read_grouped_rr, but wait up to max_poll_seconds for messages."),
	groupedPoll("read_grouped_head_with_poll", "read_grouped_head", "Like read_grouped_head, but wait up to max_poll_seconds for messages."),
	{name: "pop", summary: "Read and delete up to qty messages.",
		sigs: []signature{sig(resultRowSet, "message_record", queueName, opt("qty", typeInteger, "1"))}},
	{name: "archive", summary: "Move messages to the archive: msg_id gives true/false, msg_ids the ids archived.",
		sigs: []signature{sig(resultScalar, "boolean", queueName, p("msg_id", typeBigint)),
			sig(resultScalarSet, "bigint", queueName, p("msg_ids", typeBigintArray))}},
	{name: "delete", summary: "Delete messages: msg_id gives true/false, msg_ids the ids deleted.",
		sigs: []signature{sig(resultScalar, "boolean", queueName, p("msg_id", typeBigint)),
			sig(resultScalarSet, "bigint", queueName, p("msg_ids", typeBigintArray))}},
	{name: "set_vt", summary: "Set the visibility timeout of messages (vt: seconds from now, or a timestamp).",
		sigs: []signature{sig(resultRowSet, "message_record", queueName, p("msg_id", typeBigint), p("vt", typeSecondsOrTime)),
			sig(resultRowSet, "message_record", queueName, p("msg_ids", typeBigintArray), p("vt", typeSecondsOrTime))}},
	{name: "metrics", summary: "Metrics of one queue.", get: true,
		sigs: []signature{sig(resultRow, "metrics_result", queueName)}},
	{name: "metrics_all", summary: "Metrics of every queue.", get: true,
		sigs: []signature{sig(resultRowSet, "metrics_result")}},
	voidQueueFn("create_fifo_index", "Create the GIN index on headers that FIFO reads use."),
	{name: "create_fifo_indexes_all", summary: "Create the FIFO index of every queue.",
		sigs: []signature{sig(resultVoid, "")}},
	{name: "bind_topic", summary: "Bind a routing-key pattern to a queue.",
		sigs: []signature{sig(resultVoid, "", p("pattern", typeText), queueName)}},
	{name: "unbind_topic", summary: "Remove a binding; true if there was one.",
		sigs: []signature{sig(resultScalar, "boolean", p("pattern", typeText), queueName)}},
	{name: "send_topic", summary: "Send a message to every queue bound to a matching pattern; returns how many queues got it.",
		sigs: []signature{sig(resultScalar, "integer", p("routing_key", typeText), p("msg", typeJSONB), opt("delay", typeInteger, "")),
			sig(resultScalar, "integer", p("routing_key", typeText), p("msg", typeJSONB), p("headers", typeJSONB), p("delay", typeInteger))}},
	{name: "send_batch_topic", summary: "Send a batch to every queue bound to a matching pattern; one row per message sent.",
		sigs: []signature{sig(resultRowSet, "topic_send", p("routing_key", typeText), p("msgs", typeJSONBArray),
			opt("headers", typeJSONBArray, ""), opt("delay", typeSecondsOrTime, ""))}},
	{name: "test_routing", summary: "The bindings a routing key matches.",
		sigs: []signature{sig(resultRowSet, "routing_match", p("routing_key", typeText))}},
	{name: "list_topic_bindings", summary: "List topic bindings, of every queue or of one.",
		sigs: []signature{sig(resultRowSet, "topic_binding"), sig(resultRowSet, "topic_binding", queueName)}},
	{name: "enable_notify_insert", summary: "Send NOTIFY pgmq.q_<queue>.INSERT on inserts, at most once per throttle interval.",
		sigs: []signature{sig(resultVoid, "", queueName, opt("throttle_interval_ms", typeInteger, "250"))}},
	voidQueueFn("disable_notify_insert", "Stop insert notifications of a queue."),
	{name: "update_notify_insert", summary: "Change the throttle interval of insert notifications.",
		sigs: []signature{sig(resultVoid, "", queueName, p("throttle_interval_ms", typeInteger))}},
	{name: "list_notify_insert_throttles", summary: "List the queues with insert notifications and their throttles.",
		sigs: []signature{sig(resultRowSet, "notify_throttle")}},
}

// functions indexes functionList by name.
var functions = func() map[string]*function {
	m := make(map[string]*function, len(functionList))
	for _, f := range functionList {
		if m[f.name] != nil {
			panic("BUG: function " + f.name + " listed twice")
		}
		m[f.name] = f
	}
	return m
}()

// has reports whether the signature accepts exactly the given keys: every
// key is a parameter and every required parameter is given.
func (s *signature) accepts(keys map[string]bool) bool {
	n := 0
	for _, prm := range s.params {
		if keys[prm.name] {
			n++
		} else if !prm.optional {
			return false
		}
	}
	return n == len(keys)
}

// resolve picks the signature for the given argument names, or nil.
func (f *function) resolve(keys map[string]bool) *signature {
	for i := range f.sigs {
		if f.sigs[i].accepts(keys) {
			return &f.sigs[i]
		}
	}
	return nil
}

// describe renders the accepted argument sets for a hint, e.g.
// "(queue_name, msg[, headers][, delay])".
func (f *function) describe() string {
	var out []string
	for _, s := range f.sigs {
		var b strings.Builder
		b.WriteByte('(')
		first := true
		for _, prm := range s.params {
			switch {
			case prm.optional && first:
				b.WriteString("[" + prm.name + "]")
			case prm.optional:
				b.WriteString("[, " + prm.name + "]")
			case first:
				b.WriteString(prm.name)
			default:
				b.WriteString(", " + prm.name)
			}
			first = false
		}
		b.WriteByte(')')
		out = append(out, b.String())
	}
	return strings.Join(out, " or ")
}

// sortedKeys returns the keys in order, for messages.
func sortedKeys(keys map[string]bool) []string {
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
