package proxy

import "errors"

// closeReason says why a client connection closed: the label values of
// mqstack_connections_closed_total, one per cause (as nats-server's closed
// states). It travels with the error that ends the session (closeError),
// so nothing works it back out of a SQLSTATE.
type closeReason string

// The close reasons. They are untyped constants so that they read as label
// values where a string is wanted; the session carries them as closeReason.
const (
	closeClientQuit     = "client_quit"      // Terminate
	closeClientGone     = "client_gone"      // the connection ended without Terminate
	closeClientError    = "client_error"     // protocol violation, bad startup packet, message too long
	closeAuthFailed     = "auth_failed"      // token or role refused
	closeLoginTimeout   = "login_timeout"    // proxy.client_login_timeout passed before login
	closeLoginFailed    = "login_failed"     // the backend refused the login or its settings
	closeTooManyClients = "too_many_clients" // proxy.max_clients
	closeCancelRequest  = "cancel_request"   // a CancelRequest connection
	closeShutdown       = "shutdown"         // the proxy drained or stopped
	closeTokenExpired   = "token_expired"    // closed at a transaction boundary after exp
	closeBackendError   = "backend_error"    // the backend connection failed under the client
	closeInternalError  = "internal_error"   // an unexpected error
	// closeIdleInTx: idle in a transaction past proxy.idle_in_transaction_timeout.
	closeIdleInTx = "idle_in_transaction_timeout"
	// closeNotifyBehind: over proxy.max_pending_notifications undelivered.
	closeNotifyBehind = "notifications_behind"
)

// CloseReasons lists every close reason (metric label values).
func CloseReasons() []string {
	return []string{closeClientQuit, closeClientGone, closeClientError, closeAuthFailed, closeLoginTimeout,
		closeLoginFailed, closeTooManyClients, closeCancelRequest, closeShutdown, closeTokenExpired,
		closeBackendError, closeInternalError, closeIdleInTx, closeNotifyBehind}
}

// closeError is an error that ends the session, with the reason it is
// counted under. A reported one reaches the client as FATAL before the
// connection closes; the others end it quietly (the client left or has
// been told already).
type closeError struct {
	reason closeReason
	err    error
	report bool
}

func (e *closeError) Error() string { return e.err.Error() }
func (e *closeError) Unwrap() error { return e.err }

// closeWith is err, reported to the client, ending the session for reason.
func closeWith(reason closeReason, err error) *closeError {
	return &closeError{reason: reason, err: err, report: true}
}

// Errors that end a session quietly.
var (
	errTerminate   = &closeError{reason: closeClientQuit, err: errors.New("client sent Terminate")}
	errBackendLost = &closeError{reason: closeBackendError, err: errors.New("backend connection lost")}
	errCancelDone  = &closeError{reason: closeCancelRequest, err: errors.New("cancel request handled")}
)
