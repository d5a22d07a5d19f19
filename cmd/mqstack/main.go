// Command mqstack runs the Message Queue Stack: the embedded, tuned Postgres
// with the pgmq API (up), the wire proxy, the REST API and the metrics
// endpoint in front of it (up, or serve in front of existing Postgres
// servers), and the tools around them (tune, check-config, token).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"mqstack/configs"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a bad command line: exit status 2 like a bad config.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "mqstack: %v\n", err)
	if errors.As(err, &ue) || configs.IsConfigError(err) {
		return 2
	}
	return 1
}

const usage = `usage: mqstack <command> [flags]

commands:
  up            create (or reuse) and run the embedded, tuned Postgres
  serve         run the wire proxy in front of existing Postgres servers
  tune          print the postgresql.conf fragment for given resources
  check-config  validate the configuration and print it
  token         print a signed development token (JWT) for the stack
  version       print the version

Run 'mqstack <command> -h' for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return cmdUp(ctx, rest, stdout, stderr)
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr)
	case "tune":
		return cmdTune(rest, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(rest, stdout, stderr)
	case "token":
		return cmdToken(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "mqstack %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// newFlags makes a flag set whose errors are returned, not printed-and-exited.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mqstack "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// loadConfig reads --config (or MQSTACK_CONFIG) and the environment,
// applies a --data-dir flag when given, and validates the result.
func loadConfig(path, dataDir string) (*configs.Validated, error) {
	if path == "" {
		path = os.Getenv("MQSTACK_CONFIG")
	}
	cfg, err := configs.Load(path, os.Environ())
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	return cfg.Validate()
}
