package proxy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"mqstack/internal/backend"
	"mqstack/router"
)

// wantedSettings are the settings the client's backend connections must
// have. Guarded by s.mu; the client goroutine reads them without it when
// it checks a connection out, as no reader runs then.
type wantedSettings struct {
	// want is what the client's backend must have; base is want as of
	// login (DISCARD ALL and RESET ALL return to it). base is shared with
	// the sessions that logged in with the same settings and never
	// written; want is base until the session changes a setting (set,
	// unset), which gives it a copy of its own (owned). An idle session so
	// holds no map of its own.
	want, base map[string]string
	owned      bool
	discarding bool // a DISCARD ALL ran in this cycle
}

// set makes name wanted at v.
func (w *wantedSettings) set(name, v string) {
	w.own()
	w.want[name] = v
}

// unset makes name wanted at nothing in particular.
func (w *wantedSettings) unset(name string) {
	w.own()
	delete(w.want, name)
}

func (w *wantedSettings) own() {
	if !w.owned {
		w.want, w.owned = maps.Clone(w.want), true
	}
}

// login sets the wanted settings at login from the startup settings (the
// reported ones as the server reports them) and returns the parameters to
// report to the client. Every reported setting a client can change is
// wanted at some value, so a backend another client left otherwise is put
// back.
func (w *wantedSettings) login(pl *poolLogin, startup map[string]string) (params map[string]string) {
	params = maps.Clone(pl.params)
	want := map[string]string{}
	for k, v := range startup {
		want[k] = v
		if isReported(k) {
			want[k] = pl.norm[k+"\x00"+v]
			params[k] = want[k]
		}
	}
	for _, name := range clientReported {
		if _, ok := want[name]; !ok {
			want[name] = pl.params[name]
		}
	}
	w.base = pl.shared(want)
	w.reset()
	return params
}

// reset returns to the settings of the login (DISCARD ALL, RESET ALL).
func (w *wantedSettings) reset() { w.want, w.owned = w.base, false }

// differ reports whether apply has anything to do on c. It runs at every
// checkout, so it allocates nothing and makes no context.
func (w *wantedSettings) differ(c *backend.Conn) bool {
	for name, v := range w.want {
		if isReported(name) {
			if c.Params[name] != v {
				return true
			}
		} else if cur, ok := c.AppliedValue(name); !ok || cur != v {
			return true
		}
	}
	extra := false
	c.RangeApplied(func(name, _ string) bool {
		_, ok := w.want[name]
		extra = !ok
		return ok
	})
	return extra
}

// apply makes c's settings those the client wants: reported ones compared
// with what c reports, the others with what the proxy applied.
func (w *wantedSettings) apply(ctx context.Context, c *backend.Conn) error {
	set := map[string]string{}
	var reset []string
	for name, v := range w.want {
		if isReported(name) {
			if c.Params[name] != v {
				set[name] = v
			}
		} else if cur, ok := c.AppliedValue(name); !ok || cur != v {
			set[name] = v
		}
	}
	c.RangeApplied(func(name, _ string) bool {
		if _, ok := w.want[name]; !ok {
			reset = append(reset, name)
		}
		return true
	})
	return c.Apply(ctx, set, reset, func(n string) bool { return !isReported(n) })
}

// note follows the session SETs and RESETs of a statement: the replayed
// settings Postgres does not report are wanted as set (reported ones
// follow ParameterStatus). taint says the backend must be reset before
// another client gets it, since the proxy cannot know whether the
// transaction kept them.
func (w *wantedSettings) note(st *router.Statement) (taint bool) {
	for i := range st.Parts {
		p := &st.Parts[i]
		if p.Kind != router.KindSet || p.Local {
			continue
		}
		switch {
		case p.Setting == "":
			w.reset()
			taint = true
		case !router.Replayed(p.Setting) || isReported(canonicalSetting(p.Setting)):
		case p.Reset:
			name := canonicalSetting(p.Setting)
			if v, ok := w.base[name]; ok {
				w.set(name, v)
			} else {
				w.unset(name)
			}
			taint = true
		case p.ValuesKnown:
			w.set(canonicalSetting(p.Setting), p.Value())
			taint = true
		}
	}
	return taint
}

// noteSettingsLocked follows the session SETs and RESETs a statement runs
// on the attached backend. s.mu is held.
func (s *session) noteSettingsLocked(st *router.Statement) {
	if s.settings.note(st) {
		s.backend.tainted = true
	}
}

// checkStartupSettings applies the setting rules to the startup parameters
// once the token is known: for every token the rules that keep the router
// reading what the server reads; for grant-limited tokens the allowlist and
// the statement_timeout bound. It returns whether some setting is one the
// proxy does not replay (a full token's session then pins).
func (s *session) checkStartupSettings() (unreplayed bool, err error) {
	limited := s.limited()
	for name, v := range s.login.start.settings {
		if why := router.SettingDenial(name, v, limited); why != "" {
			return false, &Error{Severity: "FATAL", Code: pgerrcode.InsufficientPrivilege,
				Message: fmt.Sprintf("startup parameter %s=%q refused: %s", name, v, why)}
		}
		if !router.Replayed(name) {
			unreplayed = true
		}
	}
	if limited {
		v, ok := s.login.start.settings["statement_timeout"]
		if !ok {
			s.login.start.settings["statement_timeout"] = s.limitedTimeoutValue()
		} else if why := s.statementTimeoutDenial(v); why != "" {
			return false, &Error{Severity: "FATAL", Code: pgerrcode.InsufficientPrivilege,
				Message: "startup parameter statement_timeout refused: " + why}
		}
	}
	return unreplayed, nil
}

// limitedTimeoutValue is proxy.limited_statement_timeout as a setting value.
func (s *session) limitedTimeoutValue() string {
	return strconv.FormatInt(s.srv.config().LimitedStatementTimeout.Milliseconds(), 10) + "ms"
}

// statementTimeoutDenial bounds a grant-limited token's statement_timeout:
// above zero and at most proxy.limited_statement_timeout.
func (s *session) statementTimeoutDenial(v string) string {
	limit := s.srv.config().LimitedStatementTimeout
	d, ok := parsePgDuration(v, time.Millisecond)
	if !ok || d < time.Millisecond || d > limit {
		return fmt.Sprintf("grant-limited tokens run with a statement_timeout above 0 and at most %s (proxy.limited_statement_timeout)", limit)
	}
	return ""
}

// limitedSetDenial checks what the router cannot for a grant-limited
// token's SET and RESET: the statement_timeout bound, and the resets that
// would drop it. Those are refused outright: a reset reaching the backend
// would hold there for whatever the client pipelined behind it, before the
// proxy could set the bound again.
func (s *session) limitedSetDenial(st *router.Statement) string {
	for i := range st.Parts {
		p := &st.Parts[i]
		if p.Kind != router.KindSet {
			continue
		}
		switch {
		case p.Reset && (p.Setting == "" || p.Setting == "statement_timeout"):
			return fmt.Sprintf("grant-limited tokens run under proxy.limited_statement_timeout (%s): RESET ALL and RESET statement_timeout would lift it; SET statement_timeout to a value up to it instead",
				s.srv.config().LimitedStatementTimeout)
		case p.Setting == "statement_timeout" && !p.Reset && p.ValuesKnown:
			if why := s.statementTimeoutDenial(p.Value()); why != "" {
				return why
			}
		}
	}
	return ""
}

// parsePgDuration reads a time setting as Postgres does: a number with an
// optional unit (us, ms, s, min, h, d), unit when none is given.
func parsePgDuration(v string, unit time.Duration) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.' || v[i] == '-' || v[i] == '+') {
		i++
	}
	num, err := strconv.ParseFloat(v[:i], 64)
	if err != nil {
		return 0, false
	}
	switch strings.TrimSpace(v[i:]) {
	case "":
	case "us":
		unit = time.Microsecond
	case "ms":
		unit = time.Millisecond
	case "s":
		unit = time.Second
	case "min":
		unit = time.Minute
	case "h":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	default:
		return 0, false
	}
	d := num * float64(unit)
	if d > float64(1<<62) || d < -float64(1<<62) {
		return 0, false
	}
	return time.Duration(d), true
}

// parameterStatus follows a setting the backend reports. The replayed
// ones the client changed become wanted. standard_conforming_strings off
// or an unsafe client encoding can only come from something the router
// could not read (a function, a DO block): the backend is reset before
// reuse, and a grant-limited session, which can run nothing of the kind,
// is closed. It reports whether the message must not reach the client.
func (s *session) parameterStatus(m *pgproto3.ParameterStatus) (drop bool) {
	unsafe := router.SettingDenial(m.Name, m.Value, false) != ""
	s.mu.Lock()
	if unsafe {
		s.backend.tainted = true
	} else if !s.settings.discarding && tracked(m.Name) {
		s.settings.set(m.Name, m.Value)
	}
	limited := s.limited()
	s.mu.Unlock()
	if unsafe && limited {
		s.log.Warn("backend reported a setting the session may not have; closing it", zap.String("setting", m.Name))
		s.killWith(&Error{Severity: "FATAL", Code: pgerrcode.InsufficientPrivilege,
			Message: fmt.Sprintf("setting %s=%s is not allowed: %s", m.Name, m.Value, router.SettingDenial(m.Name, m.Value, false))}, closeClientError)
	}
	return unsafe && limited
}

// tracked reports whether a reported setting is one the proxy replays.
func tracked(name string) bool { return slices.Contains(replayedReported, name) }
