package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"mqstack/auth"
)

// session answers GET /mqstack/v1/session: who the token is and what the
// console may show it, so the page can say what it cannot do.
func (s *Server) session(r *http.Request, id auth.Identity) ([]byte, error) {
	if err := s.checkRole(r.Context(), id); err != nil {
		return nil, err
	}
	var exp *time.Time
	if !id.ExpiresAt.IsZero() {
		t := id.ExpiresAt.UTC()
		exp = &t
	}
	return json.Marshal(struct {
		Role      string     `json:"role"`
		Subject   string     `json:"subject,omitempty"`
		ExpiresAt *time.Time `json:"expires_at"`
		Limited   bool       `json:"limited"`
		CanList   bool       `json:"can_list"`
		Service   bool       `json:"service"`
		Console   bool       `json:"console"`
	}{id.Role, id.Subject, exp, id.Grants.Limited(), id.Grants.AllowsAny(auth.OpList),
		id.Grants.AllowsAll(auth.OpList), s.stats != nil})
}

// queueStats answers GET /mqstack/v1/stats[?queue=name]: the last 15
// minutes of rates and depths of the queues the token may list.
func (s *Server) queueStats(r *http.Request, id auth.Identity) ([]byte, error) {
	if s.stats == nil {
		return nil, errConsoleOff()
	}
	only := r.URL.Query().Get("queue")
	if only != "" && !id.Grants.CanList(only) {
		return nil, errGrant(fmt.Sprintf("the charts of %q need the \"list\" grant", safeName(only)))
	}
	if err := s.checkRole(r.Context(), id); err != nil {
		return nil, err
	}
	return json.Marshal(s.stats.QueueHistory(id.Grants.CanList, only))
}

// serviceStats answers GET /mqstack/v1/service. It shows every pool, role
// and client count of the process, so it needs a token the grants do not
// limit to some queues: the list grant on every queue.
func (s *Server) serviceStats(r *http.Request, id auth.Identity) ([]byte, error) {
	if s.stats == nil {
		return nil, errConsoleOff()
	}
	if !id.Grants.AllowsAll(auth.OpList) {
		return nil, errGrant(`the service page shows every pool and client: it needs the "list" grant on every queue ("*")`)
	}
	if err := s.checkRole(r.Context(), id); err != nil {
		return nil, err
	}
	v, err := s.stats.Service()
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
