package main

import (
	"fmt"
	"io"

	"go.uber.org/zap"

	"mqstack/auth"
)

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", stderr)
	path := fs.String("config", "", "config file (default $MQSTACK_CONFIG)")
	quiet := fs.Bool("q", false, "print nothing when the configuration is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v, err := loadConfig(*path, "")
	if err != nil {
		return err
	}
	// Key files are read only when a verifier is built: build one, so a
	// missing or malformed key is caught here and not at start-up.
	if v.Auth.HasKey() {
		if _, err := auth.NewVerifier(v.Auth, zap.NewNop()); err != nil {
			return err
		}
	}
	if !*quiet {
		fmt.Fprintf(stdout, "# configuration is valid\n%s", v.Config.Redacted())
	}
	return nil
}
