package proxy

import (
	"net"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// clientConn is the client's connection and the writer toward it.
type clientConn struct {
	// raw is the accepted connection; nc may become a TLS connection over
	// it. Deadlines and Close act on raw, so other goroutines never read
	// nc while the session goroutine replaces it.
	raw net.Conn
	nc  net.Conn
	// proto speaks the protocol to the client; nil before the startup
	// message.
	proto *pgproto3.Backend
	isTLS bool
	// wmu is held for writes to the client and changes of nc and proto.
	wmu       sync.Mutex
	closeOnce sync.Once
	// unreadInput: the client was refused while it may still be sending.
	unreadInput bool
}
