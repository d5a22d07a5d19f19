package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// benchPassword is the scram password the bench gives role mq for direct
// connections and PgBouncer's server logins (loopback only, throwaway data).
const benchPassword = "mqbench-pw"

// env is what the bench runs against.
type env struct {
	dir                     string
	dataDir                 string
	pgPort, mqPort, pgbPort int
	pgAddr, mqAddr, pgbAddr string
	restURL, metricsURL     string
	token                   string
	mq, pgb                 *exec.Cmd
	mqDone, pgbDone         chan struct{}
	base                    *baseline // nil without -baseline
	keep                    bool
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	return ports, nil
}

// frontEndYAML is the part of an mqstack config the bench gives both the
// mqstack under test and -baseline: listeners, the same pool and limits.
func frontEndYAML(o options, proxyPort, restPort, metricsPort int) string {
	return fmt.Sprintf(`proxy:
  listen: 127.0.0.1:%d
  max_clients: %d
pool:
  size: %d
  checkout_timeout: 60s
  # Every bench client uses one token; PgBouncer has no per-token share of
  # its pool, so mqstack's (pool.max_share, default 0.5) is lifted to compare
  # like with like.
  max_share: 1
rest:
  listen: 127.0.0.1:%d
metrics:
  listen: 127.0.0.1:%d
log:
  level: warn
`, proxyPort, max(o.idleConns, o.listeners)+2000, o.poolSize, restPort, metricsPort)
}

func startEnv(ctx context.Context, o options) (_ *env, err error) {
	dir, err := os.MkdirTemp("", "mqbench-")
	if err != nil {
		return nil, err
	}
	// The postgres OS user (Postgres, PgBouncer) must reach into it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	e := &env{dir: dir, keep: o.keep}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	e.pgPort, e.mqPort, e.pgbPort = ports[0], ports[1], ports[2]
	e.pgAddr = fmt.Sprintf("127.0.0.1:%d", e.pgPort)
	e.mqAddr = fmt.Sprintf("127.0.0.1:%d", e.mqPort)
	e.pgbAddr = fmt.Sprintf("127.0.0.1:%d", e.pgbPort)
	e.restURL = fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	e.metricsURL = fmt.Sprintf("http://127.0.0.1:%d", ports[4])
	cfg := fmt.Sprintf(`# written by mqbench
postgres:
  memory: 2GiB
  port: %d
  settings:
    # 600, plus room for the notify rows' listeners straight to Postgres.
    max_connections: "%d"
`, e.pgPort, 600+o.listeners) + frontEndYAML(o, e.mqPort, ports[3], ports[4])
	cfgPath := filepath.Join(dir, "mqstack.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	args := []string{"up", "--config", cfgPath, "--data-dir", dataDir}
	if o.pprofAddr != "" {
		args = append(args, "--pprof", o.pprofAddr)
	}
	e.dataDir = dataDir
	if e.mq, e.mqDone, err = startUntil(ctx, exec.Command(o.bin, args...), "mqstack: ", "mqstack is up"); err != nil {
		return nil, err
	}

	tok, err := exec.Command(o.bin, "token", "--config", cfgPath, "--data-dir", dataDir, "--ttl", "12h").Output()
	if err != nil {
		return nil, fmt.Errorf("mqstack token: %w", err)
	}
	e.token = strings.TrimSpace(string(tok))

	// As the superuser over the private socket: a password for mq (direct
	// TCP and PgBouncer use scram) and room for the pgbench tables.
	su, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable",
		filepath.Join(dataDir, "run"), e.pgPort))
	if err != nil {
		return nil, fmt.Errorf("superuser login over the socket: %w", err)
	}
	_, err = su.Exec(ctx, "ALTER ROLE mq PASSWORD '"+benchPassword+"'; GRANT CREATE ON SCHEMA public TO mq").ReadAll()
	su.Close(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.startPgBouncer(ctx, o); err != nil {
		return nil, err
	}
	if o.baseline != "" {
		if e.base, err = startBaseline(ctx, e, o); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// startUntil starts cmd (by default with the caller's MQSTACK_* variables
// dropped)
// and waits until it prints a line starting with ready on stdout. done is
// closed when it exits.
func startUntil(ctx context.Context, cmd *exec.Cmd, prefix, ready string) (_ *exec.Cmd, done chan struct{}, err error) {
	if cmd.Env == nil {
		cmd.Env = cleanEnv()
	}
	cmd.Stderr = prefixWriter(prefix)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	done = make(chan struct{})
	up := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen && strings.HasPrefix(sc.Text(), ready) {
				seen = true
				close(up)
			}
		}
		cmd.Wait()
	}()
	select {
	case <-up:
		return cmd, done, nil
	case <-done:
		return nil, nil, fmt.Errorf("%s exited before it was up (see its log above)", strings.Join(cmd.Args, " "))
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		return nil, nil, fmt.Errorf("%s: not up within 3 minutes", strings.Join(cmd.Args, " "))
	case <-ctx.Done():
		cmd.Process.Kill()
		return nil, nil, ctx.Err()
	}
}

func (e *env) startPgBouncer(ctx context.Context, o options) error {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		return errors.New("pgbouncer not found (make bench installs it with scripts/deps.sh pgbouncer)")
	}
	pdir := filepath.Join(e.dir, "pgbouncer")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	ini := fmt.Sprintf(`[databases]
postgres = host=127.0.0.1 port=%d dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = md5
auth_file = %s/userlist.txt
pool_mode = transaction
default_pool_size = %d
max_client_conn = %d
server_reset_query =
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
log_stats = 0
logfile = %s/pgbouncer.log
`, e.pgPort, e.pgbPort, pdir, o.poolSize, o.idleConns+2000, pdir)
	if err := os.WriteFile(filepath.Join(pdir, "pgbouncer.ini"), []byte(ini), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pdir, "userlist.txt"), []byte(`"mq" "`+benchPassword+`"`+"\n"), 0o600); err != nil {
		return err
	}
	e.pgb = exec.Command(bin, filepath.Join(pdir, "pgbouncer.ini"))
	e.pgb.Stderr = prefixWriter("pgbouncer: ")
	if os.Getuid() == 0 {
		// PgBouncer refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root, PgBouncer needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{e.dir, pdir, filepath.Join(pdir, "pgbouncer.ini"), filepath.Join(pdir, "userlist.txt")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
		e.pgb.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := e.pgb.Start(); err != nil {
		return fmt.Errorf("starting pgbouncer: %w", err)
	}
	e.pgbDone = make(chan struct{})
	go func() { e.pgb.Wait(); close(e.pgbDone) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := pgconn.Connect(ctx, e.dsn("pgbouncer"))
		if err == nil {
			c.Close(ctx)
			return nil
		}
		select {
		case <-e.pgbDone:
			return fmt.Errorf("pgbouncer exited: %w (log: %s/pgbouncer.log)", err, pdir)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgbouncer not ready: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dsn is how a client reaches target ("direct", "pgbouncer", "mqstack",
// "baseline").
func (e *env) dsn(target string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=mq password=%s dbname=postgres sslmode=disable", e.port(target), e.password(target))
}

func (e *env) port(target string) int {
	switch target {
	case "direct":
		return e.pgPort
	case "pgbouncer":
		return e.pgbPort
	case "mqstack", "rest":
		return e.mqPort
	case "baseline":
		return e.base.port
	}
	panic("BUG: unknown target " + target)
}

func (e *env) password(target string) string {
	if target == "mqstack" || target == "baseline" {
		return e.token
	}
	return benchPassword
}

// pid is the process whose CPU a target's operations cost: the proxy (or
// PgBouncer); 0 for direct Postgres, whose backends are not measured.
func (e *env) pid(target string) int {
	switch target {
	case "pgbouncer":
		return e.pgb.Process.Pid
	case "mqstack", "rest":
		return e.mq.Process.Pid
	case "baseline":
		return e.base.cmd.Process.Pid
	}
	return 0
}

func (e *env) close() {
	if e.base != nil {
		e.base.stop()
	}
	if e.pgb != nil && e.pgb.Process != nil {
		e.pgb.Process.Signal(syscall.SIGINT)
		select {
		case <-e.pgbDone:
		case <-time.After(10 * time.Second):
			e.pgb.Process.Kill()
		}
	}
	if e.mq != nil && e.mq.Process != nil {
		e.mq.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.mqDone:
		case <-time.After(60 * time.Second):
			e.mq.Process.Kill()
		}
	}
	if !e.keep {
		os.RemoveAll(e.dir)
	} else {
		fmt.Println("kept", e.dir)
	}
}

// cleanEnv drops MQSTACK_* variables of the caller, so the bench's config
// is the one in force.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MQSTACK_") {
			out = append(out, kv)
		}
	}
	return out
}

type linePrefixer struct {
	prefix string
	w      io.Writer
}

func (p linePrefixer) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			io.WriteString(p.w, p.prefix+l)
		}
	}
	return len(b), nil
}

func prefixWriter(prefix string) io.Writer { return linePrefixer{prefix, os.Stderr} }

// rss is the resident set size of pid in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &kb)
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS")
}
