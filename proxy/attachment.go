package proxy

import (
	"sync"

	"mqstack/internal/backend"
)

// attachment is the backend connection attached to the session and the
// relay's accounting of it. Guarded by s.mu, except pending and bw.
type attachment struct {
	conn       *backend.Conn // nil when none is attached
	inflight   int           // sync points (Sync, Query, FunctionCall) sent, ReadyForQuery not yet seen
	open       bool          // messages sent since the last sync point
	cycle      uint64        // sync points sent on conn
	doneCycles uint64        // ReadyForQuery seen on conn
	parseq     []pqEntry     // how to relay each ParseComplete/CloseComplete to come
	copyIn     bool          // the backend is in COPY FROM STDIN
	pinned     string        // pin cause; "" while the session is pooled
	// tainted: the attached backend ran something the router cannot vouch
	// for (or settings the proxy replays changed on it): it is reset
	// before it goes back to the pool.
	tainted    bool
	readerDone chan struct{} // closed when the reader of conn has ended
	// pending counts bytes sent to the backend since its last flush
	// (client goroutine only).
	pending int
	// bw is held while the client goroutine flushes to the backend; the
	// reader takes it before releasing the connection, so a flush that
	// delivered its last byte has also finished with the buffer.
	bw sync.Mutex
}

// betweenTransactions reports whether the session is between transactions.
func (a *attachment) betweenTransactions() bool {
	return a.conn == nil || (a.inflight == 0 && !a.open && a.conn.TxStatus == 'I')
}
