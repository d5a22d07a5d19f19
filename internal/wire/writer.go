// Package wire holds the proxy's own protocol plumbing where pgproto3's
// costs showed in profiles: a write buffer that is neither reallocated for
// every message over 1 KiB (pgproto3 shrinks its buffer back to 1 KiB after
// each flush) nor held by idle connections.
package wire

import (
	"io"
	"sync"
)

// Encoder is a protocol message (every pgproto3 message is one).
type Encoder interface {
	Encode(dst []byte) ([]byte, error)
}

// Buffers kept between flushes come from one pool; one that grew past
// maxPooled (a large row) is left to the garbage collector instead.
const (
	initialBuffer = 4 << 10
	maxPooled     = 64 << 10
)

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, initialBuffer); return &b }}

// Writer buffers messages toward one connection and writes them with one
// call on Flush. Between flushes it holds no buffer, so an idle connection
// costs no write memory. It is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf *[]byte
	err error // the first encoding error since the last Flush
}

// NewWriter writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Send appends m to the buffer. A message that fails to encode is left
// out, and the next Flush reports the failure without writing.
func (w *Writer) Send(m Encoder) {
	if w.buf == nil {
		w.buf = buffers.Get().(*[]byte)
	}
	out, err := m.Encode(*w.buf)
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}
	*w.buf = out
}

// Flush writes what is buffered in one call and gives the buffer back.
func (w *Writer) Flush() error {
	buf, encErr := w.buf, w.err
	w.buf, w.err = nil, nil
	if buf == nil && encErr == nil {
		return nil
	}
	var err error
	if buf != nil {
		if encErr == nil && len(*buf) > 0 {
			_, err = w.w.Write(*buf)
		}
		release(buf)
	}
	if encErr != nil {
		return encErr
	}
	return err
}

func release(buf *[]byte) {
	if cap(*buf) > maxPooled {
		return
	}
	*buf = (*buf)[:0]
	buffers.Put(buf)
}
