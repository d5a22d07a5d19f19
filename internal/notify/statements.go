package notify

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// apply sends the statements the dirty channels need, all in one simple
// query, and records the outcome. An error it returns means the connection
// is dead; a refusal by the backend is handled here.
func (l *listener) apply(pc *pgconn.PgConn) error {
	l.mu.Lock()
	l.batch = l.takeDirty(l.batch[:0])
	l.mu.Unlock()
	if len(l.batch) == 0 {
		return nil
	}
	err := l.exec(pc, statements(l.batch))
	if err == nil {
		l.mu.Lock()
		for _, c := range l.batch {
			l.confirm(c)
		}
		l.mu.Unlock()
		return nil
	}
	if !refused(pc, err) {
		return err
	}
	// The statements of one simple query are one implicit transaction, so
	// none of them took effect: send them one by one to learn which one the
	// backend refuses.
	for _, c := range l.batch {
		err := l.exec(pc, statements([]change{c}))
		if err != nil && !refused(pc, err) {
			return err
		}
		l.mu.Lock()
		switch {
		case err == nil:
			l.confirm(c)
		case c.listen:
			l.refuse(c.name, err)
		default:
			// The channel may stay LISTENed; its notifications reach nobody.
			l.hub.log.Warn("notify: the backend refused an UNLISTEN",
				zap.String("backend", l.key.Backend), zap.String("database", l.key.Database), zap.Error(err))
		}
		l.mu.Unlock()
	}
	return nil
}

// refused says whether err is the backend's refusal of a statement on a
// connection that is still usable.
func refused(pc *pgconn.PgConn, err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && !pc.IsClosed()
}

func (l *listener) exec(pc *pgconn.PgConn, sql string) error {
	ctx, cancel := context.WithTimeout(l.hub.ctx, execTimeout)
	defer cancel()
	_, err := pc.Exec(ctx, sql).ReadAll()
	return err
}

// statements writes changes as one simple-query string.
func statements(changes []change) string {
	var b strings.Builder
	for _, c := range changes {
		if c.listen {
			b.WriteString("LISTEN ")
		} else {
			b.WriteString("UNLISTEN ")
		}
		// Quoted, Postgres takes the name byte for byte: no case folding.
		b.WriteString(pgx.Identifier{c.name}.Sanitize())
		b.WriteString(";")
	}
	return b.String()
}
