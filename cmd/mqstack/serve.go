package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"mqstack/configs"
	"mqstack/internal/stack"
)

// metricsURL is where Prometheus scrapes, or "off".
func metricsURL(st *stack.Stack) string {
	if st.MetricsAddr() == "" {
		return "off"
	}
	return "http://" + st.MetricsAddr() + "/metrics"
}

// cmdServe runs the proxy in front of the configured backends (an existing
// Postgres). SIGTERM drains; SIGHUP reloads keys and limits.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("config", "", "config file (default $MQSTACK_CONFIG)")
	pprofAddr := pprofFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	load := func() (*configs.Validated, error) { return loadConfig(*path, "") }
	v, err := load()
	if err != nil {
		return err
	}
	if len(v.Backends) == 0 {
		return &configs.Error{Msg: "serve needs at least one entry in backends: (or use `mqstack up` for the embedded Postgres)"}
	}
	if !v.Auth.HasKey() {
		return &configs.Error{Msg: "serve needs a token key: set auth.hmac_secret(_file), auth.public_key_files or auth.jwks_file"}
	}
	log, stop, err := startProcess(v, stderr, *pprofAddr)
	if err != nil {
		return err
	}
	defer stop()
	setProcs(v, false, log)
	defaultRole := v.Auth.DefaultRole
	if defaultRole == "" {
		defaultRole = v.Postgres.DefaultRole
	}
	st, err := stack.Start(stack.Options{Config: v, Backends: v.Backends, Auth: v.Auth, DefaultRole: defaultRole, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "mqstack serving %d backend(s): proxy %s, REST http://%s/pgmq/v1/, metrics %s\n",
		len(v.Backends), st.ProxyAddr(), st.RESTAddr(), metricsURL(st))
	return runUntilDone(ctx, st, load, v, log, nil)
}

// runUntilDone serves until ctx ends (SIGTERM/SIGINT) or the proxy fails,
// reloading on SIGHUP; then it drains the proxy.
func runUntilDone(ctx context.Context, st *stack.Stack, load func() (*configs.Validated, error),
	v *configs.Validated, log *zap.Logger, other <-chan struct{}) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			nv, err := load()
			if err != nil {
				log.Error("config not reloaded", zap.Error(err))
				continue
			}
			v = nv
			st.Reload(v)
			log.Info("configuration reloaded")
		case err := <-st.Err():
			st.Shutdown(v.Proxy.ShutdownTimeout)
			return err
		case <-other:
			st.Shutdown(v.Proxy.ShutdownTimeout)
			return nil
		case <-ctx.Done():
			log.Info("draining", zap.Duration("shutdown_timeout", v.Proxy.ShutdownTimeout))
			st.Shutdown(v.Proxy.ShutdownTimeout)
			return nil
		}
	}
}
