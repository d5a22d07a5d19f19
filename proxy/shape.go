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
