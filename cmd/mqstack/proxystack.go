package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"mqstack/auth"
	"mqstack/configs"
	"mqstack/internal/backend"
	"mqstack/proxy"
)

// proxyStack is the wire proxy with its backend pools and token verifier.
type proxyStack struct {
	srv      *proxy.Server
	backends *backend.Manager
	verifier *auth.Verifier
	ln       net.Listener
	errc     chan error
	log      *zap.Logger
}

// startProxy wires the proxy in front of backends and starts serving.
// devTLSDir, when set, is where a self-signed certificate is made if the
// config names none (`mqstack up`).
func startProxy(v *configs.Validated, backends []configs.BackendConfig, acfg configs.AuthConfig,
	devTLSDir string, reg prometheus.Registerer, log *zap.Logger) (*proxyStack, error) {
	verifier, err := auth.NewVerifier(acfg, log.Named("auth"))
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	cert, key := v.Proxy.TLSCertFile, v.Proxy.TLSKeyFile
	if cert == "" && devTLSDir != "" {
		if cert, key, err = proxy.EnsureSelfSigned(devTLSDir); err != nil {
			return nil, err
		}
	}
	if cert != "" {
		if tlsCfg, err = proxy.TLSConfig(cert, key); err != nil {
			return nil, &configs.Error{Msg: err.Error()}
		}
	}
	bm, err := backend.NewManager(backend.Options{
		Backends:        backends,
		Pool:            v.Pool,
		MaxMessageBytes: int(v.Proxy.MaxMessageBytes),
		Log:             log.Named("pool"),
		Registerer:      reg,
	})
	if err != nil {
		return nil, err
	}
	srv, err := proxy.New(proxy.Options{Proxy: v.Proxy, Backends: bm, Verifier: verifier, TLS: tlsCfg,
		Log: log.Named("proxy"), Registerer: reg})
	if err != nil {
		bm.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", v.Proxy.Listen)
	if err != nil {
		bm.Close()
		return nil, portError("proxy.listen", v.Proxy.Listen, err)
	}
	p := &proxyStack{srv: srv, backends: bm, verifier: verifier, ln: ln, errc: make(chan error, 1), log: log}
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, proxy.ErrServerClosed) {
			err = nil
		}
		p.errc <- err
	}()
	log.Info("proxy listening", zap.String("addr", ln.Addr().String()), zap.Bool("tls", tlsCfg != nil),
		zap.String("pool_mode", v.Pool.Mode), zap.Int("pool_size", v.Pool.Size))
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *proxyStack) Addr() string { return p.ln.Addr().String() }

// reload applies a reloaded configuration (SIGHUP): keys, pool limits,
// proxy limits; open connections stay.
func (p *proxyStack) reload(v *configs.Validated) {
	if err := p.verifier.Reload(); err != nil {
		p.log.Error("auth keys not reloaded", zap.Error(err))
	}
	if err := p.backends.Reload(v.Pool); err != nil {
		p.log.Error("pool limits not reloaded", zap.Error(err))
	}
	p.srv.Reload(v.Proxy)
}

// shutdown drains the proxy (transactions may finish within timeout), then
// closes the pools.
func (p *proxyStack) shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		p.log.Warn("proxy drain cut short", zap.Duration("shutdown_timeout", timeout))
	}
	p.backends.Close()
}

// embeddedBackend is the embedded cluster as the proxy's single backend.
func embeddedBackend(socketDir string, port int, database string) configs.BackendConfig {
	return configs.BackendConfig{Name: "embedded", Host: filepath.Clean(socketDir), Port: port,
		Database: database, SSLMode: "disable", Queues: []string{"*"}}
}
