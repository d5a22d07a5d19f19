package proxy

import (
	"encoding/binary"
	"io"
	"sort"
	"strings"

	"github.com/jackc/pgerrcode"

	"mqstack/internal/backend"
)

// Startup packet codes (the first int32 after the length).
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102
	maxStartupLen     = 10000 // MAX_STARTUP_PACKET_LENGTH in Postgres
)

type startupKind int

const (
	kindStartup startupKind = iota
	kindSSL
	kindGSSENC
	kindCancel
)

// startupPacket is a decoded first packet of a connection.
type startupPacket struct {
	kind startupKind
	// Startup message: protocol minor version and parameters in order.
	minor  uint16
	params map[string]string
	// CancelRequest.
	pid    uint32
	secret []byte
}

// readStartup reads one startup-phase packet (length-prefixed, no type byte).
func readStartup(r io.Reader) (*startupPacket, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:])))
	if n < 8 || n > maxStartupLen {
		return nil, fatalf(pgerrcode.ProtocolViolation, "invalid length of startup packet")
	}
	buf := make([]byte, n-4)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return parseStartup(buf)
}

// parseStartup decodes the body of a startup-phase packet. It accepts any
// 3.x protocol version (the caller negotiates down to 3.0).
func parseStartup(buf []byte) (*startupPacket, error) {
	if len(buf) < 4 {
		return nil, fatalf(pgerrcode.ProtocolViolation, "invalid length of startup packet")
	}
	code := binary.BigEndian.Uint32(buf)
	switch code {
	case codeSSLRequest:
		return &startupPacket{kind: kindSSL}, nil
	case codeGSSENCRequest:
		return &startupPacket{kind: kindGSSENC}, nil
	case codeCancelRequest:
		if len(buf) < 12 || len(buf) > 264 {
			return nil, fatalf(pgerrcode.ProtocolViolation, "invalid length of cancel request")
		}
		return &startupPacket{kind: kindCancel, pid: binary.BigEndian.Uint32(buf[4:]),
			secret: append([]byte(nil), buf[8:]...)}, nil
	}
	if code>>16 != 3 {
		return nil, fatalf(pgerrcode.ProtocolViolation,
			"unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", code>>16, code&0xffff)
	}
	p := &startupPacket{kind: kindStartup, minor: uint16(code & 0xffff), params: map[string]string{}}
	rest := buf[4:]
	for {
		name, after, ok := cutNul(rest)
		if !ok {
			return nil, fatalf(pgerrcode.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		if name == "" {
			if len(after) != 0 {
				return nil, fatalf(pgerrcode.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
			}
			break
		}
		val, after2, ok := cutNul(after)
		if !ok {
			return nil, fatalf(pgerrcode.ProtocolViolation, "invalid startup packet layout: missing value for %q", name)
		}
		p.params[name] = val
		rest = after2
	}
	return p, nil
}

func cutNul(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}

// reportedParams are the settings Postgres reports with ParameterStatus,
// by lower-case name. Their values are observed, not assumed.
var reportedParams = map[string]string{
	"application_name":              "application_name",
	"client_encoding":               "client_encoding",
	"datestyle":                     "DateStyle",
	"default_transaction_read_only": "default_transaction_read_only",
	"in_hot_standby":                "in_hot_standby",
	"integer_datetimes":             "integer_datetimes",
	"intervalstyle":                 "IntervalStyle",
	"is_superuser":                  "is_superuser",
	"server_encoding":               "server_encoding",
	"server_version":                "server_version",
	"session_authorization":         "session_authorization",
	"standard_conforming_strings":   "standard_conforming_strings",
	"timezone":                      "TimeZone",
	"scram_iterations":              "scram_iterations",
}

// replayedReported are the reported settings a client may choose and that are
// replayed onto each backend connection it gets.
var replayedReported = []string{"application_name", "client_encoding", "DateStyle", "IntervalStyle",
	"TimeZone", "standard_conforming_strings"}

// clientReported are the reported settings a client can change
// (backend.ClientReported): every session wants each at a value, so
// whatever one client left on a backend (default_transaction_read_only
// through a DO block, say) is set back before the next one runs a
// statement.
var clientReported = backend.ClientReported

// canonicalSetting is the name a setting is tracked under: the reported
// spelling for reported settings, lower case for the rest.
func canonicalSetting(name string) string {
	l := strings.ToLower(name)
	if c, ok := reportedParams[l]; ok {
		return c
	}
	return l
}

// reportedCanonical holds the reported spellings, so isReported, which runs
// for each wanted setting at every checkout, needs no ToLower (which
// allocates for "DateStyle", "TimeZone", ...).
var reportedCanonical = func() map[string]bool {
	m := make(map[string]bool, len(reportedParams))
	for _, c := range reportedParams {
		m[c] = true
	}
	return m
}()

func isReported(canonical string) bool {
	if reportedCanonical[canonical] {
		return true
	}
	_, ok := reportedParams[strings.ToLower(canonical)]
	return ok
}

// readOnlyParams may not be set by a client.
var readOnlyParams = map[string]bool{"server_version": true, "server_encoding": true, "integer_datetimes": true,
	"is_superuser": true, "session_authorization": true, "in_hot_standby": true, "role": true}

// clientStartup is what a startup message asks for.
type clientStartup struct {
	user, database string
	// settings to keep on every backend connection, by canonical name.
	settings map[string]string
	// unknown _pq_ protocol options, for NegotiateProtocolVersion.
	unknownOptions []string
}

// interpretStartup validates the parameters of a startup message.
func interpretStartup(p *startupPacket) (*clientStartup, error) {
	cs := &clientStartup{settings: map[string]string{}}
	names := make([]string, 0, len(p.params))
	for k := range p.params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := p.params[k]
		switch {
		case k == "user":
			cs.user = v
		case k == "database":
			cs.database = v
		case k == "replication":
			switch strings.ToLower(v) {
			case "false", "off", "no", "0":
			default:
				return nil, fatalf(pgerrcode.FeatureNotSupported, "replication connections are not supported by mqstack")
			}
		case k == "options":
			opts, err := parseOptions(v)
			if err != nil {
				return nil, err
			}
			for name, val := range opts {
				if err := cs.set(name, val); err != nil {
					return nil, err
				}
			}
		case strings.HasPrefix(k, "_pq_."):
			cs.unknownOptions = append(cs.unknownOptions, k)
		default:
			if err := cs.set(k, v); err != nil {
				return nil, err
			}
		}
	}
	if cs.user == "" {
		return nil, fatalf(pgerrcode.InvalidAuthorizationSpecification, "no PostgreSQL user name specified in startup packet")
	}
	if cs.database == "" {
		cs.database = cs.user
	}
	return cs, nil
}

func (cs *clientStartup) set(name, val string) error {
	c := canonicalSetting(name)
	if !backend.ValidSettingName(c) {
		return fatalf(pgerrcode.UndefinedObject, "unrecognized configuration parameter %q", name)
	}
	if readOnlyParams[strings.ToLower(c)] {
		return fatalf(pgerrcode.CantChangeRuntimeParam, "parameter %q cannot be changed", name)
	}
	cs.settings[c] = val
	return nil
}

// parseOptions splits a libpq options string ("-c a=b --c=d", backslash
// escapes a space) into settings. Only -c/-- settings are accepted.
func parseOptions(s string) (map[string]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	out := map[string]string{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var kv string
		switch {
		case w == "-c":
			if i+1 >= len(words) {
				return nil, fatalf(pgerrcode.ProtocolViolation, "invalid command-line argument for server process: -c needs a setting")
			}
			i++
			kv = words[i]
		case strings.HasPrefix(w, "-c"):
			kv = w[2:]
		case strings.HasPrefix(w, "--"):
			kv = w[2:]
		default:
			return nil, fatalf(pgerrcode.ProtocolViolation, "invalid command-line argument for server process: %s", w)
		}
		name, val, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fatalf(pgerrcode.SyntaxError, "-c %s requires a value", name)
		}
		out[strings.ReplaceAll(name, "-", "_")] = val
	}
	return out, nil
}
