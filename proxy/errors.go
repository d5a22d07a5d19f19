package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/internal/backend"
	"mqstack/internal/errorid"
	"mqstack/router"
)

// Error is an error the proxy itself reports to a client.
type Error struct {
	Severity string // ERROR or FATAL
	Code     string // SQLSTATE
	Message  string
	Detail   string
	Hint     string
}

func (e *Error) Error() string { return e.Message }

func fatalf(code, format string, args ...any) *Error {
	return &Error{Severity: "FATAL", Code: code, Message: fmt.Sprintf(format, args...)}
}

func errorf(code, format string, args ...any) *Error {
	return &Error{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

// sqlStater is an error that names its SQLSTATE: the domain errors of
// auth, router and internal/backend (and *pgconn.PgError, passed on whole
// before it is asked).
type sqlStater interface {
	error
	SQLState() string
}

// errorResponse is the one place that turns an error into what a client
// sees. severity is used unless the error carries its own. Upstream
// *pgconn.PgError passes through field by field; a domain error gives its
// SQLSTATE and the proxy words the message; anything unexpected is shown
// as an internal error with an id that is also logged.
func errorResponse(err error, severity string, log *zap.Logger) *pgproto3.ErrorResponse {
	var (
		pe  *pgconn.PgError
		pxe *Error
		se  sqlStater
	)
	switch {
	case errors.As(err, &pxe):
		sev := pxe.Severity
		if sev == "" {
			sev = severity
		}
		return &pgproto3.ErrorResponse{Severity: sev, SeverityUnlocalized: sev, Code: pxe.Code,
			Message: pxe.Message, Detail: pxe.Detail, Hint: pxe.Hint}
	case errors.As(err, &pe):
		sev := pe.Severity
		if severity == "FATAL" {
			sev = "FATAL"
		}
		return &pgproto3.ErrorResponse{
			Severity: sev, SeverityUnlocalized: sev, Code: pe.Code, Message: pe.Message,
			Detail: pe.Detail, Hint: pe.Hint, Position: pe.Position, InternalPosition: pe.InternalPosition,
			InternalQuery: pe.InternalQuery, Where: pe.Where, SchemaName: pe.SchemaName, TableName: pe.TableName,
			ColumnName: pe.ColumnName, DataTypeName: pe.DataTypeName, ConstraintName: pe.ConstraintName,
			File: pe.File, Line: pe.Line, Routine: pe.Routine,
		}
	case errors.As(err, &se):
		return domainResponse(se, severity)
	case errors.Is(err, context.DeadlineExceeded):
		return &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity,
			Code: pgerrcode.QueryCanceled, Message: "timed out"}
	}
	id := errorid.New()
	log.Error("internal error shown to client", zap.String("error_id", id), zap.Error(err))
	return &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity,
		Code: pgerrcode.InternalError, Message: "mqstack internal error (id " + id + ")"}
}

// domainResponse is a domain error as the client sees it: its own SQLSTATE,
// the message and hint worded for a wire client.
func domainResponse(se sqlStater, severity string) *pgproto3.ErrorResponse {
	r := &pgproto3.ErrorResponse{Severity: severity, Code: se.SQLState(), Message: se.Error()}
	switch e := se.(type) {
	case *router.Denial:
		// The session stays usable.
		r.Severity, r.Hint = "ERROR", denialHint(e)
	case *backend.ConnectError:
		// Postgres is down or restarting: a retryable connection failure,
		// not an internal error (REST answers 503 with the same code).
		r.Message = "the database backend is unavailable (backend " + e.Key.Backend + ")"
		r.Hint = "retry: the backend is restarting or unreachable"
	case *backend.CheckoutTimeoutError:
		if e.ShareExceeded() {
			r.Message = "too many backend connections for one token: " + e.Error()
			r.Hint = "end the token's other open transactions sooner, use a token per client, or raise pool.max_share"
		} else {
			r.Message = "too many clients waiting: " + e.Error()
			r.Hint = "raise pool.size or pool.checkout_timeout, or shorten transactions"
		}
	case *auth.Error:
		r.Severity = "FATAL"
		if r.Code == pgerrcode.InvalidPassword {
			r.Message = "password authentication failed: " + e.Error()
		}
	}
	r.SeverityUnlocalized = r.Severity
	return r
}
