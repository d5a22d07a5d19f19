package security

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/configs"
)

// Starvation and bounds: no token holds more than pool.max_share of a pool,
// a client idle in a transaction is closed, and the prepared statements a
// client holds are capped in number and bytes.

// One token (by jti) holding transactions open gets at most half of a pool
// of four; another token keeps being served on the wire and over REST.
func TestStarvationAndBoundsFairShare(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, func(c *configs.Config) {
		c.Pool.Size = 4
		c.Pool.MaxShare = 0.5
		c.Pool.CheckoutTimeout = 2 * time.Second // long enough for a login on a loaded machine
	})
	tokA := mint(t, "a", []string{"send:" + v.orders + "*"}, nil)
	tokB := mint(t, "b", []string{"send:" + v.orders + "*"}, nil)
	ctx := ctxFor(t, 60*time.Second)
	var held []pgx.Tx
	refused := 0
	for i := 0; i < 4; i++ {
		conn := e.mustConnect(t, tokA, pgx.QueryExecModeCacheStatement)
		tx, err := conn.Begin(ctx)
		if err == nil {
			_, err = tx.Exec(ctx, sendSQL(v.orders))
		}
		switch pe := pgError(err); {
		case err == nil:
			held = append(held, tx)
		case pe != nil && pe.Code == "53300":
			refused++
			if tx != nil {
				tx.Rollback(ctx)
			}
		default:
			t.Errorf("token A's transaction %d: %v", i+1, err)
		}
	}
	if len(held) != 2 || refused != 2 {
		t.Errorf("token A holds %d backends of 4 (%d transactions refused with 53300); want 2 held and 2 refused (pool.max_share 0.5)", len(held), refused)
	}
	t.Run("other_token_while_held", func(t *testing.T) {
		conn := e.mustConnect(t, tokB, pgx.QueryExecModeCacheStatement)
		for i := 0; i < 3; i++ {
			if _, err := run(conn, pgx.QueryExecModeCacheStatement, sendSQL(v.orders)); err != nil {
				t.Errorf("token B's send %d while A holds its share: %v", i+1, err)
			}
		}
		e.restSends(t, tokB, v.orders)
		// B's own transaction and a REST call at the same time.
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, sendSQL(v.orders)); err != nil {
			t.Errorf("token B's transaction while A holds its share: %v", err)
		}
		e.restSends(t, tokB, v.orders)
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("token B's commit: %v", err)
		}
	})
	for _, tx := range held {
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("token A's commit: %v", err)
		}
	}
	t.Run("after_commit", func(t *testing.T) {
		for _, tok := range []string{tokA, tokB} {
			conn := e.mustConnect(t, tok, pgx.QueryExecModeCacheStatement)
			if _, err := run(conn, pgx.QueryExecModeCacheStatement, sendSQL(v.orders)); err != nil {
				t.Errorf("send after A committed: %v", err)
			}
			e.restSends(t, tok, v.orders)
		}
	})
}

// A client idle in a transaction longer than
// proxy.idle_in_transaction_timeout is closed with FATAL 25P03, its
// transaction rolled back and its backend given to a waiting client.
func TestStarvationAndBoundsIdleInTransaction(t *testing.T) {
	const idle = 2 * time.Second
	v := newVictims(t)
	e := newEnv(t, func(c *configs.Config) {
		c.Pool.Size = 1
		c.Pool.CheckoutTimeout = 4 * idle
		c.Proxy.IdleInTransactionTimeout = idle
	})
	tok := limitedToken(t, "send:"+v.orders+"*")

	t.Run("raw", func(t *testing.T) {
		before := stateOf(t, v.orders)
		r := e.mustRaw(t, tok, nil)
		if _, err := r.query("BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.query(`SELECT pgmq.send('` + v.orders + `', '{"idle":true}')`); err != nil {
			t.Fatal(err)
		}
		idleSince := time.Now()
		// Clients waiting for the only backend: wire and REST.
		var wg sync.WaitGroup
		var wireErr error
		var restCode int
		var wireDone, restDone time.Time
		cs := e.connString(t, tok)
		wg.Add(2)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(context.Background(), cs)
			if err == nil {
				defer conn.Close(context.Background())
				_, err = run(conn, pgx.QueryExecModeCacheStatement, sendSQL(v.orders))
			}
			wireErr, wireDone = err, time.Now()
		}()
		go func() {
			defer wg.Done()
			restCode, _ = e.restStatus(tok, "send", fmt.Sprintf(`{"queue_name":%q,"msg":{"waiting":true}}`, v.orders))
			restDone = time.Now()
		}()
		// The idle client hears FATAL 25P03, then the connection closes.
		r.nc.SetReadDeadline(time.Now().Add(idle + 5*time.Second))
		var fatal *pgconn.PgError
		for fatal == nil {
			msg, err := r.fe.Receive()
			if err != nil {
				t.Fatalf("the idle client: %v before any FATAL (after %s)", err, time.Since(idleSince))
			}
			if m, ok := msg.(*pgproto3.ErrorResponse); ok {
				fatal = pgconn.ErrorResponseToPgError(m)
			}
		}
		closedAfter := time.Since(idleSince)
		wantError(t, "idle in transaction", fatal, "FATAL", "25P03")
		if closedAfter < idle-200*time.Millisecond || closedAfter > idle+3*time.Second {
			t.Errorf("closed after %s idle, proxy.idle_in_transaction_timeout is %s", closedAfter, idle)
		}
		if _, err := r.fe.Receive(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("the connection stays open after the FATAL")
			}
		}
		wg.Wait()
		if wireErr != nil {
			t.Errorf("the waiting wire client: %v", wireErr)
		} else if d := wireDone.Sub(idleSince); d > idle+3*time.Second {
			t.Errorf("the waiting wire client was served after %s", d)
		}
		if restCode != http.StatusOK {
			t.Errorf("the waiting REST client: HTTP %d", restCode)
		} else if d := restDone.Sub(idleSince); d > idle+3*time.Second {
			t.Errorf("the waiting REST client was served after %s", d)
		}
		// The idle client's message was rolled back: only the waiting
		// clients' two messages were added.
		if after := stateOf(t, v.orders); after.Messages != before.Messages+2 {
			t.Errorf("orders went from %d to %d messages, want +2 (the idle transaction rolled back)", before.Messages, after.Messages)
		}
		e.serves(t, nil, tok, sendSQL(v.orders), nil)
	})

	t.Run("pgx", func(t *testing.T) {
		conn := e.mustConnect(t, tok, pgx.QueryExecModeCacheStatement)
		ctx := ctxFor(t, 30*time.Second)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, sendSQL(v.orders)); err != nil {
			t.Fatal(err)
		}
		// Another client needs the backend; it is served once the idle
		// one is closed.
		other := e.mustConnect(t, tok, pgx.QueryExecModeCacheStatement)
		if _, err := run(other, pgx.QueryExecModeCacheStatement, sendSQL(v.orders)); err != nil {
			t.Errorf("the waiting client: %v", err)
		}
		_, err = tx.Exec(ctx, sendSQL(v.orders))
		if pe := pgError(err); pe != nil {
			wantError(t, "idle in transaction (pgx)", err, "FATAL", "25P03")
		} else if err == nil {
			t.Errorf("the idle transaction is still open")
		} else {
			t.Logf("the idle client's next statement: %v", err)
		}
	})
}

// restStatus is rest without a testing.TB (for goroutines).
func (e *env) restStatus(tok, fn, body string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+e.st.RESTAddr()+"/pgmq/v1/"+fn, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// parseAll sends named Parses, each with its own Sync, and returns how many
// were accepted before the first refusal and the refusals' errors.
func parseAll(t *testing.T, r *rawConn, names []string, query func(i int) string) (accepted int, refusals []error) {
	t.Helper()
	for i, n := range names {
		res, err := r.roundTrip(&pgproto3.Parse{Name: n, Query: query(i)}, &pgproto3.Sync{})
		if err != nil {
			t.Fatalf("Parse %d (%s): the connection broke: %v %v", i+1, n, err, res.err())
		}
		if err := res.err(); err != nil {
			refusals = append(refusals, err)
			continue
		}
		if !res.has("ParseComplete") {
			t.Fatalf("Parse %d: %v", i+1, res.Kinds)
		}
		if len(refusals) == 0 {
			accepted++
		}
	}
	return accepted, refusals
}

// Named Parses of 1 MiB each, outside a transaction, are refused with 53400
// once over proxy.max_prepared_bytes (4 MiB here); the session stays
// usable.
func TestStarvationAndBoundsPreparedBytes(t *testing.T) {
	v := newVictims(t)
	e := newEnv(t, func(c *configs.Config) { c.Proxy.MaxPreparedBytes = 4 * configs.MiB })
	big := strings.Repeat("x", 1<<20)
	for _, tk := range sendTokens[:1] { // the limited token: the one the attacker held
		t.Run(tk.name, func(t *testing.T) {
			tok := tk.mint(t, v)
			r := e.mustRaw(t, tok, nil)
			names := make([]string, 8)
			for i := range names {
				names[i] = fmt.Sprintf("big_%d", i)
			}
			accepted, refusals := parseAll(t, r, names, func(i int) string { return fmt.Sprintf("SELECT '%s' AS b%d", big, i) })
			if accepted < 3 || accepted > 4 {
				t.Errorf("%d statements of 1 MiB accepted before the first refusal, want 3 or 4 (max_prepared_bytes 4MiB)", accepted)
			}
			if len(refusals) != len(names)-accepted {
				t.Errorf("after the first refusal, %d of %d Parses were refused, want all", len(refusals), len(names)-accepted)
			}
			for _, err := range refusals[:min(len(refusals), 2)] {
				wantError(t, "Parse over max_prepared_bytes", err, "ERROR", "53400")
			}
			if _, err := r.query(sendSQL(v.orders)); err != nil {
				t.Errorf("granted call on the same connection: %v", err)
			}
			if _, err := r.query("DEALLOCATE ALL"); err != nil {
				t.Errorf("DEALLOCATE ALL: %v", err)
			}
			if accepted, _ := parseAll(t, r, []string{"again"}, func(int) string { return "SELECT '" + big + "'" }); accepted != 1 {
				t.Errorf("after DEALLOCATE ALL a 1 MiB statement is refused")
			}
			e.serves(t, nil, tok, sendSQL(v.orders), nil)
		})
	}
}

// Many small named Parses are refused with 53400 past
// proxy.max_prepared_statements (50 here).
func TestStarvationAndBoundsPreparedCount(t *testing.T) {
	const limit = 50
	v := newVictims(t)
	e := newEnv(t, func(c *configs.Config) { c.Proxy.MaxPreparedStatements = limit })
	for _, tk := range sendTokens {
		t.Run(tk.name, func(t *testing.T) {
			tok := tk.mint(t, v)
			r := e.mustRaw(t, tok, nil)
			names := make([]string, limit+10)
			for i := range names {
				names[i] = fmt.Sprintf("small_%d", i)
			}
			accepted, refusals := parseAll(t, r, names, func(i int) string { return fmt.Sprintf("SELECT %d", i) })
			if accepted != limit || len(refusals) != 10 {
				t.Errorf("%d accepted, %d refused; want %d and 10 (max_prepared_statements %d)", accepted, len(refusals), limit, limit)
			}
			for _, err := range refusals[:min(len(refusals), 2)] {
				wantError(t, "Parse over max_prepared_statements", err, "ERROR", "53400")
			}
			if _, err := r.query(sendSQL(v.orders)); err != nil {
				t.Errorf("granted call on the same connection: %v", err)
			}
			if _, err := r.query("DEALLOCATE small_0"); err != nil {
				t.Errorf("DEALLOCATE small_0: %v", err)
			}
			if accepted, _ := parseAll(t, r, []string{"again"}, func(int) string { return "SELECT 'again'" }); accepted != 1 {
				t.Errorf("after DEALLOCATE of one statement, a new one is still refused")
			}
			e.serves(t, nil, tok, sendSQL(v.orders), nil)
		})
	}
}
