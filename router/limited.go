package router

// What a grant-limited token may read besides its queues (auth.md,
// "Limited tokens: an allowlist"): no more than REST would tell it.

// limitedCatalogs are the catalogs drivers read for type and column
// introspection. pg_class and pg_settings are not among them: the proxy
// does not filter their rows, and pg_class would list every queue with its
// size (so would the pg_stat* and pg_statio* views, pg_stats holds other
// queues' messages, pg_prepared_statements and pg_stat_activity other
// clients' statements).
var limitedCatalogs = setOf("pg_type", "pg_namespace", "pg_attribute", "pg_range", "pg_enum", "pg_proc",
	"pg_database")

// limitedFunctions are the built-in functions a grant-limited token may
// call: the vouched ones without those that look objects up by name or
// OID (sizes, privileges, definitions), which tell whether another queue
// exists and how big it is, and without those that make one row into
// gigabytes or a million rows (repeat, lpad, generate_series, aggregates):
// REST runs no constant SELECT at all, so drivers' needs (and REST's own
// json_agg around a call) are the measure.
var limitedFunctions = setOf(
	"version", "current_setting", "current_user", "session_user", "current_role", "user",
	"current_database", "current_catalog", "current_schema", "current_schemas", "pg_backend_pid",
	"pg_postmaster_start_time", "pg_is_in_recovery", "pg_encoding_to_char", "pg_char_to_encoding",
	"pg_client_encoding", "txid_current", "pg_current_xact_id", "pg_typeof", "pg_jit_available",
	"pg_listening_channels", "format_type", "pg_advisory_unlock_all",
	"now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
	"date_part", "date_trunc", "extract", "age", "make_interval", "to_timestamp", "to_char", "to_date",
	"jsonb_build_object", "jsonb_build_array", "json_build_object", "json_build_array", "to_jsonb",
	"to_json", "json_agg", "jsonb_agg", "row_to_json", "array_to_json", "jsonb_array_elements", "jsonb_array_elements_text",
	"json_array_elements", "jsonb_array_length", "jsonb_typeof", "jsonb_set", "jsonb_strip_nulls",
	"array_length", "array_upper", "array_lower", "array_position", "array_remove",
	"array_append", "array_prepend", "array_cat", "cardinality", "unnest", "string_to_array", "array_to_string",
	"count", "abs", "round", "floor", "ceil", "ceiling", "mod", "random", "gen_random_uuid",
	"lower", "upper", "length", "char_length", "octet_length", "concat", "concat_ws",
	"substring", "substr", "replace", "split_part", "btrim", "ltrim", "rtrim", "trim", "position",
	"strpos", "left", "right", "quote_ident", "quote_literal", "quote_nullable", "starts_with",
)

// limitedReadDenial says why a grant-limited token may not run a part that
// reads catalogs, functions or settings, or "" when it may.
func limitedReadDenial(p *Part) string {
	for _, rel := range p.Relations {
		if !limitedCatalogs[rel] {
			return "grant-limited tokens may not read " + rel + "; they may read pg_type, pg_namespace, pg_attribute, pg_range, pg_enum, pg_proc and pg_database"
		}
	}
	for _, fn := range p.Funcs {
		if !limitedFunctions[fn] {
			return "grant-limited tokens may not call " + fn
		}
	}
	if p.RegCast {
		return "grant-limited tokens may not cast to the reg* types, which look objects up by name"
	}
	for _, name := range p.SettingReads {
		if name == "" {
			return "current_setting needs a literal setting name"
		}
		if !Readable(name) {
			return "grant-limited tokens may not read setting " + name
		}
	}
	return ""
}
