package proxy

import "mqstack/router"

// What a classified statement is made of, as the session asks it.

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
