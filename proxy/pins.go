package proxy

import "mqstack/router"

// Pin decisions: the router's parse names the session state a statement
// creates; the proxy adds what only it knows (which settings it replays). A
// pinned session keeps its backend between transactions, until a DISCARD
// ALL clears the state that pinned it.

// pinSessionMode is the pin of every session of a pool in session mode.
const pinSessionMode = string(router.PinSessionMode)

// PinCauses lists every pin cause (metric label values).
func PinCauses() []string {
	var out []string
	for _, c := range router.PinCauses() {
		out = append(out, string(c))
	}
	return out
}

// pinOf is the pin cause of a classified statement, "" when it creates no
// session state that must keep the client on its backend.
func pinOf(st *router.Statement) string {
	for i := range st.Parts {
		p := &st.Parts[i]
		switch {
		case p.Kind == router.KindListen:
			return string(router.PinListen)
		case p.Kind == router.KindSet:
			if cause := setPin(p); cause != "" {
				return cause
			}
		case p.Pin != "":
			return string(p.Pin)
		}
	}
	return ""
}

// setPin judges a SET/RESET: SET LOCAL and SET TRANSACTION end with the
// transaction; the replayed settings move with the client (reported ones
// through ParameterStatus, the others through the session's wanted values,
// see noteSettingsLocked); anything else pins.
func setPin(p *router.Part) string {
	switch {
	case p.Local:
		return ""
	case p.Pin != "":
		return string(p.Pin)
	case p.Setting == "": // RESET ALL
		return ""
	case !router.Replayed(p.Setting):
		return string(router.PinSessionSet)
	case isReported(canonicalSetting(p.Setting)), p.Reset, p.ValuesKnown:
		return ""
	}
	return string(router.PinSessionSet)
}

// pinLocked pins the session to its backend for cause, unless it is pinned
// already. s.mu is held.
func (s *session) pinLocked(cause string) {
	if s.backend.pinned == "" {
		s.backend.pinned = cause
		s.srv.rec.Pinned(cause)
	}
}

// isPinned reports whether the session is pinned to its backend.
func (s *session) isPinned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backend.pinned != ""
}
