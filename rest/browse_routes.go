package rest

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgerrcode"

	"mqstack/auth"
)

// The console's endpoints live under /mqstack/v1, outside /pgmq/v1 (pgmq's
// function namespace, where every path is a pgmq function). They answer GET
// only, change nothing, and take the same token and grants as every call.
const browsePrefix = "/mqstack/v1/"

// Stats is what the console's endpoints read besides the database: the
// process's own counters, sampled (the wiring adapts console.History).
type Stats interface {
	// QueueHistory returns the JSON-encodable rate and depth series of
	// the queues allow admits (only the queue named only, when not "").
	QueueHistory(allow func(queue string) bool, only string) any
	// Service returns the service counters now, JSON-encodable.
	Service() (any, error)
}

// routeBrowse adds the console's endpoints and, when console is not nil,
// the console itself under /console/ (and / sends the browser there).
func (s *Server) routeBrowse(mux *http.ServeMux, console http.Handler) {
	mux.HandleFunc("GET "+browsePrefix+"session", s.serveJSON(s.session))
	mux.HandleFunc("GET "+browsePrefix+"queues", s.serveJSON(s.queueOverview))
	mux.HandleFunc("GET "+browsePrefix+"queues/{queue}/messages", s.serveJSON(s.browse))
	mux.HandleFunc("GET "+browsePrefix+"queues/{queue}/messages/{msg_id}", s.serveJSON(s.message))
	mux.HandleFunc("GET "+browsePrefix+"stats", s.serveJSON(s.queueStats))
	mux.HandleFunc("GET "+browsePrefix+"service", s.serveJSON(s.serviceStats))
	if console != nil {
		mux.Handle("GET /console/", console)
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/console/", http.StatusFound)
		})
	}
}

// jsonHandler answers one authenticated GET with a JSON body.
type jsonHandler func(r *http.Request, id auth.Identity) ([]byte, error)

// serveJSON verifies the token, runs h, and writes its body or its error
// as every REST call does.
func (s *Server) serveJSON(h jsonHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqID := setRequestID(w, r)
		id, err := s.authenticate(r)
		var body []byte
		if err == nil {
			body, err = h(r, id)
		}
		if err != nil {
			e := toAPIError(err)
			s.logRefusal(r, reqID, id, e)
			s.fail(w, r, reqID, e)
			// Refused tokens and grants count as for every call; no pgmq
			// function ran, so nothing per queue.
			outcome := outcomeOf(e.Status)
			s.metrics.ObserveCall(Observation{Outcome: outcome, Status: e.Status, Reason: browseRefusal(err, outcome)})
			return
		}
		// Queue contents and counters: never kept by a cache on the way.
		w.Header().Set("Cache-Control", "no-store")
		writeBody(w, http.StatusOK, body)
	}
}

// queryJSON runs sql (one statement whose first column is JSON text) on a
// connection of the token's role, the pools REST calls use; nil when the
// statement gave no row.
func (s *Server) queryJSON(ctx context.Context, id auth.Identity, sql string, args []*string) ([]byte, error) {
	row, err := s.queryRow(ctx, id, sql, args)
	if err != nil || len(row) == 0 {
		return nil, err
	}
	return row[0], nil
}

// checkRole holds the endpoints that touch no backend to the rules a call
// meets at checkout: the role can log in, and is no superuser unless
// allowed (a token for a role REST would refuse sees no counters either).
func (s *Server) checkRole(ctx context.Context, id auth.Identity) error {
	conn, err := s.checkout(ctx, id)
	if err == nil {
		conn.Release()
	}
	return err
}

// browseRefusal is the bounded reason of a refused console request: the
// token's (refusalReason), or missing_grant for the grant checks here.
func browseRefusal(err error, outcome string) string {
	var ae *apiError
	if outcome == "denied" && errors.As(err, &ae) && ae.Code == pgerrcode.InsufficientPrivilege {
		return "missing_grant"
	}
	return refusalReason(err, outcome)
}

// errGrant is the 403 of a console request the token's grants refuse,
// worded as the router words a denied call.
func errGrant(msg string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: pgerrcode.InsufficientPrivilege,
		Message: "permission denied by queue grants: " + msg}
}

// errConsoleOff is the answer of the counters' endpoints when the console
// is switched off (rest.console: false).
func errConsoleOff() *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "PGRST125",
		Message: "the console is disabled (rest.console: false)"}
}
