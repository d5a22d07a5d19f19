package backend

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"mqstack/configs"
	"mqstack/internal/wire"
)

// connString is the libpq connection string of key on backend b, without
// the password (passfile excepted).
func connString(b configs.BackendConfig, key Key) string {
	cs := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s connect_timeout=10",
		quoteConnValue(b.Host), b.Port, quoteConnValue(key.Database), quoteConnValue(key.Role), quoteConnValue(b.SSLMode))
	if b.Passfile != "" {
		cs += " passfile=" + quoteConnValue(b.Passfile)
	}
	return cs
}

// dial logs in to the backend as key.Role.
func dial(ctx context.Context, b configs.BackendConfig, key Key, pw password, maxBody int) (*Conn, error) {
	cfg, err := pgconn.ParseConfig(connString(b, key))
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", key, err)
	}
	p, err := pw(key.Role)
	if err != nil {
		return nil, fmt.Errorf("backend %s: password of role %s: %w", key, key.Role, err)
	}
	if p != "" {
		cfg.Password = p
	}
	// Startup values beat role and database defaults (ALTER ROLE ... SET),
	// and DISCARD ALL returns to them: whatever a client stored there, a
	// backend starts reading statements as the proxy's router does.
	cfg.RuntimeParams["standard_conforming_strings"] = "on"
	cfg.RuntimeParams["client_encoding"] = "UTF8"
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &ConnectError{Key: key, Err: err}
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, fmt.Errorf("backend %s: %w", key, err)
	}
	fe := hc.Frontend
	if fe.ReadBufferLen() == 0 {
		// Read the connection directly, not through pgconn's background
		// reader, which it no longer needs (a lock per read).
		fe = pgproto3.NewFrontend(hc.Conn, hc.Conn)
	}
	if maxBody > 0 {
		fe.SetMaxBodyLen(maxBody)
	}
	c := &Conn{
		Key:      key,
		Params:   map[string]string{},
		applied:  map[string]string{},
		TxStatus: hc.TxStatus,
		fe:       fe,
		out:      wire.NewWriter(hc.Conn),
		nc:       hc.Conn,
		pid:      hc.PID,
		secret:   hc.SecretKey,
		login:    map[string]string{},
		created:  time.Now(),
	}
	for k, v := range hc.ParameterStatuses {
		c.Params[k] = v
		c.login[k] = v
	}
	return c, nil
}

func quoteConnValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s + "'"
}

type password func(role string) (string, error)

func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
