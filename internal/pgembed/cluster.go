package pgembed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"mqstack/configs"
)

// Superuser is the bootstrap superuser initdb creates. It is never handed to
// clients: tokens name DefaultRole.
const Superuser = "postgres"

// DefaultSocketPort names the socket file (.s.PGSQL.<port>) when no TCP port
// is configured. The socket directory is private, so it cannot collide.
const DefaultSocketPort = 5432

// Options describe one embedded cluster.
type Options struct {
	Binaries Binaries
	// DataDir is absolute and holds pgdata/, run/ (the socket directory)
	// and postgres.log.
	DataDir string
	// Port is a loopback TCP port; 0 means Unix socket only.
	Port         int
	Database     string
	DefaultRole  string
	Settings     []configs.Setting
	StartTimeout time.Duration
	// InitDBNoSync skips initdb's fsync (test clusters only).
	InitDBNoSync bool
	Logger       *zap.Logger
}

// Cluster is one embedded Postgres, started by Up.
type Cluster struct {
	opts  Options
	runAs *osUser
	log   *zap.Logger

	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	exitErr error // set before done is closed

	stopOnce sync.Once
	stopping chan struct{}
}

type osUser struct {
	name     string
	uid, gid uint32
}

// PGData is the Postgres data directory.
func (c *Cluster) PGData() string { return filepath.Join(c.opts.DataDir, "pgdata") }

// SocketDir is the private Unix socket directory (mode 0700).
func (c *Cluster) SocketDir() string { return filepath.Join(c.opts.DataDir, "run") }

// LogPath is the file that receives the postmaster's output.
func (c *Cluster) LogPath() string { return filepath.Join(c.opts.DataDir, "postgres.log") }

// Port is the port number of the socket file (and of TCP when configured).
func (c *Cluster) Port() int {
	if c.opts.Port > 0 {
		return c.opts.Port
	}
	return DefaultSocketPort
}

// Database is the default database.
func (c *Cluster) Database() string { return c.opts.Database }

// DefaultRole is the login role tokens name by default.
func (c *Cluster) DefaultRole() string { return c.opts.DefaultRole }

// ConnString is a libpq keyword/value string for the Unix socket.
func (c *Cluster) ConnString(user, db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", c.SocketDir(), c.Port(), user, db)
}

// Done is closed when the postmaster exits, for whatever reason.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// Err explains why the postmaster exited; nil before Done is closed and after
// a requested stop.
func (c *Cluster) Err() error {
	select {
	case <-c.done:
		return c.exitErr
	default:
		return nil
	}
}

// problem is bad input or a bad environment: the command line reports it in
// one line and exits with status 2.
func problem(format string, args ...any) error {
	return &configs.Error{Msg: fmt.Sprintf(format, args...)}
}

// Up creates the cluster when the data directory holds none, (re)writes its
// configuration, starts it, waits until it accepts connections and bootstraps
// the default database, role and extensions. On failure nothing it created is
// left behind and Postgres is stopped.
func Up(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if !filepath.IsAbs(opts.DataDir) {
		return nil, fmt.Errorf("BUG: pgembed data dir %q is not absolute", opts.DataDir)
	}
	c := &Cluster{opts: opts, log: opts.Logger, done: make(chan struct{}), stopping: make(chan struct{})}
	if c.runAs, err = postgresUser(); err != nil {
		return nil, err
	}

	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	createdTop, err := c.ensureTopDir()
	if err != nil {
		return nil, err
	}
	if createdTop {
		cleanup = append(cleanup, func() { os.RemoveAll(opts.DataDir) })
	}
	if err := c.checkReachable(); err != nil {
		return nil, err
	}
	if err := c.checkNotRunning(); err != nil {
		return nil, err
	}
	if opts.Port > 0 {
		ln, lerr := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.Port)))
		if lerr != nil {
			return nil, problem("postgres.port %d is in use on 127.0.0.1: stop what listens there or choose another port", opts.Port)
		}
		ln.Close()
	}
	created, err := c.initDataDir(ctx)
	if err != nil {
		return nil, err
	}
	if created && !createdTop {
		cleanup = append(cleanup, func() { os.RemoveAll(c.PGData()) })
	}
	if err := c.writeConfig(); err != nil {
		return nil, err
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { c.Stop(context.Background()) })
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := c.bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return c, nil
}

// postgresUser returns the OS user to run Postgres as: "postgres" when we run
// as root (initdb and postgres refuse root), else nil (ourselves).
func postgresUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, problem("running as root, but there is no \"postgres\" OS user to run Postgres as: install postgresql (make deps) or run as a normal user")
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

func (c *Cluster) ownerUID() uint32 {
	if c.runAs != nil {
		return c.runAs.uid
	}
	return uint32(os.Geteuid())
}

func (c *Cluster) ownerName() string {
	if c.runAs != nil {
		return c.runAs.name
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Geteuid())
}

// ensureTopDir creates the data directory if missing and checks it is ours.
func (c *Cluster) ensureTopDir() (created bool, err error) {
	dir := c.opts.DataDir
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, problem("cannot create data directory %s: %v", dir, err)
		}
		return true, nil
	case err != nil:
		return false, problem("data directory %s: %v", dir, err)
	case !st.IsDir():
		return false, problem("data directory %s is not a directory", dir)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != uint32(os.Geteuid()) && uid != c.ownerUID() {
		return false, problem("data directory %s is owned by %s, not by us: choose another --data-dir or chown it", dir, uidName(uid))
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return false, problem("data directory %s is not writable: %v", dir, err)
	}
	return false, nil
}

func uidName(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// checkReachable makes sure the postgres OS user can walk down to the data
// directory when we run as root.
func (c *Cluster) checkReachable() error {
	if c.runAs == nil {
		return nil
	}
	for p := c.opts.DataDir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return problem("data directory path %s: %v", p, err)
		}
		mode := st.Mode().Perm()
		sys := st.Sys().(*syscall.Stat_t)
		ok := mode&0o001 != 0 || (sys.Uid == c.runAs.uid && mode&0o100 != 0) || (sys.Gid == c.runAs.gid && mode&0o010 != 0)
		if !ok {
			return problem("the postgres OS user cannot reach %s: %s has mode %04o; choose a --data-dir outside it or run chmod o+x %s", c.opts.DataDir, p, mode, p)
		}
		if p == "/" || p == filepath.Dir(p) {
			return nil
		}
	}
}

// checkNotRunning refuses a data directory whose postmaster still runs.
func (c *Cluster) checkNotRunning() error {
	data, err := os.ReadFile(filepath.Join(c.PGData(), "postmaster.pid"))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return nil
	}
	if syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
		return problem("a Postgres (pid %d) is already running on %s: stop the other `mqstack up` first", pid, c.PGData())
	}
	return nil
}

// initDataDir runs initdb unless pgdata already holds a cluster.
func (c *Cluster) initDataDir(ctx context.Context) (created bool, err error) {
	pgdata := c.PGData()
	if data, err := os.ReadFile(filepath.Join(pgdata, "PG_VERSION")); err == nil {
		st, err := os.Stat(pgdata)
		if err != nil {
			return false, problem("%s: %v", pgdata, err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != c.ownerUID() {
			return false, problem("data directory %s is owned by %s, but Postgres runs as %s: chown -R %s %s, or choose another --data-dir", pgdata, uidName(uid), c.ownerName(), c.ownerName(), pgdata)
		}
		if v := strings.TrimSpace(string(data)); v != strconv.Itoa(c.opts.Binaries.Major) {
			return false, problem("%s was created by PostgreSQL %s but the binaries found are %d: set PG_BIN to a PostgreSQL %s bin directory", pgdata, v, c.opts.Binaries.Major, v)
		}
		c.log.Info("reusing existing cluster", zap.String("pgdata", pgdata))
		return false, nil
	}
	if entries, err := os.ReadDir(pgdata); err == nil && len(entries) > 0 {
		return false, problem("%s exists, is not empty and holds no Postgres cluster: move it away or choose another --data-dir", pgdata)
	}
	if err := c.mkOwnedDir(pgdata); err != nil {
		return false, err
	}
	args := []string{"-D", pgdata, "-U", Superuser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if c.opts.InitDBNoSync {
		args = append(args, "--no-sync")
	}
	c.log.Info("creating cluster with initdb", zap.String("pgdata", pgdata))
	cmd := exec.CommandContext(ctx, c.opts.Binaries.Path("initdb"), args...)
	c.prepare(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(pgdata)
		return false, fmt.Errorf("initdb failed: %v\n%s", err, tail(string(out), 20))
	}
	return true, nil
}

// mkOwnedDir creates dir with mode 0700 owned by the Postgres OS user.
func (c *Cluster) mkOwnedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return problem("cannot create %s: %v", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if c.runAs != nil {
		if err := os.Chown(dir, int(c.runAs.uid), int(c.runAs.gid)); err != nil {
			return fmt.Errorf("chown %s: %w", dir, err)
		}
	}
	return nil
}

// prepare makes cmd run as the Postgres OS user in a neutral environment.
func (c *Cluster) prepare(cmd *exec.Cmd) {
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + c.opts.Binaries.Dir + ":/usr/bin:/bin", "LC_ALL=C", "LANG=C"}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if c.runAs != nil {
		attr.Credential = &syscall.Credential{Uid: c.runAs.uid, Gid: c.runAs.gid}
		cmd.Env = append(cmd.Env, "HOME="+c.PGData(), "USER="+c.runAs.name)
	}
	cmd.SysProcAttr = attr
}

// Files mqstack owns inside pgdata.
const (
	confFile    = "mqstack.conf"
	includeLine = "include_if_exists = '" + confFile + "'\t# mqstack: tuned settings\n"
)

// writeConfig writes the tuned settings, the listener settings and a
// pg_hba.conf that trusts only the private socket directory.
func (c *Cluster) writeConfig() error {
	if err := c.mkOwnedDir(c.SocketDir()); err != nil {
		return err
	}
	listen := "''"
	if c.opts.Port > 0 {
		listen = "'127.0.0.1'"
	}
	settings := append([]configs.Setting{
		{Name: "listen_addresses", Value: listen, Why: "TCP only when postgres.port is set"},
		{Name: "port", Value: strconv.Itoa(c.Port())},
		{Name: "unix_socket_directories", Value: "'" + c.SocketDir() + "'", Why: "private socket directory"},
		{Name: "unix_socket_permissions", Value: "0700"},
		{Name: "logging_collector", Value: "off", Why: "mqstack captures the log"},
		{Name: "log_destination", Value: "'stderr'"},
	}, c.opts.Settings...)
	conf := configs.RenderConf("written by mqstack on every start; edit mqstack's config instead", settings)
	if err := c.writeOwned(filepath.Join(c.PGData(), confFile), conf); err != nil {
		return err
	}
	main := filepath.Join(c.PGData(), "postgresql.conf")
	data, err := os.ReadFile(main)
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), includeLine) {
		if err := c.writeOwned(main, string(data)+"\n"+includeLine); err != nil {
			return err
		}
	}
	hba := "# written by mqstack: only the private Unix socket directory is trusted\n" +
		"local   all   all                  trust\n"
	if c.opts.Port > 0 {
		hba += "host    all   all   127.0.0.1/32   scram-sha-256\n"
	}
	return c.writeOwned(filepath.Join(c.PGData(), "pg_hba.conf"), hba)
}

func (c *Cluster) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if c.runAs != nil {
		return os.Chown(path, int(c.runAs.uid), int(c.runAs.gid))
	}
	return nil
}

// start launches the postmaster and a goroutine that reaps it.
func (c *Cluster) start() error {
	lf, err := os.OpenFile(c.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open postgres log: %w", err)
	}
	c.logFile = lf
	cmd := exec.Command(c.opts.Binaries.Path("postgres"), "-D", c.PGData())
	c.prepare(cmd)
	// If mqstack dies, Postgres gets a fast shutdown instead of living on.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd
	c.log.Info("postgres started", zap.Int("pid", cmd.Process.Pid), zap.String("log", c.LogPath()))
	go func() {
		werr := cmd.Wait()
		select {
		case <-c.stopping:
		default:
			c.exitErr = fmt.Errorf("postgres exited unexpectedly (%v); last lines of %s:\n%s", werr, c.LogPath(), c.LogTail(20))
		}
		lf.Close()
		close(c.done)
	}()
	return nil
}

// waitReady polls the socket until Postgres accepts a connection.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(cctx, c.ConnString(Superuser, "postgres"))
		ccancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-c.done:
			return c.exitErr
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections within %s (last error: %v); last lines of %s:\n%s", c.opts.StartTimeout, err, c.LogPath(), c.LogTail(20))
		case <-tick.C:
		}
	}
}

// Stop shuts Postgres down with a fast shutdown (SIGINT), escalating to an
// immediate shutdown if ctx ends first. Safe to call more than once.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.cmd == nil {
		return nil
	}
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.cmd.Process.Signal(syscall.SIGINT)
	})
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
		return fmt.Errorf("postgres fast shutdown did not finish in time: %w", ctx.Err())
	}
}

// LogTail returns the last n lines of the Postgres log.
func (c *Cluster) LogTail(n int) string {
	data, err := os.ReadFile(c.LogPath())
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", c.LogPath(), err)
	}
	return tail(string(data), n)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Backend describes the cluster as the front ends' single backend: its
// private socket, the default database, no TLS (the socket is local).
func (c *Cluster) Backend() configs.BackendConfig {
	return configs.BackendConfig{Name: "embedded", Host: c.SocketDir(), Port: c.Port(),
		Database: c.opts.Database, SSLMode: "disable", Queues: []string{"*"}}
}
