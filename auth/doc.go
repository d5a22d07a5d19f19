// Package auth owns the token policy of mqstack (../shared/spec/auth.md):
// verifying client JWTs into an Identity (database role, subject, expiry and
// optional queue grants), the key sets they are verified with (HMAC secret,
// PEM, JWK and JWKS files, reloaded on SIGHUP), the cache of verified tokens,
// the queue-grant model and its matching, and development tokens (Mint, the
// dev secret in the data directory).
//
// The wire proxy and REST both call the same Verifier, so one token means the
// same thing on both. What a statement needs (which op on which queue) is the
// router's business; this package only answers "may this identity do op on
// queue".
//
// auth may import only configs of mqstack's packages. It logs through the
// *zap.Logger it is given and exports no metrics: every failure is an *Error
// whose Reason is a small closed set, fit for a metric label.
package auth
