package configs

import (
	"strings"
	"testing"
)

func settingsMap(t *testing.T, in TuneInput) map[string]string {
	t.Helper()
	s, err := Tune(in)
	if err != nil {
		t.Fatalf("Tune(%+v): %v", in, err)
	}
	m := map[string]string{}
	for _, x := range s {
		if _, dup := m[x.Name]; dup {
			t.Fatalf("setting %s appears twice", x.Name)
		}
		m[x.Name] = x.Value
	}
	return m
}

func TestTuneSizedByMemory(t *testing.T) {
	// Expected values worked out by hand from the formulas of tuning.md.
	cases := []struct {
		mem                                 ByteSize
		sharedBuffers, maxConns, workMem    string
		effectiveCache, maintWorkMem, delay string
	}{
		// 512: sb=153.6->153, conns=53.89->53, work=(512-153-102.4)/53=4.84->4
		{512 * MiB, "153MB", "53", "4MB", "358MB", "64MB", "200ms"},
		// 2048: sb=614, conns=215, work=(2048-614-409.6)/215=4.76->4, maint=102
		{2 * GiB, "614MB", "215", "4MB", "1433MB", "102MB", "200ms"},
		// 8192: sb=2457, conns=862, work=(8192-2457-1638.4)/862=4.75->4, maint=409
		{8 * GiB, "2457MB", "862", "4MB", "5734MB", "409MB", "10ms"},
		// 65536: sb=19660, conns=6898, work=(65536-19660-13107.2)/6898=4.75->4, maint=3276
		{64 * GiB, "19660MB", "6898", "4MB", "45875MB", "3276MB", "10ms"},
		// just under 8GiB keeps the slow bgwriter
		{8*GiB - MiB, "2457MB", "862", "4MB", "5733MB", "409MB", "200ms"},
	}
	for _, c := range cases {
		t.Run(c.mem.String(), func(t *testing.T) {
			m := settingsMap(t, TuneInput{Memory: c.mem, CPUs: 4})
			want := map[string]string{
				"shared_buffers": c.sharedBuffers, "max_connections": c.maxConns, "work_mem": c.workMem,
				"effective_cache_size": c.effectiveCache, "maintenance_work_mem": c.maintWorkMem,
				"bgwriter_delay": c.delay, "effective_io_concurrency": "100",
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %q, want %q", k, m[k], v)
				}
			}
			if _, ok := m["max_wal_size"]; ok {
				t.Errorf("max_wal_size set without a disk size")
			}
		})
	}
}

func TestTuneWorkMemFloor(t *testing.T) {
	// At the smallest memory the formula still gives at least 1MB.
	m := settingsMap(t, TuneInput{Memory: MinTuneMemory})
	if m["work_mem"] == "0MB" || m["work_mem"] == "" {
		t.Fatalf("work_mem = %q", m["work_mem"])
	}
	if m["max_connections"] != "13" {
		t.Fatalf("max_connections = %q, want 13", m["max_connections"])
	}
}

func TestTuneFixedSettings(t *testing.T) {
	m := settingsMap(t, TuneInput{Memory: 2 * GiB, Database: "queues"})
	want := map[string]string{
		"shared_preload_libraries":              "'pg_stat_statements,pg_partman_bgw'",
		"pg_partman_bgw.dbname":                 "'queues'",
		"pg_partman_bgw.interval":               "60",
		"pg_partman_bgw.role":                   "'postgres'",
		"pg_stat_statements.track":              "all",
		"random_page_cost":                      "1.1",
		"autovacuum_naptime":                    "20s",
		"autovacuum_vacuum_cost_limit":          "10000",
		"autovacuum_vacuum_scale_factor":        "0.05",
		"autovacuum_vacuum_insert_scale_factor": "0.05",
		"autovacuum_analyze_scale_factor":       "0.05",
		"track_io_timing":                       "on",
		"checkpoint_timeout":                    "10min",
		"synchronous_commit":                    "on",
		"fsync":                                 "on",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
}

func TestTuneDisk(t *testing.T) {
	cases := []struct {
		disk ByteSize
		want string
	}{
		{50 * GiB, "10240MB"},    // 20% of 50GB
		{100 * GiB, "20480MB"},   // boundary: still 20%
		{500 * GiB, "51200MB"},   // 10% of 500GB
		{1000 * GiB, "102400MB"}, // boundary: still 10%
		{5000 * GiB, "256000MB"}, // 5% of 5000GB
		{10 * GiB, "2048MB"},     // the smallest accepted disk
	}
	for _, c := range cases {
		m := settingsMap(t, TuneInput{Memory: 2 * GiB, Disk: c.disk})
		if m["max_wal_size"] != c.want {
			t.Errorf("disk %s: max_wal_size = %q, want %q", c.disk, m["max_wal_size"], c.want)
		}
	}
}

func TestTuneRefusals(t *testing.T) {
	_, err := Tune(TuneInput{Memory: 2 * GiB, Disk: 9 * GiB})
	if err == nil || !strings.Contains(err.Error(), "10GB") || !IsConfigError(err) {
		t.Fatalf("9GiB disk: err = %v, want a config error naming 10GB", err)
	}
	_, err = Tune(TuneInput{Memory: 64 * MiB})
	if err == nil || !IsConfigError(err) {
		t.Fatalf("64MiB memory: err = %v, want a config error", err)
	}
}

func TestTuneCPUs(t *testing.T) {
	m := settingsMap(t, TuneInput{Memory: 2 * GiB, CPUs: 16})
	if m["max_worker_processes"] != "18" || m["max_parallel_workers"] != "16" || m["max_parallel_workers_per_gather"] != "4" {
		t.Fatalf("16 CPUs: %v %v %v", m["max_worker_processes"], m["max_parallel_workers"], m["max_parallel_workers_per_gather"])
	}
	m = settingsMap(t, TuneInput{Memory: 2 * GiB})
	if m["max_worker_processes"] != "8" || m["max_parallel_workers"] != "1" || m["max_parallel_workers_per_gather"] != "1" {
		t.Fatalf("0 CPUs: %v %v %v", m["max_worker_processes"], m["max_parallel_workers"], m["max_parallel_workers_per_gather"])
	}
}

func TestRenderConf(t *testing.T) {
	s, _ := Tune(TuneInput{Memory: 512 * MiB})
	out := RenderConf("hello\nworld", s)
	if !strings.HasPrefix(out, "# hello\n# world\n") {
		t.Fatalf("header missing: %q", out[:40])
	}
	if !strings.Contains(out, "shared_buffers") || !strings.Contains(out, "= 153MB") {
		t.Fatalf("shared_buffers line missing:\n%s", out)
	}
	if MaxConnections(s) != 53 {
		t.Fatalf("MaxConnections = %d", MaxConnections(s))
	}
}
