package proxy

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/configs"
	"mqstack/internal/backend"
	"mqstack/internal/wire"
	"mqstack/router"
)

// The per-message path of the relay, without a network: what the proxy
// itself costs per message (docs/performance.md). Run with
//
//	go test ./proxy -run '^$' -bench 'Relay|Bind' -benchmem

// segmentReader yields the same segment on every Read: a backend whose
// socket always has the next few messages ready.
type segmentReader struct{ seg []byte }

func (r *segmentReader) Read(p []byte) (int, error) {
	if len(p) < len(r.seg) {
		return copy(p, r.seg), nil
	}
	return copy(p, r.seg), nil
}

// BenchmarkRelayDataRow is the reader goroutine's work for one DataRow of a
// pgmq.read result (msg_id, read_ct, 2 timestamps, a 1 KB message): decode
// it from the backend, keep the connection's state current, and encode it
// toward the client, flushing only when the backend's buffer is drained.
func BenchmarkRelayDataRow(b *testing.B) {
	row := &pgproto3.DataRow{Values: [][]byte{[]byte("12345"), []byte("1"),
		[]byte("2026-01-01 00:00:00+00"), []byte("2026-01-01 00:00:30+00"), make([]byte, 1024)}}
	var seg []byte
	for range 4 { // four rows per read, as a 4 KB socket read delivers them
		var err error
		if seg, err = row.Encode(seg); err != nil {
			b.Fatal(err)
		}
	}
	fe := pgproto3.NewFrontend(&segmentReader{seg: seg}, io.Discard)
	s := &session{client: clientConn{out: wire.NewWriter(io.Discard)}}
	b.SetBytes(int64(len(seg) / 4))
	b.ReportAllocs()
	for b.Loop() {
		msg, err := fe.Receive()
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := msg.(*pgproto3.DataRow); !ok {
			b.Fatalf("got %T", msg)
		}
		s.client.relay(msg, fe.ReadBufferLen() == 0)
	}
}

// fakePostgres accepts backend logins and then swallows everything: enough
// for a pool to hand out a real *backend.Conn whose writes go nowhere.
func fakePostgres(b *testing.B) (port int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				be := pgproto3.NewBackend(nc, nc)
				if _, err := be.ReceiveStartupMessage(); err != nil {
					return
				}
				be.Send(&pgproto3.AuthenticationOk{})
				be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"})
				be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}})
				be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
				if be.Flush() != nil {
					return
				}
				io.Copy(io.Discard, nc)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// BenchmarkBindRewrite is the client goroutine's work for a Bind of a named
// prepared statement (pgx QueryExecModeCacheStatement) in the middle of a
// cycle: look the client's statement up, make sure the backend connection
// has it (the statement LRU), rename it to the backend name, record the
// portal and buffer the Bind toward the backend, then flush it as the
// cycle's Sync would (one write per cycle).
func BenchmarkBindRewrite(b *testing.B) {
	port := fakePostgres(b)
	pool := configs.Default().Pool
	m, err := backend.NewManager(backend.Options{
		Backends: []configs.BackendConfig{{Name: "bench", Host: "127.0.0.1", Port: port, Database: "db", SSLMode: "disable"}},
		Pool:     pool,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	c, err := m.Acquire(context.Background(), backend.Key{Backend: "bench", Database: "db", Role: "mq"}, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.MarkBroken(); c.Release() }) // before m.Close, which waits for it
	const sql = "SELECT pgmq.send($1, $2::jsonb)"
	st := newStmt(&pgproto3.Parse{Name: "stmtcache_1", Query: sql, ParameterOIDs: []uint32{25, 25}}, true)
	st.class = router.Classify(sql)
	s := &session{stmts: statements{named: map[string]*stmt{"stmtcache_1": st}}, backend: attachment{conn: c, open: true}}
	c.Stmts().Add(st.backendName)
	payload := make([]byte, 1024)
	bind := &pgproto3.Bind{Parameters: [][]byte{[]byte("orders"), payload}, ResultFormatCodes: []int16{1}}
	b.ReportAllocs()
	for b.Loop() {
		bind.PreparedStatement = "stmtcache_1"
		if err := s.handleBind(bind); err != nil {
			b.Fatal(err)
		}
		// The cycle's Sync flushes; Execute and Sync add a few bytes.
		s.backend.pending = 0
		if err := c.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
