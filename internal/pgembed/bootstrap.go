package pgembed

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Extensions the superuser creates in the default database and template1.
var superuserExtensions = []string{"pg_stat_statements", "pg_partman"}

// PartmanSchema is where pg_partman is installed.
const PartmanSchema = "partman"

// PgmqSchema is the schema of the pgmq extension (its control file names it).
const PgmqSchema = "pgmq"

// bootstrap creates the default role and database and the extensions. It is
// idempotent: a reused data directory runs it again on every start.
func (c *Cluster) bootstrap(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.ConnString(Superuser, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	role := pgx.Identifier{c.opts.DefaultRole}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, c.opts.DefaultRole).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER NOCREATEROLE"); err != nil {
			return fmt.Errorf("create role %s: %w", c.opts.DefaultRole, err)
		}
		c.log.Info("created default role", zap.String("role", c.opts.DefaultRole))
	}
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, c.opts.Database).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{c.opts.Database}.Sanitize()); err != nil {
			return fmt.Errorf("create database %s: %w", c.opts.Database, err)
		}
	}
	for _, db := range uniq(c.opts.Database, "template1") {
		if err := c.bootstrapDB(ctx, db); err != nil {
			return fmt.Errorf("database %s: %w", db, err)
		}
	}
	return nil
}

func (c *Cluster) bootstrapDB(ctx context.Context, db string) error {
	conn, err := pgx.Connect(ctx, c.ConnString(Superuser, db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	role := pgx.Identifier{c.opts.DefaultRole}.Sanitize()
	database := pgx.Identifier{db}.Sanitize()
	partman := pgx.Identifier{PartmanSchema}.Sanitize()
	stmts := []string{
		"CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
		"CREATE SCHEMA IF NOT EXISTS " + partman,
		"CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA " + partman,
		// The default role creates queues, partitioned ones included, and
		// owns the pgmq extension it creates below, but it creates nothing
		// outside schemas pgmq and partman (and its temporary tables): no
		// CREATE on the database (no schemas; earlier bootstraps granted it,
		// so it is revoked on every start) and none on schema public (PG15
		// already keeps it from PUBLIC, PG14 does not).
		"GRANT CONNECT, TEMPORARY ON DATABASE " + database + " TO " + role,
		"REVOKE CREATE ON DATABASE " + database + " FROM " + role,
		`DO $$ BEGIN
			IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'public') THEN
				REVOKE CREATE ON SCHEMA public FROM PUBLIC, ` + role + `;
			END IF;
		END $$`,
		"GRANT USAGE, CREATE ON SCHEMA " + partman + " TO " + role,
		"GRANT ALL ON ALL TABLES IN SCHEMA " + partman + " TO " + role,
		"GRANT ALL ON ALL SEQUENCES IN SCHEMA " + partman + " TO " + role,
		"GRANT EXECUTE ON ALL ROUTINES IN SCHEMA " + partman + " TO " + role,
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	var available bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgmq')`).Scan(&available); err != nil {
		return err
	}
	if !available {
		c.log.Warn("pgmq extension is not available; queues cannot be created", zap.String("database", db))
		return nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// Without CREATE on the database the role cannot make schema pgmq
	// itself: the superuser makes it, owned by the role, and CREATE
	// EXTENSION (run as the role, which so owns the extension) uses it. A
	// schema that already exists is left as it is.
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{PgmqSchema}.Sanitize()+" AUTHORIZATION "+role); err != nil {
		return fmt.Errorf("create schema %s: %w", PgmqSchema, err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+role); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pgmq"); err != nil {
		return fmt.Errorf("create extension pgmq as %s: %w", c.opts.DefaultRole, err)
	}
	return tx.Commit(ctx)
}

func uniq(names ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
