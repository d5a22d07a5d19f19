package router

import (
	"strings"
	"unicode"
)

// The session settings of ../shared/spec/auth.md: the one list the proxy
// replays onto every backend a client checks out (so setting them never
// pins), and the only settings a grant-limited token may SET, RESET, SHOW
// or pass at startup.
var replayedSettings = setOf("application_name", "client_encoding", "datestyle", "intervalstyle",
	"timezone", "extra_float_digits", "statement_timeout", "lock_timeout",
	"idle_in_transaction_session_timeout", "search_path", "standard_conforming_strings", "bytea_output")

// Replayed reports whether the proxy replays setting name (any case) on
// checkout.
func Replayed(name string) bool { return replayedSettings[strings.ToLower(name)] }

// ReplayedSettings lists the replayed settings, lower-cased.
func ReplayedSettings() []string {
	out := make([]string, 0, len(replayedSettings))
	for n := range replayedSettings {
		out = append(out, n)
	}
	return out
}

// readableSettings may be read (SHOW, current_setting) by grant-limited
// tokens besides the replayed ones: facts every client is told at login or
// that describe its own transaction.
var readableSettings = setOf("server_version", "server_version_num", "server_encoding", "integer_datetimes",
	"transaction_isolation", "transaction_read_only", "default_transaction_isolation",
	"default_transaction_read_only", "max_identifier_length", "is_superuser", "in_hot_standby",
	"session_authorization", "transaction isolation level")

// unsafeEncodings are client encodings in which the second byte of a
// multibyte character may be an ASCII byte (a quote or a backslash): the
// router, which reads UTF-8, would see other statements than the server.
// Keys are Postgres' cleaned spelling (lower case, letters and digits only),
// aliases included.
var unsafeEncodings = setOf("sjis", "shiftjis", "mskanji", "win932", "windows932", "shiftjis2004",
	"big5", "win950", "windows950", "gbk", "win936", "windows936", "cp936", "uhc", "win949",
	"windows949", "gb18030", "johab")

// cleanEncoding spells an encoding name as Postgres compares it: lower
// case, without the characters that are not letters or digits.
func cleanEncoding(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// SettingDenial says why a session may not give setting name the value
// value, or "" when it may. It holds for every token: these are the rules
// that keep the router reading what the server reads. limited adds the
// grant-limited allowlist (replayed settings only; search_path of the
// allowed schemas).
func SettingDenial(name, value string, limited bool) string {
	name = strings.ToLower(name)
	switch name {
	case "standard_conforming_strings":
		if !isOn(value) {
			return "standard_conforming_strings must stay on: the proxy reads statements as the server does only with it on"
		}
	case "client_encoding":
		if unsafeEncodings[cleanEncoding(value)] {
			return "client encoding " + value + " is refused: its multibyte characters may contain ASCII bytes, so the proxy would read statements differently from the server; use UTF8"
		}
	case "role", "session_authorization":
		return "setting " + name + " changes the session's role"
	}
	if !limited {
		return ""
	}
	if !replayedSettings[name] {
		return "grant-limited tokens may only change " + allowedSettingsText
	}
	if name == "search_path" {
		return searchPathDenial(splitSearchPath(value))
	}
	return ""
}

const allowedSettingsText = "application_name, client_encoding, DateStyle, IntervalStyle, TimeZone, extra_float_digits, " +
	"statement_timeout, lock_timeout, idle_in_transaction_session_timeout, search_path, standard_conforming_strings and bytea_output"

// searchPathDenial checks a grant-limited token's search_path: only the
// schemas pgmq, public, pg_catalog and "$user", and pg_catalog (when named)
// first, so that nothing shadows the built-in functions the router vouches
// for.
func searchPathDenial(schemas []string) string {
	for i, s := range schemas {
		switch s {
		case "pgmq", "public", "$user":
		case "pg_catalog":
			if i != 0 {
				return "search_path may name pg_catalog only first, so that no schema shadows built-in functions"
			}
		default:
			return "search_path may only hold pgmq, public, pg_catalog and \"$user\""
		}
	}
	return ""
}

// splitSearchPath splits a search_path value as Postgres does: comma
// separated, double-quoted names kept as written, others lower-cased.
func splitSearchPath(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if len(item) >= 2 && item[0] == '"' && item[len(item)-1] == '"' {
			item = strings.ReplaceAll(item[1:len(item)-1], `""`, `"`)
		} else {
			item = strings.ToLower(item)
		}
		out = append(out, item)
	}
	return out
}

func isOn(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1", "t", "y", "tr", "tru", "ye":
		return true
	}
	return false
}

// Readable reports whether a grant-limited token may read setting name
// (SHOW, current_setting).
func Readable(name string) bool {
	name = strings.ToLower(name)
	return replayedSettings[name] || readableSettings[name]
}
