package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestWriterFlushesInOneWriteAndHoldsNothingAfter(t *testing.T) {
	var out countingWriter
	w := NewWriter(&out)
	big := &pgproto3.DataRow{Values: [][]byte{bytes.Repeat([]byte("x"), 3000)}}
	w.Send(&pgproto3.BindComplete{})
	w.Send(big)
	w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.writes != 1 {
		t.Fatalf("%d writes, want 1", out.writes)
	}
	var want []byte
	for _, m := range []Encoder{&pgproto3.BindComplete{}, big, &pgproto3.ReadyForQuery{TxStatus: 'I'}} {
		want, _ = m.Encode(want)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("written bytes differ from the messages' encoding")
	}
	if w.buf != nil {
		t.Fatal("an idle writer still holds a buffer")
	}
	if err := w.Flush(); err != nil || out.writes != 1 {
		t.Fatalf("an empty flush wrote (%d writes, %v)", out.writes, err)
	}
}

type badMessage struct{}

func (badMessage) Encode(dst []byte) ([]byte, error) { return dst, errors.New("cannot encode") }

func TestWriterEncodingErrorWritesNothing(t *testing.T) {
	var out countingWriter
	w := NewWriter(&out)
	w.Send(&pgproto3.Sync{})
	w.Send(badMessage{})
	if err := w.Flush(); err == nil || out.writes != 0 {
		t.Fatalf("flush after a bad message: %v, %d writes", err, out.writes)
	}
	w.Send(&pgproto3.Sync{})
	if err := w.Flush(); err != nil || out.writes != 1 || out.Len() != 5 {
		t.Fatalf("the next flush: %v, %d writes, %d bytes", err, out.writes, out.Len())
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return c.Buffer.Write(p) }
