package proxy

import (
	"mqstack/router"
)

// pinOf is the pin cause of a classified statement, "" when it creates no
// session state. The router's parse decides wherever it is certain; the
// lexical scan (scanSQL) only looks at statements the router leaves as
// "other" or uncertain without a pin cause of the router's (DML, DDL,
// SET ROLE, LOAD, SELECT INTO TEMP, ...) and at text that does not parse.
// Settings are judged by the proxy's own replay list: the router's tracked
// settings include some (search_path) that the proxy does not follow.
func pinOf(st *router.Statement, sql string) string {
	lexical := false
	for i := range st.Parts {
		p := &st.Parts[i]
		switch p.Kind {
		case router.KindListen:
			return pinListen
		case router.KindSet:
			if cause := setPin(p); cause != "" {
				return cause
			}
			continue
		}
		switch {
		case p.Pin == router.PinParseFailures:
			lexical = true
		case p.Pin != "":
			return string(p.Pin)
		case p.Kind == router.KindOther || p.Uncertain != "":
			lexical = true
		}
	}
	if lexical {
		return scanSQL(sql).pin
	}
	return ""
}

// setPin judges a SET/RESET: SET LOCAL and SET TRANSACTION end with the
// transaction, the replayed settings move with the client; anything else
// (RESET ALL included) pins.
func setPin(p *router.Part) string {
	switch {
	case p.Local:
		return ""
	case p.Pin != "":
		return string(p.Pin)
	case p.Setting == "":
		return pinSet // RESET ALL
	case len(p.Setting) >= 11 && p.Setting[:11] == "transaction":
		return ""
	case tracked(canonicalSetting(p.Setting)):
		return ""
	}
	return pinSet
}

// interceptOf finds the statements the proxy answers or rewrites itself
// (DEALLOCATE of protocol statements, DISCARD ALL): single statements the
// router classified as such, read again lexically for the name.
func interceptOf(st *router.Statement, sql string) scanResult {
	if len(st.Parts) != 1 {
		return scanResult{}
	}
	switch st.Parts[0].Kind {
	case router.KindDeallocate, router.KindDiscard:
		r := scanSQL(sql)
		r.pin = ""
		return r
	}
	return scanResult{}
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

// boundTargets reports whether some pgmq call names its queue with a
// bound parameter, so the grant check must wait for Bind.
func boundTargets(st *router.Statement) bool {
	for i := range st.Parts {
		for _, c := range st.Parts[i].Calls {
			if c.Target.Param > 0 {
				return true
			}
		}
	}
	return false
}
