package reliability

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/testenv"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// normalClient proves ordinary clients are served: a send and a read
// through the proxy and a send over REST.
func (e *env) normalClient(ctx context.Context, queue string) error {
	c, err := pgx.Connect(ctx, e.connString())
	if err != nil {
		return fmt.Errorf("proxy connect: %w", err)
	}
	defer c.Close(context.Background())
	var id int64
	if err := c.QueryRow(ctx, "SELECT pgmq.send($1, '{\"normal\":true}')", queue).Scan(&id); err != nil {
		return fmt.Errorf("proxy send: %w", err)
	}
	rows, err := c.Query(ctx, "SELECT msg_id FROM pgmq.read($1, 1, 1)", queue)
	if err != nil {
		return fmt.Errorf("proxy read: %w", err)
	}
	rows.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.restURL("send"),
		strings.NewReader(fmt.Sprintf(`{"queue_name":%q,"msg":{"normal":true}}`, queue)))
	req.Header.Set("Authorization", "Bearer "+testenv.Token(e.t, testSecret, auth.MintOptions{}))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("REST send: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("REST send: HTTP %d", resp.StatusCode)
	}
	return nil
}

// alongside runs normal clients in a loop while f runs and fails the test
// if any of them fails.
func (e *env) alongside(t *testing.T, queue string, f func()) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := e.normalClient(ctx, queue)
			cancel()
			if err != nil {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			} else {
				ok.Add(1)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	if bad.Load() > 0 || ok.Load() == 0 {
		t.Errorf("normal clients during the attack: %d ok, %d failed (%v)", ok.Load(), bad.Load(), firstErr.Load())
	}
}

// readUntilClosed reads what the server sends until it closes; it fails
// when the server keeps the connection open longer than d.
func readUntilClosed(t *testing.T, nc net.Conn, d time.Duration) []byte {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(nc)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s (got %q)", d, b)
	}
	return b
}

// rawLogin logs in through the proxy speaking the protocol by hand and
// returns the connection at ReadyForQuery.
func rawLogin(t *testing.T, e *env) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", e.st.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	fe := pgproto3.NewFrontend(nc, nc)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "mq", "database": "postgres"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.AuthenticationCleartextPassword:
			fe.Send(&pgproto3.PasswordMessage{Password: testenv.Token(t, testSecret, auth.MintOptions{})})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
		case *pgproto3.ErrorResponse:
			t.Fatalf("login refused: %s %s", m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			nc.SetDeadline(time.Time{})
			return nc
		}
	}
}

func TestHostileClients(t *testing.T) {
	e := newEnv(t, envOptions{PoolSize: 4, LoginTimeout: 3 * time.Second, ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second})
	e.createQueue(t, "hostile")

	t.Run("startup_1GB_length", func(t *testing.T) {
		before := heapInUse()
		e.alongside(t, "hostile", func() {
			for range 50 {
				nc, err := net.Dial("tcp", e.st.ProxyAddr())
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				hdr := binary.BigEndian.AppendUint32(nil, 1<<30)
				hdr = binary.BigEndian.AppendUint32(hdr, 3<<16)
				nc.Write(hdr)
				got := readUntilClosed(t, nc, 2*time.Second)
				nc.Close()
				if !strings.Contains(string(got), "08P01") || !strings.Contains(string(got), "invalid length of startup packet") {
					t.Fatalf("1 GB startup packet: got %q", got)
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("refused after %s", d)
				}
			}
		})
		if grew := int64(heapInUse()) - int64(before); grew > 32<<20 {
			t.Errorf("heap grew by %d bytes", grew)
		}
	})

	t.Run("message_bad_length", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			length uint32
			code   string
		}{
			{"negative", 0xffffffff, "08P01"},
			{"too_small", 3, "08P01"},
			{"1GB", 1 << 30, "54000"},
			{"max_int32", 0x7fffffff, "54000"},
		} {
			before := heapInUse()
			e.alongside(t, "hostile", func() {
				nc := rawLogin(t, e)
				defer nc.Close()
				start := time.Now()
				nc.Write(append([]byte{'Q'}, binary.BigEndian.AppendUint32(nil, tc.length)...))
				got := readUntilClosed(t, nc, 2*time.Second)
				if !strings.Contains(string(got), tc.code) {
					t.Errorf("%s length: want %s, got %q", tc.name, tc.code, got)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("%s length: cut off after %s", tc.name, d)
				}
			})
			if grew := int64(heapInUse()) - int64(before); grew > 32<<20 {
				t.Errorf("%s length: heap grew by %d bytes", tc.name, grew)
			}
		}
	})

	// A logged-in client that declares a large message, sends its first
	// kilobyte and stalls makes the proxy keep a buffer of the declared size
	// (a message is read into one buffer; the proxy holds none while no
	// byte of it has come): memory is bounded by max_clients x
	// max_message_bytes, and given back when the client goes.
	t.Run("declared_message_never_sent", func(t *testing.T) {
		const clients, declared = 4, 48 << 20
		before := heapInUse()
		var conns []net.Conn
		e.alongside(t, "hostile", func() {
			for range clients {
				nc := rawLogin(t, e)
				conns = append(conns, nc)
				head := append([]byte{'Q'}, binary.BigEndian.AppendUint32(nil, declared)...)
				nc.Write(append(head, make([]byte, 1024)...))
			}
			// The proxy takes a buffer of the declared size for the part of
			// the message that came.
			testenv.WaitFor(t, 10*time.Second, "the proxy to take buffers for the declared messages", func() bool {
				return int64(heapInUse())-int64(before) >= clients*declared*9/10
			})
		})
		during := heapInUse()
		for _, nc := range conns {
			nc.Close()
		}
		var after uint64
		testenv.WaitFor(t, 10*time.Second, "the buffers to be freed", func() bool {
			after = heapInUse()
			return int64(after)-int64(before) < 16<<20
		})
		perClient := (int64(during) - int64(before)) / clients
		t.Logf("declared %d-byte messages: %d bytes of heap per client while waiting (max_message_bytes %d), %+d bytes after they left",
			declared, perClient, e.cfg.Proxy.MaxMessageBytes, int64(after)-int64(before))
		if perClient > int64(e.cfg.Proxy.MaxMessageBytes)+4<<20 {
			t.Errorf("%d bytes per client, over max_message_bytes", perClient)
		}
	})

	t.Run("token_with_10000_grants", func(t *testing.T) {
		// auth.Mint refuses to make it (the mq claim is capped); sign it by hand.
		grants := make([]map[string]any, 10000)
		for i := range grants {
			grants[i] = map[string]any{"queues": []string{fmt.Sprintf("queue_%05d_*", i)}, "ops": []string{"send", "read"}}
		}
		tok := signHS256(t, map[string]any{"role": "mq", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
			"mq": map[string]any{"grants": grants}})
		if _, err := newTestVerifier(t).Verify(tok); err == nil {
			t.Fatal("the verifier accepts a 10,000-grant token")
		}
		t.Logf("token of %d bytes", len(tok))
		before := heapInUse()
		e.alongside(t, "hostile", func() {
			// Over the wire: the password message is refused.
			start := time.Now()
			_, err := pgx.Connect(context.Background(), e.connString()+" password="+tok)
			if err == nil || !strings.Contains(err.Error(), "28P01") {
				t.Errorf("proxy accepted or misreported a 10,000-grant token: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("proxy took %s to refuse it", d)
			}
			// Over REST.
			start = time.Now()
			req, _ := http.NewRequest(http.MethodPost, e.restURL("list_queues"), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("REST: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge && resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("REST answered a 10,000-grant token with HTTP %d", resp.StatusCode)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("REST took %s to refuse it", d)
			}
		})
		if grew := int64(heapInUse()) - int64(before); grew > 32<<20 {
			t.Errorf("heap grew by %d bytes", grew)
		}
	})

	t.Run("slowloris_http", func(t *testing.T) {
		const n = 200
		before := heapInUse()
		e.alongside(t, "hostile", func() {
			var wg sync.WaitGroup
			var cutOff, late atomic.Int64
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					nc, err := net.Dial("tcp", e.st.RESTAddr())
					if err != nil {
						late.Add(1)
						return
					}
					defer nc.Close()
					start := time.Now()
					// Half of them trickle headers, half a body.
					var head string
					if i%2 == 0 {
						head = "POST /pgmq/v1/list_queues HTTP/1.1\r\nHost: x\r\n"
					} else {
						head = "POST /pgmq/v1/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nAuthorization: Bearer " + restToken(e) + "\r\n\r\n{"
					}
					if _, err := nc.Write([]byte(head)); err != nil {
						late.Add(1)
						return
					}
					for time.Since(start) < 10*time.Second {
						time.Sleep(200 * time.Millisecond) // a byte every 200ms: the slowloris under test
						if _, err := nc.Write([]byte("x")); err != nil {
							break
						}
					}
					nc.SetReadDeadline(time.Now().Add(time.Second))
					io.Copy(io.Discard, nc)
					if time.Since(start) < 5*time.Second {
						cutOff.Add(1)
					} else {
						late.Add(1)
					}
				}()
			}
			wg.Wait()
			if cutOff.Load() != n {
				t.Errorf("slowloris: %d of %d cut off within 5s (%d late)", cutOff.Load(), n, late.Load())
			}
		})
		if grew := int64(heapInUse()) - int64(before); grew > 32<<20 {
			t.Errorf("heap grew by %d bytes", grew)
		}
	})

	t.Run("10000_silent_connections", func(t *testing.T) {
		e.tenThousandSilent(t)
	})
}

// signHS256 makes a JWT with any claims, signed with the test secret.
func signHS256(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

func newTestVerifier(t testing.TB) *auth.Verifier {
	t.Helper()
	cfg := configs.Default().Auth
	cfg.HMACSecret = configs.Secret(testSecret)
	v, err := auth.NewVerifier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The silent connections are opened by a child process (this test binary,
// see TestMain), so that neither process needs more than 10,000 files.
const (
	idleHelperEnv   = "MQSTACK_RELIABILITY_IDLE_CLIENTS"
	idleCount       = 10000
	idleCountEnv    = "MQSTACK_RELIABILITY_IDLE_COUNT"
	idleResultTitle = "idle-result "
)

type idleResult struct {
	Connected, DialErrors, ClosedByServer, StillOpen int
	MaxLifeMS, MinLifeMS                             int64
}

func raiseNoFile() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}

// idleClientsHelper is the child: it opens the connections, says so, and
// waits for the server to close each one.
func idleClientsHelper(addr string) int {
	raiseNoFile()
	n, _ := strconv.Atoi(os.Getenv(idleCountEnv))
	var mu sync.Mutex
	res := idleResult{MinLifeMS: 1 << 40}
	type opened struct {
		nc net.Conn
		at time.Time
	}
	conns := make(chan opened, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.DialErrors++
				return
			}
			res.Connected++
			conns <- opened{nc, time.Now()}
		}()
	}
	wg.Wait()
	close(conns)
	fmt.Println("connected", res.Connected)
	var rg sync.WaitGroup
	for o := range conns {
		rg.Add(1)
		go func() {
			defer rg.Done()
			nc, start := o.nc, o.at
			nc.SetReadDeadline(time.Now().Add(60 * time.Second))
			_, err := io.Copy(io.Discard, nc)
			life := time.Since(start).Milliseconds()
			nc.Close()
			mu.Lock()
			defer mu.Unlock()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				res.StillOpen++
				return
			}
			res.ClosedByServer++
			res.MaxLifeMS = max(res.MaxLifeMS, life)
			res.MinLifeMS = min(res.MinLifeMS, life)
		}()
	}
	rg.Wait()
	out, _ := json.Marshal(res)
	fmt.Println(idleResultTitle + string(out))
	return 0
}

func (e *env) tenThousandSilent(t *testing.T) {
	raiseNoFile()
	loginTimeout := e.cfg.Proxy.ClientLoginTimeout
	goroutinesBefore := runtime.NumGoroutine()
	heapBefore := heapInUse()
	closedBefore := e.connectionsClosed(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), idleHelperEnv+"="+e.st.ProxyAddr(), fmt.Sprintf("%s=%d", idleCountEnv, idleCount))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	var res idleResult
	var peakHeap uint64
	var peakGoroutines int
	var opening time.Duration // how long the helper took to open them all
	e.alongside(t, "hostile", func() {
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "connected "):
				opening = time.Since(start)
				t.Logf("%s silent connections open after %s", strings.TrimPrefix(line, "connected "), opening.Round(time.Millisecond))
				peakGoroutines = runtime.NumGoroutine()
				peakHeap = heapInUse()
			case strings.HasPrefix(line, idleResultTitle):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, idleResultTitle)), &res); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	t.Logf("silent connections: %+v; peak %d goroutines, heap +%d KiB (%.1f KiB each)", res, peakGoroutines,
		(int64(peakHeap)-int64(heapBefore))/1024, float64(int64(peakHeap)-int64(heapBefore))/1024/float64(max(res.Connected, 1)))
	if res.Connected != idleCount || res.ClosedByServer != idleCount {
		t.Fatalf("want %d connections opened and closed by the proxy, got %+v", idleCount, res)
	}
	// A connection's life, as the helper sees it, starts at its dial; the
	// proxy's login clock starts at accept, which on a loaded machine lags
	// the dials by up to the time it took to open them all.
	if limit := loginTimeout + 3*time.Second + opening; res.MaxLifeMS > limit.Milliseconds() {
		t.Errorf("a silent connection lived %d ms, over client_login_timeout %s plus the %s the dials took and 3s",
			res.MaxLifeMS, loginTimeout, opening.Round(time.Millisecond))
	}
	if perConn := (int64(peakHeap) - int64(heapBefore)) / int64(idleCount); perConn > 32<<10 {
		t.Errorf("%d bytes of heap per silent connection", perConn)
	}
	if closed := e.connectionsClosed(t) - closedBefore; closed < idleCount {
		t.Errorf("mqstack_connections_closed_total grew by %v, want >= %d", closed, idleCount)
	}
	testenv.WaitFor(t, 10*time.Second, "the proxy's goroutines to go back down", func() bool {
		return runtime.NumGoroutine() < goroutinesBefore+50
	})
}
