// Package errorid makes the ids under which an internal error is shown to a
// client and logged (the proxy's "mqstack internal error (id ...)", REST's
// X-Error-Id), so that an operator finds the log line a user quotes. It
// imports nothing of ours, so both front ends may use it.
package errorid

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a fresh id: 16 hex digits from crypto/rand.
func New() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}
