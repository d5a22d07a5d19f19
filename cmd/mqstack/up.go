package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/extension/pgmq"
	"mqstack/internal/pgembed"
	"mqstack/internal/stack"
)

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("up", stderr)
	path := fs.String("config", "", "config file (default $MQSTACK_CONFIG)")
	dataDir := fs.String("data-dir", "", "data directory (default ./.mqstack, or data_dir from the config)")
	pprofAddr := pprofFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	load := func() (*configs.Validated, error) { return loadConfig(*path, *dataDir) }
	v, err := load()
	if err != nil {
		return err
	}
	log, stop, err := startProcess(v, stderr, *pprofAddr)
	if err != nil {
		return err
	}
	defer stop()
	setProcs(v, true, log)

	bins, err := pgembed.FindBinaries(v.Postgres.BinDir)
	if err != nil {
		return &configs.Error{Msg: err.Error()}
	}
	in := pgembed.TuneInputFor(v.Postgres, v.DataDir)
	settings, err := configs.Tune(in)
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(v.Postgres.Settings) {
		settings = append(settings, configs.Setting{Name: k, Value: v.Postgres.Settings[k], Why: "from postgres.settings"})
	}
	log.Info("sized Postgres", zap.Stringer("memory", in.Memory), zap.Int("cpus", in.CPUs), zap.Stringer("disk", in.Disk))
	installExtension(bins, log)

	cluster, err := pgembed.Up(ctx, pgembed.Options{
		Binaries:     bins,
		DataDir:      v.DataDir,
		Port:         v.Postgres.Port,
		Database:     v.Postgres.Database,
		DefaultRole:  v.Postgres.DefaultRole,
		Settings:     settings,
		StartTimeout: v.Postgres.StartTimeout,
		Logger:       log,
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting: %w", err)
		}
		return err
	}

	stopCluster := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return cluster.Stop(sctx)
	}
	acfg, err := auth.EmbeddedConfig(v.Config)
	if err != nil {
		stopCluster()
		return err
	}
	st, err := stack.Start(stack.Options{
		Config:      v,
		Backends:    []configs.BackendConfig{embeddedBackend(cluster)},
		Auth:        acfg,
		DevTLSDir:   v.DataDir,
		DefaultRole: cluster.DefaultRole(),
		Logger:      log,
	})
	if err != nil {
		stopCluster()
		return err
	}
	token := devToken(acfg, cluster.DefaultRole(), log)
	host, port, _ := net.SplitHostPort(st.ProxyAddr())
	fmt.Fprintf(stdout, `
mqstack is up: PostgreSQL %s, tuned for %s of memory and %d CPUs
  data:    %s
  log:     %s
  proxy:   %s (the password is a JWT; below, a development token valid 24h)
  psql:    PGPASSWORD=%s psql "host=%s port=%s user=%s dbname=%s sslmode=require"
  REST:    curl -s -X POST http://%s/pgmq/v1/list_queues -H "Authorization: Bearer %s"
  metrics: %s
  direct:  psql "%s"%s
Press Ctrl-C to stop.
`, bins.Version, in.Memory, in.CPUs, cluster.PGData(), cluster.LogPath(), st.ProxyAddr(),
		token, host, port, cluster.DefaultRole(), cluster.Database(), st.RESTAddr(), token, metricsURL(st),
		cluster.ConnString(cluster.DefaultRole(), cluster.Database()), consoleLine(st, token))

	runErr := runUntilDone(ctx, st, load, v, log, cluster.Done())
	select {
	case <-cluster.Done():
		if runErr == nil {
			runErr = cluster.Err()
		}
		return runErr
	default:
	}
	log.Info("stopping")
	if err := stopCluster(); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	fmt.Fprintln(stdout, "mqstack stopped.")
	return nil
}

// consoleLine is the banner's console link, the development token in its
// fragment ("" when rest.console is off).
func consoleLine(st *stack.Stack, token string) string {
	if strings.HasPrefix(token, "<") {
		token = "" // no dev token: the console asks for one
	}
	if link := st.ConsoleURL(token); link != "" {
		return "\n  console: " + link
	}
	return ""
}

// devToken mints a development token for the default role when the key in
// use is an HMAC secret (the dev secret of the data directory by default).
func devToken(acfg configs.AuthConfig, role string, log *zap.Logger) string {
	secret, err := auth.ConfiguredSecret(acfg)
	if err != nil || len(secret) == 0 {
		return "<token: mint one with mqstack token>"
	}
	tok, err := auth.Mint(secret, auth.MintOptions{Role: role, RoleClaim: acfg.RoleClaim, Audience: acfg.Audience,
		Issuer: acfg.Issuer, TTL: 24 * time.Hour})
	if err != nil {
		log.Warn("cannot mint a development token", zap.Error(err))
		return "<token: mint one with mqstack token>"
	}
	return tok
}

// embeddedBackend is the embedded cluster as the single backend.
func embeddedBackend(c *pgembed.Cluster) configs.BackendConfig {
	return configs.BackendConfig{Name: "embedded", Host: c.SocketDir(), Port: c.Port(),
		Database: c.Database(), SSLMode: "disable", Queues: []string{"*"}}
}

// installExtension puts our pgmq extension files into the server's share
// directory, unless a real pgmq is there (then that one is used). When the
// directory is not writable, pgmq is available only if installed already.
func installExtension(bins pgembed.Binaries, log *zap.Logger) {
	share, err := bins.ShareDir()
	if err == nil {
		var installed bool
		installed, err = pgmq.Install(share)
		if err == nil && !installed {
			log.Info("a real pgmq extension is installed; using it", zap.String("sharedir", share))
		}
	}
	if err != nil {
		log.Warn("cannot install the pgmq extension files; queues need pgmq installed (make install-extension)", zap.Error(err))
	}
}
