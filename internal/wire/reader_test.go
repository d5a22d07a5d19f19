package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// tcpPair is a connected loopback TCP pair: the Reader's system-call path.
func tcpPair(t *testing.T) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); accepted <- c }()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func encodeAll(t *testing.T, msgs ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// Messages arrive whole, split in odd places, and larger than the buffer,
// over a socket (system calls) and a pipe (plain reads).
func TestReaderMessages(t *testing.T) {
	big := bytes.Repeat([]byte("q"), 3*readBuffer)
	msgs := []pgproto3.FrontendMessage{
		&pgproto3.Parse{Query: "SELECT pgmq.send($1, $2)"},
		&pgproto3.Bind{Parameters: [][]byte{[]byte("orders"), big}},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.PasswordMessage{Password: "token"},
		&pgproto3.Terminate{},
	}
	all := encodeAll(t, msgs...)
	for _, kind := range []string{"tcp", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			var client, server net.Conn
			if kind == "tcp" {
				client, server = tcpPair(t)
			} else {
				client, server = net.Pipe()
				defer client.Close()
			}
			r := NewReader(server, 0)
			if (r.raw != nil) != (kind == "tcp") {
				t.Fatalf("raw reads: %v", r.raw != nil)
			}
			go func() {
				wire := all
				for _, cut := range []int{3, 7, 40, 5000, len(wire)} { // pieces of growing size
					if cut > len(wire) {
						cut = len(wire)
					}
					client.Write(wire[:cut])
					wire = wire[cut:]
				}
				client.Close()
			}()
			for i, want := range msgs {
				got, err := r.Receive()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(encodeAll(t, got), encodeAll(t, want)) {
					t.Fatalf("message %d: got %#v", i, got)
				}
			}
			if _, err := r.Receive(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last message: %v, want EOF", err)
			}
		})
	}
}

func TestReaderBoundsAndTruncation(t *testing.T) {
	client, server := tcpPair(t)
	r := NewReader(server, 100)
	client.Write(encodeAll(t, &pgproto3.Query{String: string(bytes.Repeat([]byte("x"), 200))}))
	_, err := r.Receive()
	var tooLong *pgproto3.ExceededMaxBodyLenErr
	if !errors.As(err, &tooLong) || tooLong.ActualBodyLen != 205-4 {
		t.Fatalf("over the bound: %v", err)
	}

	client, server = tcpPair(t)
	r = NewReader(server, 0)
	q := encodeAll(t, &pgproto3.Query{String: "SELECT 1"})
	client.Write(q[:len(q)-2])
	client.Close()
	if _, err := r.Receive(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut inside a message: %v, want unexpected EOF", err)
	}

	client, server = tcpPair(t)
	r = NewReader(server, 0)
	client.Write([]byte{'Q', 0xff, 0xff, 0xff, 0xfb})
	if _, err := r.Receive(); err == nil || errors.As(err, &tooLong) {
		t.Fatalf("negative length: %v, want an invalid length", err)
	}

	client, server = tcpPair(t)
	r = NewReader(server, 0)
	client.Write([]byte{'?', 0, 0, 0, 4})
	if _, err := r.Receive(); err == nil {
		t.Fatal("unknown message type accepted")
	}
}

// A read deadline that passes in the middle of a message (the proxy's park
// and idle deadlines) loses nothing: the next Receive returns the whole
// message, header included, whether the header or part of the body had
// arrived.
func TestReaderDeadlineMidMessage(t *testing.T) {
	big := make([]byte, 3*readBuffer)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	msg := encodeAll(t, &pgproto3.Query{String: string(big)})
	for _, cut := range []int{3, 5, 9, readBuffer + 100} {
		client, server := tcpPair(t)
		r := NewReader(server, 0)
		if _, err := client.Write(msg[:cut]); err != nil {
			t.Fatal(err)
		}
		server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var ne net.Error
		if _, err := r.Receive(); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("cut %d: first Receive: %v, want a timeout", cut, err)
		}
		if r.Unread() != cut {
			t.Fatalf("cut %d: %d bytes kept unread, want %d", cut, r.Unread(), cut)
		}
		server.SetReadDeadline(time.Time{})
		if _, err := client.Write(msg[cut:]); err != nil {
			t.Fatal(err)
		}
		got, err := r.Receive()
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if q, ok := got.(*pgproto3.Query); !ok || q.String != string(big) {
			t.Fatalf("cut %d: got %T, not the whole query", cut, got)
		}
	}
}
