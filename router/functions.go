package router

import "mqstack/auth"

// Scope says what a pgmq function's grant is checked against.
type Scope uint8

const (
	// ScopeQueue: one queue, named by an argument.
	ScopeQueue Scope = iota
	// ScopeTopic: a routing key, named by an argument (publish grants).
	ScopeTopic
	// ScopeAllQueues: every queue at once; needs the op on "*".
	ScopeAllQueues
	// ScopeListing: a listing whose rows are filtered to listable queues.
	ScopeListing
	// ScopePure: a helper that touches no queue (validation, formatting).
	ScopePure
)

// fnSpec describes one public pgmq function for the router.
type fnSpec struct {
	op    auth.Op
	scope Scope
	arg   string // name of the argument holding the queue or routing key
	pos   int    // its position (0-based)
	msg   string // name of the message argument of the send functions (position 1)
	// pattern names bind_topic's topic pattern argument (position 0): its
	// topics must be readable.
	pattern string
}

func queueFn(op auth.Op) fnSpec { return fnSpec{op: op, scope: ScopeQueue, arg: "queue_name"} }

// pgmqFunctions are the functions of pgmq 1.13.1 a client may call, by name.
// Internal helpers (names starting with "_", the trigger function,
// acquire_queue_lock) are absent on purpose: calling them is refused.
var pgmqFunctions = map[string]fnSpec{
	"send":                         {op: auth.OpSend, scope: ScopeQueue, arg: "queue_name", msg: "msg"},
	"send_batch":                   {op: auth.OpSend, scope: ScopeQueue, arg: "queue_name", msg: "msgs"},
	"read":                         queueFn(auth.OpRead),
	"read_with_poll":               queueFn(auth.OpRead),
	"read_grouped":                 queueFn(auth.OpRead),
	"read_grouped_rr":              queueFn(auth.OpRead),
	"read_grouped_head":            queueFn(auth.OpRead),
	"read_grouped_with_poll":       queueFn(auth.OpRead),
	"read_grouped_rr_with_poll":    queueFn(auth.OpRead),
	"read_grouped_head_with_poll":  queueFn(auth.OpRead),
	"set_vt":                       queueFn(auth.OpRead),
	"delete":                       queueFn(auth.OpDelete),
	"archive":                      queueFn(auth.OpArchive),
	"pop":                          queueFn(auth.OpPop),
	"create":                       queueFn(auth.OpCreate),
	"create_non_partitioned":       queueFn(auth.OpCreate),
	"create_unlogged":              queueFn(auth.OpCreate),
	"create_partitioned":           queueFn(auth.OpCreate),
	"create_fifo_index":            queueFn(auth.OpCreate),
	"enable_notify_insert":         queueFn(auth.OpCreate),
	"disable_notify_insert":        queueFn(auth.OpCreate),
	"update_notify_insert":         queueFn(auth.OpCreate),
	"convert_archive_partitioned":  {op: auth.OpCreate, scope: ScopeQueue, arg: "table_name"},
	"bind_topic":                   {op: auth.OpCreate, scope: ScopeQueue, arg: "queue_name", pos: 1, pattern: "pattern"},
	"unbind_topic":                 {op: auth.OpCreate, scope: ScopeQueue, arg: "queue_name", pos: 1},
	"drop_queue":                   queueFn(auth.OpDrop),
	"purge_queue":                  queueFn(auth.OpDrop),
	"detach_archive":               queueFn(auth.OpDrop),
	"metrics":                      queueFn(auth.OpList),
	"list_queues":                  {op: auth.OpList, scope: ScopeListing},
	"metrics_all":                  {op: auth.OpList, scope: ScopeListing},
	"list_notify_insert_throttles": {op: auth.OpList, scope: ScopeListing},
	"test_routing":                 {op: auth.OpList, scope: ScopeListing},
	"create_fifo_indexes_all":      {op: auth.OpCreate, scope: ScopeAllQueues},
	"send_topic":                   {op: auth.OpPublish, scope: ScopeTopic, arg: "routing_key", msg: "msg"},
	"send_batch_topic":             {op: auth.OpPublish, scope: ScopeTopic, arg: "routing_key", msg: "msgs"},
	"validate_queue_name":          {scope: ScopePure},
	"validate_routing_key":         {scope: ScopePure},
	"validate_topic_pattern":       {scope: ScopePure},
	"format_table_name":            {scope: ScopePure},
	// list_topic_bindings() lists all bindings; list_topic_bindings(queue_name)
	// one queue's: classify handles the two arities.
	"list_topic_bindings": {op: auth.OpList, scope: ScopeListing},
}

// vouchedFunctions are built-in functions without side effects that
// drivers, consoles and constant SELECTs use: those grant-limited tokens may
// call (limitedFunctions), and more. A function not listed here (and not a
// pgmq function) makes a statement uncertain for grant-limited tokens, and
// makes the proxy reset the backend after any token ran it: it could wrap
// pgmq, run SQL of its own (query_to_xml, dblink) or change the session
// (set_config).
var vouchedFunctions = union(limitedFunctions, setOf(
	"inet_server_addr", "inet_server_port", "jsonb_object_agg", "json_object_agg", "jsonb_pretty",
	"array_agg", "generate_series", "generate_subscripts", "sum", "min", "max", "avg", "bool_and",
	"bool_or", "md5", "sha256", "format", "regexp_replace", "regexp_match", "string_agg", "lpad",
	"rpad", "repeat", "encode", "decode",
	// catalog helpers drivers and psql call
	"format_type", "pg_get_expr", "pg_get_indexdef", "pg_get_constraintdef", "pg_get_userbyid",
	"pg_get_function_arguments", "pg_get_function_result", "pg_get_function_identity_arguments",
	"pg_get_viewdef", "pg_get_triggerdef", "pg_get_serial_sequence", "pg_table_is_visible",
	"pg_type_is_visible", "pg_function_is_visible", "pg_opclass_is_visible", "pg_collation_is_visible",
	"obj_description", "col_description", "shobj_description", "has_table_privilege",
	"has_schema_privilege", "has_function_privilege", "has_database_privilege",
	"has_sequence_privilege", "has_column_privilege", "pg_has_role", "pg_relation_size",
	"pg_total_relation_size", "pg_size_pretty", "pg_table_size", "pg_indexes_size",
	"array_in", "textin", "regclass", "regtype", "regproc", "oidvectortypes", "pg_get_keywords",
	"pg_get_partkeydef", "pg_get_statisticsobjdef_columns", "pg_tablespace_location",
	"pg_get_ruledef", "pg_column_size", "pg_char_to_encoding", "pg_get_function_sqlbody",
))

func union(a, b map[string]bool) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
