package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// baseline is a second mqstack binary (-baseline, e.g. one built from an
// earlier commit) run as `mqstack serve` in front of the same Postgres, so
// a change is measured against what it replaces in one interleaved run,
// under the same load on the machine.
type baseline struct {
	cmd  *exec.Cmd
	done chan struct{}
	port int
}

func startBaseline(ctx context.Context, e *env, o options) (*baseline, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	// The same pool, limits and token key as the mqstack under test; its
	// backend logs in over TCP with the bench's scram password.
	cfg := "# written by mqbench for -baseline\n" + frontEndYAML(o, ports[0], ports[1], ports[2]) + fmt.Sprintf(`auth:
  hmac_secret_file: %s
  default_role: mq
backends:
  - name: main
    host: 127.0.0.1
    port: %d
    sslmode: disable
    passwords:
      mq: %s
`, filepath.Join(e.dataDir, "jwt.secret"), e.pgPort, benchPassword)
	path := filepath.Join(e.dir, "baseline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	args := []string{"serve", "--config", path}
	if o.pprofAddr != "" {
		// Beside mqstack's profiler: the next port.
		host, port, err := net.SplitHostPort(o.pprofAddr)
		if err != nil {
			return nil, fmt.Errorf("-pprof: %w", err)
		}
		p, _ := strconv.Atoi(port)
		args = append(args, "--pprof", net.JoinHostPort(host, strconv.Itoa(p+1)))
	}
	cmd := exec.Command(o.baseline, args...)
	cmd.Env = append(cleanEnv(), strings.FieldsFunc(o.baselineEnv, func(r rune) bool { return r == ',' })...)
	cmd, done, err := startUntil(ctx, cmd, "baseline: ", "mqstack serving")
	if err != nil {
		return nil, fmt.Errorf("-baseline: %w", err)
	}
	return &baseline{cmd: cmd, done: done, port: ports[0]}, nil
}

func (b *baseline) stop() {
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.cmd.Process.Kill()
	}
}
