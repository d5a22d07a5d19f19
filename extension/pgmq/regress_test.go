package pgmq_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mqstack/internal/pgembed"
)

// TestRegress runs the pg_regress suite and the isolation specs in test/
// (test/run.sh) against the shared cluster.
func TestRegress(t *testing.T) {
	c, bins := cluster(t)
	script, err := filepath.Abs(filepath.Join("test", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	env := []string{
		"PGHOST=" + c.SocketDir(),
		"PGPORT=" + strconv.Itoa(c.Port()),
		"PGUSER=" + pgembed.Superuser,
		"PG_BINDIR=" + bins.Dir,
		"PGMQ_TEST_OUT=" + t.TempDir(),
	}
	if _, err := os.Stat(bins.Path("pg_config")); err == nil {
		env = append(env, "PG_CONFIG="+bins.Path("pg_config"))
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("test/run.sh failed: %v\n%s", err, out.String())
	}
	t.Logf("%s", out.String())
}
