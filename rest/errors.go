package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"mqstack/auth"
	"mqstack/internal/backend"
	"mqstack/internal/errorid"
)

// apiError is an error as HTTP clients see it: the PostgREST error body
// {"code", "message", "details", "hint"} and a status.
type apiError struct {
	Status  int     `json:"-"`
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Details *string `json:"details"`
	Hint    *string `json:"hint"`
	// authenticate is the WWW-Authenticate header of a 401.
	authenticate string
	// id identifies a 5xx in the log; "" for client errors.
	id string
	// cause is what the log shows for a 5xx (never sent to the client).
	cause error
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// errBadValue is a 400 for an argument Postgres would refuse as well.
func errBadValue(code, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// errNoFunction is PostgREST's PGRST202: no function of that name takes
// these arguments.
func errNoFunction(name string, f *function, keys map[string]bool) *apiError {
	given := strings.Join(sortedKeys(keys), ", ")
	e := &apiError{Status: http.StatusNotFound, Code: "PGRST202",
		Message: fmt.Sprintf("Could not find the function pgmq.%s(%s) in the schema cache", name, given)}
	if f == nil {
		e.Details = strPtr(fmt.Sprintf("pgmq.%s is not a function of the REST API", name))
		return e
	}
	if given == "" {
		given = "no parameters"
	} else {
		given = "parameters " + given
	}
	e.Details = strPtr(fmt.Sprintf("Searched for the function pgmq.%s with %s, but no matches were found", name, given))
	e.Hint = strPtr(fmt.Sprintf("pgmq.%s accepts %s", name, f.describe()))
	return e
}

// statusClientClosed is nginx's 499: the client closed the connection.
const statusClientClosed = 499

// statusOf maps a SQLSTATE to the HTTP status of the spec's table.
func statusOf(code string) int {
	switch class := class(code); {
	case code == pgerrcode.InsufficientPrivilege:
		return http.StatusForbidden
	case code == pgerrcode.UndefinedTable || code == pgerrcode.UndefinedFunction:
		return http.StatusNotFound
	case class == dataException || class == integrityConstraintViolation || class == plpgsqlError ||
		code == pgerrcode.DatatypeMismatch || code == pgerrcode.CannotCoerce:
		return http.StatusBadRequest
	case class == invalidAuthorizationSpecification:
		// The token's role cannot log in (no such role, no CONNECT right).
		return http.StatusForbidden
	case class == connectionException || class == insufficientResources || class == transactionRollback ||
		code == pgerrcode.AdminShutdown || code == pgerrcode.CrashShutdown ||
		code == pgerrcode.CannotConnectNow || code == pgerrcode.QueryCanceled:
		// Backend gone or busy, pool timeout, serialization failure or
		// deadlock, statement timeout: all worth retrying.
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// class is a SQLSTATE's class: its first two characters.
func class(code string) string {
	if len(code) > 2 {
		return code[:2]
	}
	return code
}

// The classes statusOf maps as a whole.
var (
	dataException                     = class(pgerrcode.DataException)
	integrityConstraintViolation      = class(pgerrcode.IntegrityConstraintViolation)
	plpgsqlError                      = class(pgerrcode.PLpgSQLError)
	invalidAuthorizationSpecification = class(pgerrcode.InvalidAuthorizationSpecification)
	connectionException               = class(pgerrcode.ConnectionException)
	insufficientResources             = class(pgerrcode.InsufficientResources)
	transactionRollback               = class(pgerrcode.TransactionRollback)
)

// errUnavailable marks an error of the backend pool (no connection, I/O
// failure): 503 unless it carries a SQLSTATE of its own.
type errUnavailable struct{ err error }

func (e *errUnavailable) Error() string { return "backend unavailable: " + e.err.Error() }
func (e *errUnavailable) Unwrap() error { return e.err }

// sqlStater is an error that names its SQLSTATE: the domain errors of
// auth, router and internal/backend (and *pgconn.PgError, passed on whole
// before it is asked).
type sqlStater interface {
	error
	SQLState() string
}

// toAPIError is the one function that turns any error into what the client
// sees.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var tokenErr *auth.Error
	if errors.As(err, &tokenErr) {
		return authError(tokenErr)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		e := &apiError{Status: statusOf(pe.Code), Code: pe.Code, Message: pe.Message,
			Details: strPtr(pe.Detail), Hint: strPtr(pe.Hint), cause: err}
		return e
	}
	var se sqlStater
	if errors.As(err, &se) {
		return domainError(se, err)
	}
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody reads this answer.
		return &apiError{Status: statusClientClosed, Code: pgerrcode.QueryCanceled, Message: "canceled: the client closed the request"}
	}
	var ue *errUnavailable
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: pgerrcode.ConnectionFailure,
			Message: "the database backend is unavailable", cause: err}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: pgerrcode.InternalError, Message: "internal error", cause: err}
}

// domainError is a domain error (se, found in err) as the client sees it:
// the error's SQLSTATE and its status, the message worded for HTTP.
func domainError(se sqlStater, err error) *apiError {
	code := se.SQLState()
	e := &apiError{Status: statusOf(code), Code: code, Message: se.Error(), cause: err}
	switch se := se.(type) {
	case *backend.ConnectError:
		e.Message = "the database backend is unavailable"
	case *backend.CheckoutTimeoutError:
		if se.ShareExceeded() {
			e.Hint = strPtr("end the token's other calls sooner, use a token per client, or raise pool.max_share")
		}
	}
	return e
}

// authError is a refused token: 401 with an RFC 6750 challenge, or 403 when
// the token is valid but its role may not be used.
func authError(e *auth.Error) *apiError {
	if code := e.SQLState(); code == pgerrcode.InvalidAuthorizationSpecification {
		return &apiError{Status: http.StatusForbidden, Code: code, Message: e.Error()}
	}
	code := "PGRST301"
	if e.Reason == auth.ReasonExpired {
		code = "PGRST303"
	}
	desc := challengeText(e.Error())
	return &apiError{Status: http.StatusUnauthorized, Code: code, Message: e.Error(),
		authenticate: fmt.Sprintf(`Bearer realm="mqstack", error="invalid_token", error_description="%s"`, desc)}
}

// errNoToken is the 401 of a request without Bearer credentials (RFC 6750
// 3.1: no error code then).
func errNoToken() *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: "PGRST302",
		Message:      "no token: send Authorization: Bearer <JWT>",
		authenticate: `Bearer realm="mqstack"`}
}

// challengeText keeps the characters RFC 6750 allows in error_description.
func challengeText(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 200; i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

// writeError sends e; 5xx errors get an id (header X-Error-Id and, when the
// body has no details, in details) that the caller logs.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	if e.authenticate != "" {
		h.Set("WWW-Authenticate", e.authenticate)
	}
	if e.Status >= 500 {
		if e.id == "" {
			e.id = errorid.New()
		}
		h.Set("X-Error-Id", e.id)
		if e.Details == nil {
			e.Details = strPtr("error id " + e.id)
		}
		if e.Status == http.StatusServiceUnavailable {
			h.Set("Retry-After", "1")
		}
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		panic("BUG: error body does not marshal: " + err.Error())
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Status)
	_, _ = w.Write(bytes.TrimSuffix(body.Bytes(), []byte("\n")))
}

func isPgError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}
