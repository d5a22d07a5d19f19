package proxy

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/router"
)

func TestParseOptions(t *testing.T) {
	got, err := parseOptions(`-c search_path=a,b --statement-timeout=5s -cwork_mem=4MB -c application_name=a\ b`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"search_path": "a,b", "statement_timeout": "5s", "work_mem": "4MB", "application_name": "a b"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := parseOptions("-x"); err == nil {
		t.Error("-x accepted")
	}
}

func startupBytes(code uint32, kv ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, code)
	for _, s := range kv {
		b = append(b, s...)
		b = append(b, 0)
	}
	return append(b, 0)
}

func TestParseStartup(t *testing.T) {
	p, err := parseStartup(startupBytes(3<<16, "user", "mq", "database", "db", "options", "-c a=b"))
	if err != nil || p.kind != kindStartup || p.params["user"] != "mq" {
		t.Fatalf("%+v %v", p, err)
	}
	cs, err := interpretStartup(p)
	if err != nil || cs.settings["a"] != "b" || cs.database != "db" {
		t.Fatalf("%+v %v", cs, err)
	}
	for _, bad := range [][]byte{
		{0, 4}, startupBytes(2 << 16), append(startupBytes(3<<16, "user", "mq"), 'x'),
		binary.BigEndian.AppendUint32(nil, 3<<16),
	} {
		if _, err := parseStartup(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	p, _ = parseStartup(startupBytes(3<<16, "user", "mq", "replication", "database"))
	if _, err := interpretStartup(p); err == nil {
		t.Error("replication accepted")
	}
	p, _ = parseStartup(startupBytes(3<<16, "database", "x"))
	if _, err := interpretStartup(p); err == nil {
		t.Error("no user accepted")
	}
}

// FuzzStartup feeds untrusted bytes to the startup parser and to the
// frontend message decoder the session uses afterwards.
func FuzzStartup(f *testing.F) {
	f.Add(startupBytes(3<<16, "user", "mq", "database", "postgres"))
	f.Add(startupBytes(3<<16|2, "user", "mq", "_pq_.x", "1", "options", `-c a=b\ c`))
	f.Add(binary.BigEndian.AppendUint32(nil, codeSSLRequest))
	f.Add(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, codeCancelRequest), 7), 9))
	f.Add([]byte("Q\x00\x00\x00\x0dSELECT 1\x00"))
	r := router.New(64)
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, err := parseStartup(data); err == nil && p.kind == kindStartup {
			if cs, err := interpretStartup(p); err == nil && cs.user == "" {
				t.Fatal("startup without user accepted")
			}
		}
		if len(data) <= maxStartupLen {
			pkt := binary.BigEndian.AppendUint32(nil, uint32(len(data)+4))
			readStartup(bytes.NewReader(append(pkt, data...)))
		}
		be := pgproto3.NewBackend(bytes.NewReader(data), &bytes.Buffer{})
		be.SetMaxBodyLen(1 << 16)
		for range 16 {
			msg, err := be.Receive()
			if err != nil {
				break
			}
			if q, ok := msg.(*pgproto3.Query); ok {
				pinOf(r.Classify(q.String))
			}
			if p, ok := msg.(*pgproto3.Parse); ok {
				pinOf(r.Classify(p.Query))
				newStmt(p, true)
			}
		}
	})
}
