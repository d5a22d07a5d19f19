package configs

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"time"
)

// ProxyConfig configures the Postgres wire-protocol proxy. Every field's
// comment states its default.
type ProxyConfig struct {
	// Listen is the TCP address of the proxy. Default "127.0.0.1:6432".
	Listen string `yaml:"listen"`
	// ClientLoginTimeout bounds the startup phase of a client (TLS, startup
	// message, password). Default 15s.
	ClientLoginTimeout time.Duration `yaml:"client_login_timeout"`
	// MaxClients caps concurrent client connections; more are refused with
	// SQLSTATE 53300. Default 1000.
	MaxClients int `yaml:"max_clients"`
	// TLSCertFile and TLSKeyFile are the PEM certificate and key offered to
	// clients that send SSLRequest. Default "": no TLS (`mqstack up` makes a
	// self-signed pair in data_dir when both are empty).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// AllowPlaintextPassword accepts tokens from non-loopback clients outside
	// TLS. Default false.
	AllowPlaintextPassword bool `yaml:"allow_plaintext_password"`
	// ShutdownTimeout is how long SIGTERM lets open transactions finish
	// before connections are closed. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxMessageBytes caps one protocol message from a client or a backend.
	// Default 64MiB.
	MaxMessageBytes ByteSize `yaml:"max_message_bytes"`
	// Databases lists the database names clients may ask for at startup.
	// Default empty: only each backend's configured database (and the
	// backend names themselves).
	Databases []string `yaml:"databases"`
	// IdleInTransactionTimeout closes a client that stays idle inside a
	// transaction longer (FATAL 25P03; its backend is rolled back and
	// returned to the pool). 0: never. Default 60s.
	IdleInTransactionTimeout time.Duration `yaml:"idle_in_transaction_timeout"`
	// LimitedStatementTimeout is the statement_timeout of grant-limited
	// tokens' sessions; they may lower it, never raise or disable it.
	// Keep it longer than the longest read_with_poll clients use.
	// Default 5m.
	LimitedStatementTimeout time.Duration `yaml:"limited_statement_timeout"`
	// MaxPreparedStatements caps one client's named prepared statements.
	// Default 1000.
	MaxPreparedStatements int `yaml:"max_prepared_statements"`
	// MaxPreparedBytes caps the query text of one client's named prepared
	// statements, together. Default 16MiB.
	MaxPreparedBytes ByteSize `yaml:"max_prepared_bytes"`
	// MaxProcs is how many CPUs the mqstack process (proxy and REST) runs Go
	// code on at once (GOMAXPROCS). 0: under `mqstack up`, a quarter of the
	// CPUs Postgres is sized for, at least 1 (Postgres on the same machine
	// needs the rest, and fewer scheduler threads cost less CPU per
	// operation: docs/performance.md); under `mqstack serve`, every CPU.
	// The GOMAXPROCS environment variable, when set, wins. Default 0.
	MaxProcs int `yaml:"max_procs"`
	// ListenerRole is the role of the one connection per (backend,
	// database) that LISTENs on behalf of every client (docs/proxy.md,
	// "LISTEN and NOTIFY"). Default "": auth.default_role.
	ListenerRole string `yaml:"listener_role"`
	// MaxPendingNotifications bounds the notifications queued for one
	// client that has not taken them yet (it is inside a transaction, or
	// does not read): at half of it the client gets a NOTICE, over it
	// FATAL 53400. Default 1000.
	MaxPendingNotifications int `yaml:"max_pending_notifications"`
}

// PoolConfig configures the pools of backend connections, one pool per
// (backend, database, role).
type PoolConfig struct {
	// Mode is "transaction" (a client holds a backend connection for one
	// transaction) or "session" (for its whole session). Default
	// "transaction".
	Mode string `yaml:"mode"`
	// SessionRoles lists roles whose pools use session mode whatever Mode
	// says. Default none.
	SessionRoles []string `yaml:"session_roles"`
	// Size is the most backend connections of one pool. Default 20.
	Size int `yaml:"size"`
	// CheckoutTimeout is how long a client waits for a backend connection
	// before SQLSTATE 53300. Default 5s.
	CheckoutTimeout time.Duration `yaml:"checkout_timeout"`
	// IdleTimeout closes backend connections idle for longer. 0: never.
	// Default 5m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxLifetime closes backend connections older than this when they are
	// next idle. 0: never. Default 1h.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// HealthCheckPeriod is how often idle connections are checked, expired
	// and pinged. Default 30s.
	HealthCheckPeriod time.Duration `yaml:"health_check_period"`
	// StatementCacheSize is the number of prepared statements the proxy
	// keeps on each backend connection (least recently used are closed).
	// Default 512.
	StatementCacheSize int `yaml:"statement_cache_size"`
	// MaxShare is the largest fraction of a pool one token (by jti, else
	// sub) may hold at once; its further checkouts wait as for a full pool.
	// At least one connection is always allowed. Default 0.5.
	MaxShare float64 `yaml:"max_share"`
}

// BackendConfig names one Postgres server the proxy serves.
type BackendConfig struct {
	// Name identifies the backend in logs, metrics and pool keys. Required.
	Name string `yaml:"name"`
	// Host is a host name, an IP address or, starting with "/", a Unix
	// socket directory. Required.
	Host string `yaml:"host"`
	// Port of the server (or the socket file's number). Default 5432.
	Port int `yaml:"port"`
	// Database is used when a client names this backend (or nothing) as its
	// database. Default "postgres".
	Database string `yaml:"database"`
	// SSLMode toward this backend: disable, prefer, require, verify-ca or
	// verify-full (libpq meanings). Default "prefer".
	SSLMode string `yaml:"sslmode"`
	// Queues are glob patterns of the queues this backend holds. Default
	// ["*"].
	Queues []string `yaml:"queues"`
	// PoolMode overrides pool.mode for this backend. Default "".
	PoolMode string `yaml:"pool_mode"`
	// Passwords maps a role to its password (prefer the other sources).
	Passwords map[string]Secret `yaml:"passwords"`
	// PasswordFiles maps a role to a file holding its password.
	PasswordFiles map[string]string `yaml:"password_files"`
	// PasswordEnv maps a role to an environment variable holding its
	// password.
	PasswordEnv map[string]string `yaml:"password_env"`
	// Passfile is a libpq pgpass file consulted for roles not named above.
	Passfile string `yaml:"passfile"`
}

func defaultProxy() ProxyConfig {
	return ProxyConfig{
		Listen:             "127.0.0.1:6432",
		ClientLoginTimeout: 15 * time.Second,
		MaxClients:         1000,
		ShutdownTimeout:    30 * time.Second,
		MaxMessageBytes:    64 * MiB,
		Databases:          []string{},

		IdleInTransactionTimeout: 60 * time.Second,
		LimitedStatementTimeout:  5 * time.Minute,
		MaxPreparedStatements:    1000,
		MaxPreparedBytes:         16 * MiB,
		MaxPendingNotifications:  1000,
	}
}

func defaultPool() PoolConfig {
	return PoolConfig{
		Mode:               "transaction",
		SessionRoles:       []string{},
		Size:               20,
		CheckoutTimeout:    5 * time.Second,
		IdleTimeout:        5 * time.Minute,
		MaxLifetime:        time.Hour,
		HealthCheckPeriod:  30 * time.Second,
		StatementCacheSize: 512,
		MaxShare:           0.5,
	}
}

// WithBackendDefaults fills the defaults of a backend entry.
func (b BackendConfig) WithBackendDefaults() BackendConfig {
	if b.Port == 0 {
		b.Port = 5432
	}
	if b.Database == "" {
		b.Database = "postgres"
	}
	if b.SSLMode == "" {
		b.SSLMode = "prefer"
	}
	if len(b.Queues) == 0 {
		b.Queues = []string{"*"}
	}
	return b
}

// validateProxy returns the problems of the proxy, pool and backends
// sections.
func validateProxy(c Config) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	p := c.Proxy
	if _, port, err := net.SplitHostPort(p.Listen); err != nil {
		bad("proxy.listen %q: want host:port", p.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("proxy.listen %q: bad port", p.Listen)
	}
	if p.ClientLoginTimeout <= 0 {
		bad("proxy.client_login_timeout must be positive")
	}
	if p.MaxClients < 1 {
		bad("proxy.max_clients must be at least 1")
	}
	if (p.TLSCertFile == "") != (p.TLSKeyFile == "") {
		bad("proxy.tls_cert_file and proxy.tls_key_file go together")
	}
	if p.ShutdownTimeout < 0 {
		bad("proxy.shutdown_timeout must not be negative")
	}
	if p.MaxMessageBytes < 64*KiB || p.MaxMessageBytes > GiB {
		bad("proxy.max_message_bytes %s must be between 64kB and 1GB", p.MaxMessageBytes)
	}
	if p.IdleInTransactionTimeout < 0 {
		bad("proxy.idle_in_transaction_timeout must not be negative (0 means never)")
	}
	if p.LimitedStatementTimeout < time.Second {
		bad("proxy.limited_statement_timeout must be at least 1s")
	}
	if p.MaxPreparedStatements < 1 {
		bad("proxy.max_prepared_statements must be at least 1")
	}
	if p.MaxPendingNotifications < 1 {
		bad("proxy.max_pending_notifications must be at least 1")
	}
	if p.ListenerRole != "" && !ValidRoleName(p.ListenerRole) {
		bad("proxy.listener_role %q is not a valid role name", p.ListenerRole)
	}
	if p.MaxProcs < 0 {
		bad("proxy.max_procs must be 0 (automatic) or more")
	}
	if p.MaxPreparedBytes < KiB {
		bad("proxy.max_prepared_bytes must be at least 1kB")
	}
	for _, d := range p.Databases {
		if d == "" || len(d) > 63 {
			bad("proxy.databases: %q is not a database name", d)
		}
	}
	pl := c.Pool
	if !(pl.MaxShare > 0 && pl.MaxShare <= 1) {
		bad("pool.max_share %v must be above 0 and at most 1", pl.MaxShare)
	}
	if pl.Mode != "transaction" && pl.Mode != "session" {
		bad("pool.mode %q: use transaction or session", pl.Mode)
	}
	for _, r := range pl.SessionRoles {
		if !ValidRoleName(r) {
			bad("pool.session_roles: %q is not a valid role name", r)
		}
	}
	if pl.Size < 1 || pl.Size > 10000 {
		bad("pool.size %d must be between 1 and 10000", pl.Size)
	}
	if pl.CheckoutTimeout <= 0 {
		bad("pool.checkout_timeout must be positive")
	}
	if pl.IdleTimeout < 0 || pl.MaxLifetime < 0 {
		bad("pool.idle_timeout and pool.max_lifetime must not be negative (0 means never)")
	}
	if pl.HealthCheckPeriod <= 0 {
		bad("pool.health_check_period must be positive")
	}
	if pl.StatementCacheSize < 1 {
		bad("pool.statement_cache_size must be at least 1")
	}
	seen := map[string]bool{}
	for i, b := range c.Backends {
		b = b.WithBackendDefaults()
		where := fmt.Sprintf("backends[%d]", i)
		if !roleName.MatchString(b.Name) {
			bad("%s.name %q is not a plain lower-case identifier", where, b.Name)
		} else if seen[b.Name] {
			bad("%s.name %q is used twice", where, b.Name)
		}
		seen[b.Name] = true
		if b.Host == "" {
			bad("%s.host is required", where)
		}
		if b.Port < 1 || b.Port > 65535 {
			bad("%s.port %d is not a TCP port", where, b.Port)
		}
		switch b.SSLMode {
		case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
		default:
			bad("%s.sslmode %q: use disable, prefer, require, verify-ca or verify-full", where, b.SSLMode)
		}
		if b.PoolMode != "" && b.PoolMode != "transaction" && b.PoolMode != "session" {
			bad("%s.pool_mode %q: use transaction, session or empty", where, b.PoolMode)
		}
		for _, q := range b.Queues {
			if _, err := path.Match(q, ""); err != nil {
				bad("%s.queues: bad glob %q", where, q)
			}
		}
	}
	return problems
}
