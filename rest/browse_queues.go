package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"mqstack/auth"
)

// maxOverviewQueues bounds the queues page: the depth of each is counted in
// one statement, which must stay cheap enough to repeat every few seconds.
const maxOverviewQueues = 200

// queueRow is one row of the queues page.
type queueRow struct {
	Name          string          `json:"queue_name"`
	Partitioned   bool            `json:"is_partitioned"`
	Unlogged      bool            `json:"is_unlogged"`
	FIFOIndex     bool            `json:"fifo_index"`
	NotifyInsert  bool            `json:"notify_insert"`
	TopicBindings int64           `json:"topic_bindings"`
	CreatedAt     json.RawMessage `json:"created_at"`
	Depth         *queueDepth     `json:"depth"`
	Can           map[string]bool `json:"can"`
}

type queueDepth struct {
	Name             string   `json:"queue_name"`
	Visible          int64    `json:"visible"`
	InFlight         int64    `json:"in_flight"`
	Delayed          int64    `json:"delayed"`
	Archived         int64    `json:"archived"`
	OldestVisibleSec *float64 `json:"oldest_visible_age_sec"`
}

// overviewSQL lists the queues with what makes each kind: pgmq.meta's
// flags, pgmq's FIFO index (q_<name>_fifo_idx), insert notifications
// (pgmq.notify_insert_throttle) and topic bindings.
const overviewSQL = `SELECT coalesce(json_agg(q ORDER BY q.queue_name), '[]')::text FROM (
  SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at,
         to_regclass(format('pgmq.%I', 'q_' || lower(m.queue_name) || '_fifo_idx')) IS NOT NULL AS fifo_index,
         EXISTS (SELECT 1 FROM pgmq.notify_insert_throttle n WHERE n.queue_name = m.queue_name) AS notify_insert,
         (SELECT count(*) FROM pgmq.topic_bindings b WHERE b.queue_name = m.queue_name) AS topic_bindings
    FROM pgmq.meta m
   WHERE to_regclass(format('pgmq.%I', 'q_' || lower(m.queue_name))) IS NOT NULL) q`

// queueOverview answers GET /mqstack/v1/queues: every queue the token may
// list, its kind, depth and what the token may do with it. Two
// statements: the listing, then one count over the listed queues' tables.
func (s *Server) queueOverview(r *http.Request, id auth.Identity) ([]byte, error) {
	if !id.Grants.AllowsAny(auth.OpList) {
		return nil, errGrant(`the queues page needs the "list" grant`)
	}
	body, err := s.queryJSON(r.Context(), id, overviewSQL, nil)
	if err != nil {
		return nil, err
	}
	var all []queueRow
	if err := json.Unmarshal(body, &all); err != nil {
		return nil, fmt.Errorf("queues: postgres sent invalid JSON: %w", err)
	}
	rows := make([]queueRow, 0, len(all))
	for _, q := range all {
		if id.Grants.CanList(q.Name) {
			rows = append(rows, q)
		}
	}
	truncated := len(rows) > maxOverviewQueues
	if truncated {
		rows = rows[:maxOverviewQueues]
	}
	if err := s.addDepths(r, id, rows); err != nil {
		return nil, err
	}
	for i := range rows {
		rows[i].Can = abilities(id.Grants, rows[i].Name)
	}
	return json.Marshal(struct {
		Queues    []queueRow `json:"queues"`
		Truncated bool       `json:"truncated"`
		Max       int        `json:"max_queues"`
	}{rows, truncated, maxOverviewQueues})
}

// addDepths counts the messages of each queue by state in one statement.
// Queues whose names cannot be browsed keep a nil Depth.
func (s *Server) addDepths(r *http.Request, id auth.Identity, rows []queueRow) error {
	var parts []string
	var args []*string
	for i := range rows {
		q, err := queueTable("q", rows[i].Name)
		if err != nil {
			continue
		}
		a, _ := queueTable("a", rows[i].Name)
		args = append(args, &rows[i].Name)
		parts = append(parts, fmt.Sprintf(`SELECT $%d::text AS queue_name,
  count(*) FILTER (WHERE t.vt <= clock_timestamp()) AS visible,
  count(*) FILTER (WHERE t.vt > clock_timestamp() AND t.read_ct > 0) AS in_flight,
  count(*) FILTER (WHERE t.vt > clock_timestamp() AND t.read_ct = 0) AS delayed,
  (SELECT count(*) FROM %s) AS archived,
  extract(epoch FROM clock_timestamp() - min(t.enqueued_at) FILTER (WHERE t.vt <= clock_timestamp()))::float8 AS oldest_visible_age_sec
  FROM %s t`, len(args), a, q))
	}
	if len(parts) == 0 {
		return nil
	}
	sql := "SELECT coalesce(json_agg(d), '[]')::text FROM (" + strings.Join(parts, "\nUNION ALL\n") + ") d"
	body, err := s.queryJSON(r.Context(), id, sql, args)
	if err != nil {
		return err
	}
	var depths []queueDepth
	if err := json.Unmarshal(body, &depths); err != nil {
		return fmt.Errorf("queue depth: postgres sent invalid JSON: %w", err)
	}
	byName := make(map[string]*queueDepth, len(depths))
	for i := range depths {
		byName[depths[i].Name] = &depths[i]
	}
	for i := range rows {
		rows[i].Depth = byName[rows[i].Name]
	}
	return nil
}

// abilities says what the token's grants allow on queue, so the page can
// say what it cannot do before the user tries (the call is still checked).
func abilities(g *auth.Grants, queue string) map[string]bool {
	return map[string]bool{
		"read":    g.Allows(auth.OpRead, queue),
		"send":    g.Allows(auth.OpSend, queue),
		"delete":  g.Allows(auth.OpDelete, queue),
		"archive": g.Allows(auth.OpArchive, queue),
		// purge_queue and drop_queue both need "drop" (router/functions.go).
		"drop": g.Allows(auth.OpDrop, queue),
	}
}
