package configs

import (
	"fmt"
	"math"
	"strings"
)

// TuneInput is what the tuning engine sizes Postgres from.
type TuneInput struct {
	// Memory given to Postgres.
	Memory ByteSize
	// CPUs available to Postgres; 0 means 1.
	CPUs int
	// Disk behind the data directory; 0 means unknown (max_wal_size keeps
	// the Postgres default).
	Disk ByteSize
	// Database is where pg_partman's background worker runs maintenance.
	// Default "postgres".
	Database string
	// Superuser is the role pg_partman's background worker runs as.
	// Default "postgres".
	Superuser string
}

// Setting is one postgresql.conf line and why it has its value.
type Setting struct {
	Name  string
	Value string
	Why   string
}

// MinTuneMemory is the least memory the engine sizes for.
const MinTuneMemory = 128 * MiB

// MinDisk is the smallest disk the engine accepts: below it max_wal_size
// would starve the data itself.
const MinDisk = 10 * GiB

// Tune returns the postgresql.conf settings for a queue workload: the fixed
// settings of the queue stack and values sized from memory, CPUs and disk.
func Tune(in TuneInput) ([]Setting, error) {
	if in.Memory < MinTuneMemory {
		return nil, errorf("memory %s is too small: give Postgres at least %s", in.Memory, MinTuneMemory)
	}
	if in.Disk != 0 && in.Disk < MinDisk {
		return nil, errorf("disk %s is too small: the queue Postgres needs at least 10GB (omit the disk size to keep the Postgres default max_wal_size)", in.Disk)
	}
	if in.CPUs < 1 {
		in.CPUs = 1
	}
	if in.Database == "" {
		in.Database = "postgres"
	}
	if in.Superuser == "" {
		in.Superuser = "postgres"
	}

	memMB := float64(in.Memory.MiBs())
	sharedBuffers := math.Floor(0.30 * memMB)
	maxConns := math.Floor(memMB / 9.5)
	workMem := math.Max(1, math.Floor(((memMB-sharedBuffers)-0.2*memMB)/maxConns))
	bgwriterDelay := "200ms"
	if memMB >= 8192 {
		bgwriterDelay = "10ms"
	}

	s := []Setting{
		{"shared_preload_libraries", "'pg_stat_statements,pg_partman_bgw'", "statement stats; partition maintenance in the background"},
		{"pg_partman_bgw.dbname", quoteConf(in.Database), "where partman maintenance runs"},
		{"pg_partman_bgw.interval", "60", "seconds between maintenance runs"},
		{"pg_partman_bgw.role", quoteConf(in.Superuser), "the default superuser"},
		{"pg_stat_statements.track", "all", "statements inside functions too"},
		{"random_page_cost", "1.1", "SSD storage"},
		{"autovacuum_naptime", "20s", "queue tables churn: vacuum often"},
		{"autovacuum_vacuum_cost_limit", "10000", "let autovacuum keep up"},
		{"autovacuum_vacuum_scale_factor", "0.05", "vacuum queue tables early"},
		{"autovacuum_vacuum_insert_scale_factor", "0.05", "vacuum insert-heavy queues early"},
		{"autovacuum_analyze_scale_factor", "0.05", "keep planner statistics fresh"},
		{"track_io_timing", "on", "I/O time in pg_stat_statements"},
		{"checkpoint_timeout", "10min", "fewer full-page writes"},
		{"synchronous_commit", "on", "a message with an id survives a crash"},
		{"fsync", "on", "a message with an id survives a crash"},
		{"shared_buffers", mb(sharedBuffers), "30% of memory"},
		{"max_connections", fmt.Sprintf("%d", int64(maxConns)), "memory / 9.5 MiB"},
		{"work_mem", mb(workMem), "what is left after shared_buffers and 20% headroom, per connection"},
		{"effective_cache_size", mb(math.Floor(0.70 * memMB)), "70% of memory"},
		{"maintenance_work_mem", mb(math.Max(64, math.Floor(0.05*memMB))), "5% of memory, at least 64MB"},
		{"bgwriter_delay", bgwriterDelay, "10ms from 8GiB of memory, else 200ms"},
		{"effective_io_concurrency", "100", "SSD storage"},
	}
	if in.Disk != 0 {
		diskGB := float64(in.Disk) / float64(GiB)
		frac, why := 0.05, "5% of a disk over 1000GB"
		switch {
		case diskGB <= 100:
			frac, why = 0.20, "20% of a disk up to 100GB"
		case diskGB <= 1000:
			frac, why = 0.10, "10% of a disk up to 1000GB"
		}
		s = append(s, Setting{"max_wal_size", mb(math.Floor(frac * diskGB * 1024)), why})
	}
	workers := in.CPUs
	perGather := max(1, min(4, workers/2))
	s = append(s,
		Setting{"max_worker_processes", fmt.Sprintf("%d", max(8, workers+2)), "parallel workers plus pg_partman's worker"},
		Setting{"max_parallel_workers", fmt.Sprintf("%d", workers), "one per CPU"},
		Setting{"max_parallel_workers_per_gather", fmt.Sprintf("%d", perGather), "half the CPUs, at most 4"},
		Setting{"max_parallel_maintenance_workers", fmt.Sprintf("%d", perGather), "half the CPUs, at most 4"},
	)
	return s, nil
}

// MaxConnections reads max_connections back from tuned settings.
func MaxConnections(settings []Setting) int {
	for _, s := range settings {
		if s.Name == "max_connections" {
			var n int
			fmt.Sscanf(s.Value, "%d", &n)
			return n
		}
	}
	return 0
}

// RenderConf writes settings as a postgresql.conf fragment.
func RenderConf(header string, settings []Setting) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(header), "\n") {
		if line != "" {
			b.WriteString("# " + line + "\n")
		}
	}
	width := 0
	for _, s := range settings {
		width = max(width, len(s.Name))
	}
	for _, s := range settings {
		line := fmt.Sprintf("%-*s = %s", width, s.Name, s.Value)
		if s.Why != "" {
			line = fmt.Sprintf("%-*s # %s", width+24, line, s.Why)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}

func mb(v float64) string { return fmt.Sprintf("%dMB", int64(v)) }

// quoteConf quotes a string value for postgresql.conf.
func quoteConf(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
