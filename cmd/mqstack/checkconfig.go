package main

import (
	"fmt"
	"io"
)

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", stderr)
	path := fs.String("config", "", "config file (default $MQSTACK_CONFIG)")
	quiet := fs.Bool("q", false, "print nothing when the configuration is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	v, err := cfg.Validate()
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(stdout, "# configuration is valid\n%s", v.Config.Redacted())
	}
	return nil
}
