package router

// Op is a queue operation a grant names (auth.md, "Queue grants").
type Op string

// The operations of the grant model.
const (
	OpSend    Op = "send"
	OpRead    Op = "read"
	OpDelete  Op = "delete"
	OpArchive Op = "archive"
	OpPop     Op = "pop"
	OpCreate  Op = "create"
	OpDrop    Op = "drop"
	OpList    Op = "list"
	OpPublish Op = "publish"
)

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
	op    Op
	scope Scope
	arg   string // name of the argument holding the queue or routing key
	pos   int    // its position (0-based)
	msg   string // name of the message argument of the send functions (position 1)
	// pattern names bind_topic's topic pattern argument (position 0): its
	// topics must be readable.
	pattern string
}

func queueFn(op Op) fnSpec { return fnSpec{op: op, scope: ScopeQueue, arg: "queue_name"} }

// pgmqFunctions are the functions of pgmq 1.13.1 a client may call, by name.
// Internal helpers (names starting with "_", the trigger function,
// acquire_queue_lock) are absent on purpose: calling them is refused.
var pgmqFunctions = map[string]fnSpec{
	"send":                         {op: OpSend, scope: ScopeQueue, arg: "queue_name", msg: "msg"},
	"send_batch":                   {op: OpSend, scope: ScopeQueue, arg: "queue_name", msg: "msgs"},
	"read":                         queueFn(OpRead),
	"read_with_poll":               queueFn(OpRead),
	"read_grouped":                 queueFn(OpRead),
	"read_grouped_rr":              queueFn(OpRead),
	"read_grouped_head":            queueFn(OpRead),
	"read_grouped_with_poll":       queueFn(OpRead),
	"read_grouped_rr_with_poll":    queueFn(OpRead),
	"read_grouped_head_with_poll":  queueFn(OpRead),
	"set_vt":                       queueFn(OpRead),
	"delete":                       queueFn(OpDelete),
	"archive":                      queueFn(OpArchive),
	"pop":                          queueFn(OpPop),
	"create":                       queueFn(OpCreate),
	"create_non_partitioned":       queueFn(OpCreate),
	"create_unlogged":              queueFn(OpCreate),
	"create_partitioned":           queueFn(OpCreate),
	"create_fifo_index":            queueFn(OpCreate),
	"enable_notify_insert":         queueFn(OpCreate),
	"disable_notify_insert":        queueFn(OpCreate),
	"update_notify_insert":         queueFn(OpCreate),
	"convert_archive_partitioned":  {op: OpCreate, scope: ScopeQueue, arg: "table_name"},
	"bind_topic":                   {op: OpCreate, scope: ScopeQueue, arg: "queue_name", pos: 1, pattern: "pattern"},
	"unbind_topic":                 {op: OpCreate, scope: ScopeQueue, arg: "queue_name", pos: 1},
	"drop_queue":                   queueFn(OpDrop),
	"purge_queue":                  queueFn(OpDrop),
	"detach_archive":               queueFn(OpDrop),
	"metrics":                      queueFn(OpList),
	"list_queues":                  {op: OpList, scope: ScopeListing},
	"metrics_all":                  {op: OpList, scope: ScopeListing},
	"list_notify_insert_throttles": {op: OpList, scope: ScopeListing},
	"test_routing":                 {op: OpList, scope: ScopeListing},
	"create_fifo_indexes_all":      {op: OpCreate, scope: ScopeAllQueues},
	"send_topic":                   {op: OpPublish, scope: ScopeTopic, arg: "routing_key", msg: "msg"},
	"send_batch_topic":             {op: OpPublish, scope: ScopeTopic, arg: "routing_key", msg: "msgs"},
	"validate_queue_name":          {scope: ScopePure},
	"validate_routing_key":         {scope: ScopePure},
	"validate_topic_pattern":       {scope: ScopePure},
	"format_table_name":            {scope: ScopePure},
	// list_topic_bindings() lists all bindings; list_topic_bindings(queue_name)
	// one queue's: classify handles the two arities.
	"list_topic_bindings": {op: OpList, scope: ScopeListing},
}

// vouchedFunctions are built-in functions without side effects that
// drivers, consoles and constant SELECTs use. A function not listed here
// (and not a pgmq function) makes a statement uncertain for grant-limited
// tokens, and makes the proxy reset the backend after any token ran it: it
// could wrap pgmq, run SQL of its own (query_to_xml, dblink) or change the
// session (set_config). Grant-limited tokens may call only the smaller
// limitedFunctions.
var vouchedFunctions = setOf(
	// session and server facts
	"version", "current_setting", "current_user", "session_user", "current_role", "user",
	"current_database", "current_catalog", "current_schema", "current_schemas", "pg_backend_pid",
	"pg_postmaster_start_time", "pg_is_in_recovery", "inet_server_addr", "inet_server_port",
	"pg_encoding_to_char", "pg_char_to_encoding", "pg_client_encoding", "txid_current", "pg_current_xact_id",
	"pg_typeof", "pg_jit_available", "pg_listening_channels",
	// time
	"now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
	"date_part", "date_trunc", "extract", "age", "make_interval", "to_timestamp", "to_char", "to_date",
	// json and arrays
	"jsonb_build_object", "jsonb_build_array", "json_build_object", "json_build_array", "to_jsonb",
	"to_json", "jsonb_agg", "json_agg", "jsonb_object_agg", "json_object_agg", "row_to_json",
	"array_to_json", "jsonb_array_elements", "jsonb_array_elements_text", "json_array_elements",
	"jsonb_array_length", "jsonb_typeof", "jsonb_pretty", "jsonb_set", "jsonb_strip_nulls",
	"array_agg", "array_length", "array_upper", "array_lower", "array_position", "array_remove",
	"array_append", "array_prepend", "array_cat", "cardinality", "unnest", "generate_series",
	"generate_subscripts", "string_to_array", "array_to_string",
	// aggregates and arithmetic
	"count", "sum", "min", "max", "avg", "bool_and", "bool_or", "abs", "round", "floor", "ceil",
	"ceiling", "mod", "random", "gen_random_uuid", "md5", "sha256",
	// text
	"lower", "upper", "length", "char_length", "octet_length", "concat", "concat_ws", "format",
	"substring", "substr", "replace", "split_part", "regexp_replace", "regexp_match", "btrim",
	"ltrim", "rtrim", "trim", "position", "strpos", "left", "right", "string_agg", "quote_ident",
	"quote_literal", "quote_nullable", "starts_with", "lpad", "rpad", "repeat", "encode", "decode",
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
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
