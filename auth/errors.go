package auth

import (
	"errors"
	"strings"

	"github.com/jackc/pgerrcode"
)

// Reason says why a token (or the role it names) was refused. The set is
// closed, so it can label metrics.
type Reason string

const (
	ReasonMalformed       Reason = "malformed"         // not a JWS compact token, bad base64 or JSON, crit header
	ReasonTooLong         Reason = "too_long"          // longer than MaxTokenLen
	ReasonBadAlgorithm    Reason = "bad_algorithm"     // alg none, unknown, or not one of the configured keys'
	ReasonUnknownKID      Reason = "unknown_kid"       // kid names no configured key
	ReasonBadSignature    Reason = "bad_signature"     // signature does not verify
	ReasonMissingExp      Reason = "missing_exp"       // no exp claim
	ReasonExpired         Reason = "expired"           // exp (plus leeway) passed
	ReasonNotYetValid     Reason = "not_yet_valid"     // nbf (minus leeway) not reached
	ReasonIssuedInFuture  Reason = "issued_in_future"  // iat (minus leeway) after now
	ReasonWrongAudience   Reason = "wrong_audience"    // aud configured and missing or different
	ReasonWrongIssuer     Reason = "wrong_issuer"      // iss configured and missing or different
	ReasonLifetimeTooLong Reason = "lifetime_too_long" // exp - iat over auth.max_token_lifetime
	ReasonNoRole          Reason = "no_role"           // no role claim and no default role
	ReasonRoleNotAllowed  Reason = "role_not_allowed"  // bad role name, or not in auth.allowed_roles
	ReasonSuperuserRole   Reason = "superuser_role"    // role is a superuser, not allowed (CheckRole)
	ReasonRoleMismatch    Reason = "role_mismatch"     // startup user differs from the role (MatchUser)
	ReasonBadGrants       Reason = "bad_grants"        // mq / scope grant claim invalid or too large
)

// Reasons lists every Reason, e.g. to initialise metric label values.
func Reasons() []Reason {
	return []Reason{
		ReasonMalformed, ReasonTooLong, ReasonBadAlgorithm, ReasonUnknownKID, ReasonBadSignature,
		ReasonMissingExp, ReasonExpired, ReasonNotYetValid, ReasonIssuedInFuture, ReasonWrongAudience,
		ReasonWrongIssuer, ReasonLifetimeTooLong, ReasonNoRole, ReasonRoleNotAllowed,
		ReasonSuperuserRole, ReasonRoleMismatch, ReasonBadGrants,
	}
}

var reasonText = map[Reason]string{
	ReasonMalformed:       "malformed token",
	ReasonTooLong:         "token too long",
	ReasonBadAlgorithm:    "token algorithm not accepted",
	ReasonUnknownKID:      "token key id unknown",
	ReasonBadSignature:    "bad token signature",
	ReasonMissingExp:      "token has no expiry (exp)",
	ReasonExpired:         "token expired",
	ReasonNotYetValid:     "token not valid yet",
	ReasonIssuedInFuture:  "token issued in the future",
	ReasonWrongAudience:   "wrong token audience",
	ReasonWrongIssuer:     "wrong token issuer",
	ReasonLifetimeTooLong: "token lifetime too long",
	ReasonNoRole:          "token names no role",
	ReasonRoleNotAllowed:  "token role not allowed",
	ReasonSuperuserRole:   "superuser role not allowed",
	ReasonRoleMismatch:    "user does not match the token role",
	ReasonBadGrants:       "bad queue grants in token",
}

// Error is a refused token or role. Its message never contains the token;
// Detail, Subject and KeyID are safe to log (KeyID is sanitised, Subject and
// JTI are only set once the signature has verified).
type Error struct {
	Reason  Reason
	Detail  string // what exactly, e.g. "alg HS256 not accepted"; may be empty
	Subject string // sub, when the signature verified
	JTI     string // jti, when the signature verified
	KeyID   string // kid from the header, sanitised
	err     error  // cause, for errors.Is (e.g. jwt.ErrTokenExpired); never printed
}

func (e *Error) Error() string {
	msg := reasonText[e.Reason]
	if msg == "" {
		msg = string(e.Reason)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *Error) Unwrap() error { return e.err }

// SQLState is the code Postgres gives the same refusal: 28000
// (invalid_authorization_specification) when the token was valid but its
// role may not be used (IsRoleRefused), 28P01 (invalid_password) for a
// refused token.
func (e *Error) SQLState() string {
	if IsRoleRefused(e) {
		return pgerrcode.InvalidAuthorizationSpecification
	}
	return pgerrcode.InvalidPassword
}

func newError(r Reason, detail string) *Error { return &Error{Reason: r, Detail: detail} }

// ReasonOf returns the Reason of an *Error in err's chain, or "" if there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// IsTokenError reports whether err refuses a token or its role (as opposed to
// an internal problem).
func IsTokenError(err error) bool { return ReasonOf(err) != "" }

// IsExpired reports whether err refuses an expired token: a client may fetch a
// fresh token and retry.
func IsExpired(err error) bool { return ReasonOf(err) == ReasonExpired }

// IsRoleRefused reports whether the token itself was valid but the role it
// names may not be used (superuser, mismatching startup user): SQLSTATE
// 28000 (Error.SQLState); the other token errors are 28P01.
func IsRoleRefused(err error) bool {
	r := ReasonOf(err)
	return r == ReasonSuperuserRole || r == ReasonRoleMismatch
}

// sanitize makes attacker-controlled header text safe for a log line: printable
// ASCII only, at most 64 bytes.
func sanitize(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
