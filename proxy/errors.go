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

// errorResponse is the one place that turns an error into what a client
// sees. severity is used unless the error carries its own. Upstream
// *pgconn.PgError passes through field by field; anything unexpected is
// shown as an internal error with an id that is also logged.
func errorResponse(err error, severity string, log *zap.Logger) *pgproto3.ErrorResponse {
	var (
		pe  *pgconn.PgError
		pxe *Error
		cte *backend.CheckoutTimeoutError
		be  *backend.ConnectError
		ae  *auth.Error
		de  *router.Denial
	)
	switch {
	case errors.As(err, &de):
		return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR",
			Code: pgerrcode.InsufficientPrivilege, Message: de.Error(), Hint: denialHint(de)}
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
	case errors.As(err, &be):
		// Postgres is down or restarting: a retryable connection failure,
		// not an internal error (REST answers 503 with the same code).
		return &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity,
			Code: pgerrcode.ConnectionFailure, Message: "the database backend is unavailable (backend " + be.Key.Backend + ")",
			Hint: "retry: the backend is restarting or unreachable"}
	case errors.As(err, &cte) && cte.ShareExceeded():
		return &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity,
			Code: pgerrcode.TooManyConnections, Message: "too many backend connections for one token: " + cte.Error(),
			Hint: "end the token's other open transactions sooner, use a token per client, or raise pool.max_share"}
	case errors.As(err, &cte):
		return &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity,
			Code: pgerrcode.TooManyConnections, Message: "too many clients waiting: " + cte.Error(),
			Hint: "raise pool.size or pool.checkout_timeout, or shorten transactions"}
	case errors.As(err, &ae):
		code, msg := pgerrcode.InvalidPassword, "password authentication failed: "+ae.Error()
		if auth.IsRoleRefused(err) {
			code, msg = pgerrcode.InvalidAuthorizationSpecification, ae.Error()
		}
		return &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg}
	case errors.Is(err, context.DeadlineExceeded):
		return &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity,
			Code: pgerrcode.QueryCanceled, Message: "timed out"}
	}
	id := errorid.New()
	log.Error("internal error shown to client", zap.String("error_id", id), zap.Error(err))
	return &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity,
		Code: pgerrcode.InternalError, Message: "mqstack internal error (id " + id + ")"}
}
