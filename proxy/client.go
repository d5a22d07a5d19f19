package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/internal/wire"
)

// clientConn is the client's connection and the writer toward it.
type clientConn struct {
	// raw is the accepted connection; nc may become a TLS connection over
	// it. Deadlines and Close act on raw, so other goroutines never read
	// nc while the session goroutine replaces it.
	raw net.Conn
	nc  net.Conn
	// in reads the client's messages and out buffers what is written to
	// it; both nil before the startup message. Neither holds a buffer while
	// the client is idle.
	in    *wire.Reader
	out   *wire.Writer
	isTLS bool
	// wmu is held for writes to the client and changes of nc, in and out.
	wmu       sync.Mutex
	closeOnce sync.Once
	// closedFor is the first reason the session was given to end (the
	// reader on a lost backend or a backend's FATAL, a drain, a timeout):
	// it is counted under it, not under what its command loop sees
	// afterwards (the client leaving once told).
	closedFor atomic.Pointer[closeReason]
	// unreadInput: the client was refused while it may still be sending.
	unreadInput bool
}

// noteEnd records why the session ends, unless a reason came first.
func (cc *clientConn) noteEnd(reason closeReason) { cc.closedFor.CompareAndSwap(nil, &reason) }

// startProtocol makes proto, once the client speaks the protocol (after
// its startup message, or to refuse it).
func (cc *clientConn) startProtocol() {
	cc.wmu.Lock()
	if cc.out == nil {
		cc.in = wire.NewReader(cc.nc, maxPasswordMessage)
		cc.out = wire.NewWriter(cc.nc)
	}
	cc.wmu.Unlock()
}

// startTLS answers an SSLRequest with TLS.
func (cc *clientConn) startTLS(ctx context.Context, cfg *tls.Config) error {
	if _, err := cc.nc.Write([]byte{'S'}); err != nil {
		return err
	}
	tc := tls.Server(cc.nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	cc.wmu.Lock()
	cc.nc, cc.isTLS = tc, true
	cc.wmu.Unlock()
	return nil
}

// write sends messages to the client, flushing when flush is set.
func (cc *clientConn) write(flush bool, msgs ...pgproto3.BackendMessage) error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	if cc.out == nil {
		return nil // before the startup packet: nothing can be said yet
	}
	for _, m := range msgs {
		cc.out.Send(m)
	}
	if flush {
		return cc.out.Flush()
	}
	return nil
}

// relay passes a backend message on (the reader's path), flushing when
// flush is set. A failed write ends the client goroutine's read too.
func (cc *clientConn) relay(m pgproto3.BackendMessage, flush bool) {
	cc.wmu.Lock()
	cc.out.Send(m)
	if flush {
		cc.out.Flush()
	}
	cc.wmu.Unlock()
}

// lingerClose ends a refused connection whose client may still be sending
// (a password message over the cap): closing a socket with unread input
// resets it, and the client would see "connection reset" instead of the
// FATAL error just written. So the proxy half-closes and reads what still
// comes, bounded in bytes and time, before the caller closes.
func (cc *clientConn) lingerClose() {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := cc.nc.(closeWriter); ok {
		cw.CloseWrite()
	}
	cc.raw.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.CopyN(io.Discard, cc.nc, maxLingerBytes)
}

// maxLingerBytes bounds what lingerClose reads from a refused client.
const maxLingerBytes = 4 << 20

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}
