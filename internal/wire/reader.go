package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5/pgproto3"
)

// readBuffer is the size of the buffer a read fills: Postgres clients send
// a cycle of extended-protocol messages in one write, and one read takes it.
const readBuffer = 8 << 10

var readBuffers = sync.Pool{New: func() any { b := make([]byte, readBuffer); return &b }}

// Reader reads a client's frontend messages (after its startup packet).
// It holds a read buffer only while it has unread bytes: on a plain
// socket, the wait for the client's next bytes happens with no buffer
// (the buffer is taken for each read system call and given back when the
// call finds nothing), so an idle client costs no read memory. (pgproto3
// keeps 8 KiB per connection for its lifetime.) Over TLS, reads go through
// the TLS connection, which buffers anyway.
//
// A message returned by Receive is valid until the next call to Receive:
// its slices point into the buffer, which goes back to a pool shared by
// every connection.
type Reader struct {
	conn    io.Reader
	raw     syscall.RawConn // nil: read through conn
	buf     *[]byte
	rp, wp  int
	maxBody int
}

// NewReader reads from c; maxBody bounds a message's body (0: no bound).
func NewReader(c net.Conn, maxBody int) *Reader {
	r := &Reader{conn: c, maxBody: maxBody}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
		}
	}
	return r
}

// Unread is the number of bytes read from the connection and not yet
// returned by Receive.
func (r *Reader) Unread() int { return r.wp - r.rp }

// SetMaxBodyLen bounds the body of the messages read from now on.
func (r *Reader) SetMaxBodyLen(n int) { r.maxBody = n }

// Receive reads the next message. A message whose body is over the bound
// is an *pgproto3.ExceededMaxBodyLenErr (its body is left unread). A
// password message ('p') is read as a cleartext PasswordMessage, the only
// authentication the proxy asks for.
//
// Nothing is consumed until the whole message has arrived: a read that
// fails in the middle of one (a deadline passing) leaves its bytes unread,
// and the next Receive starts again from its header.
func (r *Reader) Receive() (pgproto3.FrontendMessage, error) {
	if err := r.fill(5); err != nil {
		return nil, err
	}
	hdr := (*r.buf)[r.rp : r.rp+5]
	typ := hdr[0]
	size := int(int32(binary.BigEndian.Uint32(hdr[1:]))) // over 2 GiB reads negative, as Postgres reads it
	if size < 4 {
		return nil, fmt.Errorf("invalid message length %d", size)
	}
	body := size - 4
	if r.maxBody > 0 && body > r.maxBody {
		return nil, &pgproto3.ExceededMaxBodyLenErr{MaxExpectedBodyLen: r.maxBody, ActualBodyLen: body}
	}
	msg := newMessage(typ)
	if msg == nil {
		return nil, fmt.Errorf("unknown message type: %c", typ)
	}
	if err := r.fill(5 + body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	start := r.rp + 5
	b := (*r.buf)[start : start+body : start+body]
	r.rp = start + body
	if err := msg.Decode(b); err != nil {
		return nil, err
	}
	return msg, nil
}

func newMessage(typ byte) pgproto3.FrontendMessage {
	switch typ {
	case 'B':
		return &pgproto3.Bind{}
	case 'C':
		return &pgproto3.Close{}
	case 'D':
		return &pgproto3.Describe{}
	case 'E':
		return &pgproto3.Execute{}
	case 'F':
		return &pgproto3.FunctionCall{}
	case 'H':
		return &pgproto3.Flush{}
	case 'P':
		return &pgproto3.Parse{}
	case 'Q':
		return &pgproto3.Query{}
	case 'S':
		return &pgproto3.Sync{}
	case 'X':
		return &pgproto3.Terminate{}
	case 'd':
		return &pgproto3.CopyData{}
	case 'c':
		return &pgproto3.CopyDone{}
	case 'f':
		return &pgproto3.CopyFail{}
	case 'p':
		return &pgproto3.PasswordMessage{}
	}
	return nil
}

// fill reads until n bytes are unread, consuming none.
func (r *Reader) fill(n int) error {
	for r.wp-r.rp < n {
		r.makeRoom(n)
		if err := r.read(n); err != nil { // a read that fails added no byte
			return err
		}
	}
	return nil
}

// makeRoom makes sure the buffer can hold n unread bytes: a buffer taken
// for it (a larger one than the pool's for a long message), or the unread
// bytes moved to its start.
func (r *Reader) makeRoom(n int) {
	unread := r.wp - r.rp
	if unread == 0 && r.buf != nil && len(*r.buf) > readBuffer {
		r.releaseBuffer() // a long message's buffer is not kept for the next
	}
	if r.buf != nil && len(*r.buf) >= n {
		if len(*r.buf)-r.rp < n {
			copy(*r.buf, (*r.buf)[r.rp:r.wp])
			r.rp, r.wp = 0, unread
		}
		return
	}
	var nb *[]byte
	if n <= readBuffer {
		nb = readBuffers.Get().(*[]byte)
	} else {
		b := make([]byte, n)
		nb = &b
	}
	if r.buf != nil {
		copy(*nb, (*r.buf)[r.rp:r.wp])
		r.releaseBuffer()
	}
	r.buf, r.rp, r.wp = nb, 0, unread
}

// releaseBuffer gives the buffer back (its unread bytes, if any, are lost:
// callers release only an empty buffer or one they copied from).
func (r *Reader) releaseBuffer() {
	if r.buf != nil && len(*r.buf) == readBuffer {
		readBuffers.Put(r.buf)
	}
	r.buf, r.rp, r.wp = nil, 0, 0
}

// read reads once into the free end of the buffer, which must have room
// for n unread bytes.
func (r *Reader) read(n int) error {
	if r.raw == nil {
		n, err := r.conn.Read((*r.buf)[r.wp:])
		r.wp += n
		if n > 0 {
			return nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	return r.readRaw(n)
}

// readRaw is read on the socket itself: the read system call, and while it
// finds nothing, the wait for the socket to become readable, without a
// buffer when no byte is unread.
func (r *Reader) readRaw(need int) error {
	var got int
	var rerr error
	err := r.raw.Read(func(fd uintptr) bool {
		if r.buf == nil {
			r.makeRoom(need)
		}
		for {
			n, err := syscall.Read(int(fd), (*r.buf)[r.wp:])
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				if r.rp == r.wp {
					r.releaseBuffer()
				}
				return false
			case err != nil:
				rerr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
			case n == 0:
				rerr = io.EOF
			}
			got = max(n, 0)
			return true
		}
	})
	r.wp += got // 0 when the wait ended in an error, the buffer given back
	if err != nil {
		return err
	}
	return rerr
}
