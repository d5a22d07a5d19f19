package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of one mqstack process. Every field's
// comment states its default; configs/mqstack.example.yaml documents the same
// keys for operators.
type Config struct {
	// DataDir holds the embedded cluster, its socket directory and its log.
	// Default "./.mqstack".
	DataDir string `yaml:"data_dir"`
	// Postgres configures the embedded Postgres that `mqstack up` runs.
	Postgres PostgresConfig `yaml:"postgres"`
	// Log configures the process log.
	Log LogConfig `yaml:"log"`
	// Auth configures token verification (see AuthConfig).
	Auth AuthConfig `yaml:"auth"`
	// Proxy configures the wire-protocol proxy (see ProxyConfig).
	Proxy ProxyConfig `yaml:"proxy"`
	// Pool configures the backend connection pools (see PoolConfig).
	Pool PoolConfig `yaml:"pool"`
	// REST configures the HTTP API (see RESTConfig).
	REST RESTConfig `yaml:"rest"`
	// Metrics configures the Prometheus endpoint (see MetricsConfig).
	Metrics MetricsConfig `yaml:"metrics"`
	// Backends are the Postgres servers `mqstack serve` fronts. Default
	// none; `mqstack up` fronts its embedded cluster.
	Backends []BackendConfig `yaml:"backends"`
}

// PostgresConfig configures the embedded cluster and its tuning.
type PostgresConfig struct {
	// BinDir is the directory of initdb/postgres. Default "": found from
	// PG_BIN, pg_config, or the newest /usr/lib/postgresql/<14-17>/bin.
	BinDir string `yaml:"bin_dir"`
	// Memory given to Postgres for sizing. Default 0: detected (cgroup limit or
	// physical memory), capped by MaxMemory.
	Memory ByteSize `yaml:"memory"`
	// MaxMemory caps the detected memory. Default 8GiB. 0 means no cap.
	MaxMemory ByteSize `yaml:"max_memory"`
	// CPUs used for sizing worker settings. Default 0: detected.
	CPUs int `yaml:"cpus"`
	// Disk is the size of the disk behind the data directory, used to size
	// max_wal_size. Default 0: detected from the file system; when the
	// detected disk is under 10 GB the Postgres default is kept.
	Disk ByteSize `yaml:"disk"`
	// Port is the TCP port the embedded Postgres listens on, on loopback
	// only. Default 0: no TCP, only the private Unix socket.
	Port int `yaml:"port"`
	// Database is the default database. Default "postgres".
	Database string `yaml:"database"`
	// DefaultRole is the login role created for users' tokens; never a
	// superuser. Default "mq".
	DefaultRole string `yaml:"default_role"`
	// StartTimeout bounds how long `up` waits for Postgres to accept
	// connections. Default 60s.
	StartTimeout time.Duration `yaml:"start_timeout"`
	// Settings are extra postgresql.conf settings, applied after the tuned
	// ones (they win). Default none.
	Settings map[string]string `yaml:"settings"`
}

// LogConfig configures zap.
type LogConfig struct {
	// Level is debug, info, warn or error. Default "info".
	Level string `yaml:"level"`
	// Format is "console" or "json". Default "console".
	Format string `yaml:"format"`
}

// Default returns the configuration used when nothing is configured.
func Default() Config {
	return Config{
		DataDir: "./.mqstack",
		Postgres: PostgresConfig{
			MaxMemory:    8 * GiB,
			Database:     "postgres",
			DefaultRole:  "mq",
			StartTimeout: 60 * time.Second,
		},
		Log:      LogConfig{Level: "info", Format: "console"},
		Auth:     defaultAuth(),
		Proxy:    defaultProxy(),
		Pool:     defaultPool(),
		REST:     defaultREST(),
		Metrics:  defaultMetrics(),
		Backends: []BackendConfig{},
	}
}

// Error is a configuration problem: bad YAML, an unknown key, a bad value.
// The command line turns it into exit status 2.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// IsConfigError reports whether err is (or wraps) a configuration problem.
func IsConfigError(err error) bool {
	var ce *Error
	return errors.As(err, &ce)
}

// Load reads the YAML file at path (if path is not empty) over the defaults,
// then applies MQSTACK_* environment overrides from env (os.Environ() form).
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, errorf("config file: %v", err)
		}
		defer f.Close()
		if err := Decode(f, &cfg); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := ApplyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Decode strictly decodes YAML into cfg: unknown keys are errors naming the key.
func Decode(r io.Reader, cfg *Config) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return errorf("reading config: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return errorf("%s", cleanYAMLError(err))
	}
	return nil
}

// cleanYAMLError turns yaml.v3's "field x not found in type configs.T" into a
// message that names the key the operator wrote.
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	var out []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "field "); i >= 0 && strings.Contains(line, " not found in type ") {
			key := line[i+len("field "):]
			key = key[:strings.Index(key, " not found in type ")]
			line = line[:i] + fmt.Sprintf("unknown key %q", key)
		}
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}

// EnvPrefix starts every environment override, e.g. MQSTACK_POSTGRES_PORT.
const EnvPrefix = "MQSTACK_"

// envOnly names variables with the prefix that are not config keys.
var envOnly = map[string]bool{"MQSTACK_CONFIG": true}

// ApplyEnv overlays MQSTACK_<SECTION>_<KEY> variables onto cfg. A variable
// with the prefix that names no key is an error, so a typo is not ignored.
func ApplyEnv(cfg *Config, env []string) error {
	fields := map[string]reflect.Value{}
	collectEnvFields(reflect.ValueOf(cfg).Elem(), EnvPrefix, fields)
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || envOnly[name] {
			continue
		}
		f, ok := fields[name]
		if !ok {
			return errorf("environment variable %s names no config key", name)
		}
		if err := setFromString(f, val); err != nil {
			return errorf("environment variable %s: %v", name, err)
		}
	}
	return nil
}

func collectEnvFields(v reflect.Value, prefix string, out map[string]reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(ByteSize(0)) {
			collectEnvFields(fv, name+"_", out)
			continue
		}
		out[name] = fv
	}
}

// setFromString parses s the way YAML would for the field's type.
func setFromString(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("bad duration %q (use e.g. 30s, 5m)", s)
		}
		f.SetInt(int64(d))
		return nil
	case ByteSize:
		b, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(b))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("bad integer %q", s)
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("bad number %q", s)
		}
		f.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("bad boolean %q", s)
		}
		f.SetBool(b)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment")
		}
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.Set(reflect.ValueOf(parts))
	case reflect.Map:
		if f.Type().Key().Kind() != reflect.String || f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment")
		}
		m := map[string]string{}
		for _, p := range strings.Split(s, ",") {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("want key=value[,key=value], got %q", p)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		f.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
