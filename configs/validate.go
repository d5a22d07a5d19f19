package configs

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Validated is a configuration that passed Validate: paths are absolute and
// every value is in range. Code that runs the stack takes this type.
type Validated struct {
	Config
}

var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_$]{0,62}$`)

// settingName matches a postgresql.conf parameter name (custom ones have a dot).
var settingName = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)

// Validate checks every value and returns the validated configuration.
func (c Config) Validate() (*Validated, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if c.DataDir == "" {
		bad("data_dir must not be empty")
	}
	p := c.Postgres
	if p.Memory != 0 && p.Memory < MinTuneMemory {
		bad("postgres.memory %s is too small: at least %s", p.Memory, MinTuneMemory)
	}
	if p.MaxMemory != 0 && p.MaxMemory < MinTuneMemory {
		bad("postgres.max_memory %s is too small: at least %s (or 0 for no cap)", p.MaxMemory, MinTuneMemory)
	}
	if p.CPUs < 0 {
		bad("postgres.cpus must not be negative")
	}
	if p.Disk != 0 && p.Disk < MinDisk {
		bad("postgres.disk %s is too small: at least 10GB (or 0 to detect)", p.Disk)
	}
	if p.Port < 0 || p.Port > 65535 {
		bad("postgres.port %d is not a TCP port (0 means Unix socket only)", p.Port)
	}
	if !roleName.MatchString(p.Database) {
		bad("postgres.database %q is not a plain lower-case identifier", p.Database)
	}
	if !roleName.MatchString(p.DefaultRole) {
		bad("postgres.default_role %q is not a plain lower-case identifier", p.DefaultRole)
	}
	if p.DefaultRole == "postgres" {
		bad("postgres.default_role must not be the superuser \"postgres\"")
	}
	if p.StartTimeout <= 0 {
		bad("postgres.start_timeout must be positive")
	}
	keys := make([]string, 0, len(p.Settings))
	for k := range p.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !settingName.MatchString(k) {
			bad("postgres.settings: %q is not a setting name", k)
		}
		if strings.ContainsAny(p.Settings[k], "\n\r") {
			bad("postgres.settings.%s: value must be one line", k)
		}
	}
	problems = append(problems, validateAuth(c.Auth)...)
	problems = append(problems, validateProxy(c)...)
	problems = append(problems, validateREST(c.REST)...)
	problems = append(problems, validateMetrics(c.Metrics)...)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		bad("log.format %q: use console or json", c.Log.Format)
	}
	if len(problems) > 0 {
		return nil, &Error{Msg: strings.Join(problems, "; ")}
	}
	v := &Validated{Config: c}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, errorf("data_dir: %v", err)
	}
	v.DataDir = abs
	return v, nil
}

// Redacted renders the configuration as YAML for display, secrets blanked.
func (c Config) Redacted() string {
	if c.Auth.HMACSecret != "" {
		c.Auth.HMACSecret = redactedText
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Sprintf("# cannot render config: %v\n", err)
	}
	return string(out)
}
