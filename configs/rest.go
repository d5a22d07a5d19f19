package configs

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// RESTConfig configures the HTTP API: POST /pgmq/v1/<function>, /healthz and
// /readyz (../shared/spec/rest-api.md). Every field's comment states its
// default.
type RESTConfig struct {
	// Listen is the TCP address of the HTTP API. Default "127.0.0.1:8080":
	// loopback only, like the proxy; ":8080" listens on every interface.
	Listen string `yaml:"listen"`
	// MaxBodyBytes caps a request body; larger ones get HTTP 413.
	// Default 1MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxPollSeconds caps the max_poll_seconds argument of read_with_poll
	// and the read_grouped*_with_poll calls. Default 20 (as SQS).
	MaxPollSeconds int `yaml:"max_poll_seconds"`
	// ReadHeaderTimeout bounds reading a request's headers (slowloris
	// protection). Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds a request from the end of its headers to the end
	// of the response; it must exceed MaxPollSeconds so long polls can
	// answer. 0: no limit. Default 1m.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle for longer. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Console serves the web console on this listener under /console/
	// (docs/console.md); every request it makes needs a token, as REST
	// calls do. Default true.
	Console bool `yaml:"console"`
}

func defaultREST() RESTConfig {
	return RESTConfig{
		Listen:            "127.0.0.1:8080",
		MaxBodyBytes:      MiB,
		MaxPollSeconds:    20,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		Console:           true,
	}
}

// validateREST returns the problems of the rest section.
func validateREST(r RESTConfig) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if _, port, err := net.SplitHostPort(r.Listen); err != nil {
		bad("rest.listen %q: want host:port", r.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("rest.listen %q: bad port", r.Listen)
	}
	if r.MaxBodyBytes < KiB || r.MaxBodyBytes > GiB {
		bad("rest.max_body_bytes %s must be between 1kB and 1GB", r.MaxBodyBytes)
	}
	if r.MaxPollSeconds < 0 || r.MaxPollSeconds > 3600 {
		bad("rest.max_poll_seconds %d must be between 0 and 3600", r.MaxPollSeconds)
	}
	if r.ReadHeaderTimeout <= 0 {
		bad("rest.read_header_timeout must be positive (it protects against slow clients)")
	}
	if r.ReadTimeout < 0 || r.IdleTimeout < 0 || r.WriteTimeout < 0 {
		bad("rest.read_timeout, rest.write_timeout and rest.idle_timeout must not be negative (0 means no limit)")
	}
	if r.WriteTimeout > 0 && r.WriteTimeout <= time.Duration(r.MaxPollSeconds)*time.Second {
		bad("rest.write_timeout %s must exceed rest.max_poll_seconds (%ds), or be 0", r.WriteTimeout, r.MaxPollSeconds)
	}
	return problems
}
