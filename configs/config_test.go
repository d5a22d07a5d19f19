package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValidate(t *testing.T) {
	v, err := Default().Validate()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(v.DataDir) || v.Postgres.DefaultRole != "mq" || v.Postgres.MaxMemory != 8*GiB {
		t.Fatalf("unexpected defaults: %+v", v.Config)
	}
}

func TestDecodeStrict(t *testing.T) {
	cfg := Default()
	err := Decode(strings.NewReader("postgres:\n  memroy: 1GiB\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), `unknown key "memroy"`) || !IsConfigError(err) {
		t.Fatalf("err = %v, want unknown key memroy", err)
	}
	err = Decode(strings.NewReader("postgres:\n  start_timeout: soon\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("bad duration: err = %v", err)
	}
	err = Decode(strings.NewReader("postgres:\n  memory: lots\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), `bad size "lots"`) {
		t.Fatalf("bad size: err = %v", err)
	}
}

func TestDecodeValues(t *testing.T) {
	cfg := Default()
	y := `data_dir: /var/lib/mq
postgres:
  memory: 2GiB
  disk: 100GB
  port: 5544
  start_timeout: 90s
  settings:
    log_min_duration_statement: "250ms"
log:
  level: debug
`
	if err := Decode(strings.NewReader(y), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/mq" || cfg.Postgres.Memory != 2*GiB || cfg.Postgres.Disk != 100*GiB ||
		cfg.Postgres.Port != 5544 || cfg.Postgres.StartTimeout != 90*time.Second ||
		cfg.Postgres.Settings["log_min_duration_statement"] != "250ms" || cfg.Log.Level != "debug" {
		t.Fatalf("decoded %+v", cfg)
	}
	if cfg.Postgres.DefaultRole != "mq" {
		t.Fatalf("defaults lost for keys not in the file")
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg := Default()
	env := []string{"HOME=/root", "MQSTACK_CONFIG=/x.yaml", "MQSTACK_POSTGRES_MEMORY=1GiB", "MQSTACK_POSTGRES_PORT=6000",
		"MQSTACK_POSTGRES_START_TIMEOUT=2m", "MQSTACK_DATA_DIR=/d", "MQSTACK_POSTGRES_SETTINGS=a=1,b=2"}
	if err := ApplyEnv(&cfg, env); err != nil {
		t.Fatal(err)
	}
	if cfg.Postgres.Memory != GiB || cfg.Postgres.Port != 6000 || cfg.Postgres.StartTimeout != 2*time.Minute ||
		cfg.DataDir != "/d" || cfg.Postgres.Settings["b"] != "2" {
		t.Fatalf("env not applied: %+v", cfg)
	}
	for _, bad := range []string{"MQSTACK_POSTGRES_MEMROY=1GiB", "MQSTACK_POSTGRES_PORT=x", "MQSTACK_POSTGRES_START_TIMEOUT=5", "MQSTACK_POSTGRES_DISK=big"} {
		err := ApplyEnv(&cfg, []string{bad})
		name, _, _ := strings.Cut(bad, "=")
		if err == nil || !strings.Contains(err.Error(), name) || !IsConfigError(err) {
			t.Errorf("%s: err = %v, want an error naming it", bad, err)
		}
	}
}

func TestLoadFileAndEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mq.yaml")
	os.WriteFile(path, []byte("postgres:\n  port: 7000\n"), 0o644)
	cfg, err := Load(path, []string{"MQSTACK_POSTGRES_CPUS=3"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Postgres.Port != 7000 || cfg.Postgres.CPUs != 3 {
		t.Fatalf("got %+v", cfg.Postgres)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !IsConfigError(err) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestValidateProblems(t *testing.T) {
	cases := map[string]func(*Config){
		"postgres.disk":          func(c *Config) { c.Postgres.Disk = 5 * GiB },
		"postgres.port":          func(c *Config) { c.Postgres.Port = 70000 },
		"postgres.default_role":  func(c *Config) { c.Postgres.DefaultRole = "postgres" },
		"postgres.database":      func(c *Config) { c.Postgres.Database = "a;b" },
		"log.level":              func(c *Config) { c.Log.Level = "loud" },
		"postgres.start_timeout": func(c *Config) { c.Postgres.StartTimeout = 0 },
		"postgres.settings":      func(c *Config) { c.Postgres.Settings = map[string]string{"x = 1\nfsync": "off"} },
		"data_dir":               func(c *Config) { c.DataDir = "" },
	}
	for key, mutate := range cases {
		c := Default()
		mutate(&c)
		_, err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), key) || !IsConfigError(err) {
			t.Errorf("%s: err = %v", key, err)
		}
	}
}

func TestByteSize(t *testing.T) {
	cases := map[string]ByteSize{"512MiB": 512 * MiB, "8GiB": 8 * GiB, "100GB": 100 * GiB, "1.5GiB": 1536 * MiB, "1048576": MiB, "64kB": 64 * KiB, "2 TB": 2 * TiB}
	for s, want := range cases {
		got, err := ParseByteSize(s)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GB", "12XB", "-1GB", "1.2.3GB"} {
		if _, err := ParseByteSize(s); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", s)
		}
	}
	if (8*GiB).String() != "8GiB" || (1536*MiB).String() != "1536MiB" || (GiB+1).String() != "1.0GiB" {
		t.Errorf("String: %s %s %s", 8*GiB, 1536*MiB, GiB+1)
	}
}
