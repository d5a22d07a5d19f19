package proxy

import "mqstack/router"

// denials are the proxy's refusals of statements sent to the backend as
// markers, each waiting for its marker's error (guarded by s.mu), and the
// Bind being checked (client goroutine only).
type denials struct {
	queue []denial
	// bind is the Bind being authorized, read by param.
	bind bindValues
	// param is s.bindParam as router.Params, made once per session so that
	// checking a Bind allocates nothing.
	param router.Params
}
