package backend

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// QueryRow runs one statement with text parameters on the unnamed statement:
// the first row as text, NULL as nil, no row as nil; a Postgres error leaves
// the connection usable, a canceled context breaks it.
func TestQueryRow(t *testing.T) {
	m, _ := newManager(t, nil)
	ctx := context.Background()
	c, err := m.Acquire(ctx, key, "")
	if err != nil {
		t.Fatal(err)
	}
	owner := new(int)
	c.SetUnnamed(owner, 1)
	if !c.HoldsUnnamed(owner, 1) || c.HoldsUnnamed(owner, 2) {
		t.Fatal("HoldsUnnamed after SetUnnamed")
	}
	one := "1"
	row, err := c.QueryRow(ctx, "SELECT $1::int + 1, NULL::text, $2::text IS NULL", []*string{&one, nil})
	if err != nil {
		t.Fatal(err)
	}
	if len(row) != 3 || string(row[0]) != "2" || row[1] != nil || string(row[2]) != "t" {
		t.Fatalf("row %q", row)
	}
	if c.HoldsUnnamed(owner, 1) {
		t.Fatal("QueryRow left the unnamed statement to its previous owner")
	}
	if row, err := c.QueryRow(ctx, "SELECT 1 WHERE false", nil); err != nil || row != nil {
		t.Fatalf("no row: %q %v", row, err)
	}
	_, err = c.QueryRow(ctx, "SELECT 1/0", nil)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "22012" || c.Broken() || c.TxStatus != 'I' {
		t.Fatalf("division by zero: %v broken=%v tx=%c", err, c.Broken(), c.TxStatus)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := c.QueryRow(cctx, "SELECT pg_sleep(2)", nil); !errors.Is(err, context.Canceled) || !c.Broken() {
		t.Fatalf("canceled: %v broken=%v", err, c.Broken())
	}
	c.Release()
}
