package proxy

import (
	"mqstack/router"
)

// Pin decisions: the router's parse names the session state a statement
// creates; the proxy adds what only it knows (which settings it replays).
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

// single returns the only part of a one-statement query, nil otherwise.
func single(st *router.Statement) *router.Part {
	if len(st.Parts) != 1 {
		return nil
	}
	return &st.Parts[0]
}

// hasCalls reports whether a statement calls pgmq functions.
func hasCalls(st *router.Statement) bool {
	for i := range st.Parts {
		if len(st.Parts[i].Calls) > 0 {
			return true
		}
	}
	return false
}

// hasSets reports whether a statement sets or resets settings.
func hasSets(st *router.Statement) bool {
	for i := range st.Parts {
		if st.Parts[i].Kind == router.KindSet {
			return true
		}
	}
	return false
}

// boundTargets reports whether some pgmq call names its queue (or
// bind_topic its pattern) with a bound parameter, so the grant check must
// wait for Bind.
func boundTargets(st *router.Statement) bool {
	for i := range st.Parts {
		for _, c := range st.Parts[i].Calls {
			if c.Target.Param > 0 || c.Pattern.Param > 0 {
				return true
			}
		}
	}
	return false
}
