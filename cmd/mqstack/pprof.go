package main

import (
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/pprof"

	"go.uber.org/zap"

	"mqstack/configs"
)

// pprofFlag adds --pprof ADDR to a command that serves: the Go profiler on
// its own loopback listener, off by default. It is for profiling the proxy
// under load (make bench -pprof); it exposes heap contents, so never
// listen on a non-loopback address.
func pprofFlag(fs *flag.FlagSet) *string {
	return fs.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); off by default")
}

// startPprof serves the profiler on addr until the returned stop is
// called; an empty addr serves nothing.
func startPprof(addr string, log *zap.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &configs.Error{Msg: "--pprof: " + err.Error()}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	log.Info("pprof serving", zap.String("addr", ln.Addr().String()))
	return func() { srv.Close() }, nil
}

// startProcess sets up what a serving command runs with: the logger and,
// when asked, the profiler. stop flushes and closes them.
func startProcess(v *configs.Validated, stderr io.Writer, pprofAddr string) (*zap.Logger, func(), error) {
	log, err := newLogger(v.Log, stderr)
	if err != nil {
		return nil, nil, err
	}
	stopPprof, err := startPprof(pprofAddr, log)
	if err != nil {
		return nil, nil, err
	}
	return log, func() { stopPprof(); log.Sync() }, nil
}
