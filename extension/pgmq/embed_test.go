package pgmq

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func embedded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := Files.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEmbeddedFiles(t *testing.T) {
	control := string(embedded(t, ControlFile))
	if !strings.Contains(control, Marker) {
		t.Fatalf("control file lacks the marker %q", Marker)
	}
	for _, want := range []string{
		"default_version = '" + Version + "'",
		"schema = 'pgmq'",
		"relocatable = false",
		"superuser = false",
		"comment = 'A lightweight message queue. Like AWS SQS and RSMQ but on Postgres.'",
	} {
		if !strings.Contains(control, want) {
			t.Errorf("control file lacks %q", want)
		}
	}
	script := embedded(t, "pgmq--"+Version+".sql")
	if !bytes.Contains(script, []byte("CREATE FUNCTION pgmq.read_grouped(")) {
		t.Error("script looks incomplete")
	}
	names, err := fileNames()
	if err != nil {
		t.Fatal(err)
	}
	if names[len(names)-1] != ControlFile || len(names) < 2 {
		t.Fatalf("file order %v: scripts first, control file last", names)
	}
}

func TestInstallFresh(t *testing.T) {
	share := t.TempDir() // no extension/ subdirectory yet
	installed, err := Install(share)
	if err != nil || !installed {
		t.Fatalf("Install = %v, %v; want true, nil", installed, err)
	}
	ext := filepath.Join(share, "extension")
	for _, name := range []string{ControlFile, "pgmq--" + Version + ".sql"} {
		if got := readFile(t, filepath.Join(ext, name)); !bytes.Equal(got, embedded(t, name)) {
			t.Errorf("%s differs from the embedded file", name)
		}
		fi, err := os.Stat(filepath.Join(ext, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s has mode %v, want 0644", name, fi.Mode().Perm())
		}
	}
	// idempotent
	installed, err = Install(share)
	if err != nil || !installed {
		t.Fatalf("second Install = %v, %v; want true, nil", installed, err)
	}
	entries, err := os.ReadDir(ext)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("extension dir holds %d entries, want 2 (no temporary files left)", len(entries))
	}
}

func TestInstallUpgradesOurs(t *testing.T) {
	share := t.TempDir()
	ext := filepath.Join(share, "extension")
	if err := os.MkdirAll(ext, 0o755); err != nil {
		t.Fatal(err)
	}
	old := []byte("# an older build\n" + Marker + ": old\ndefault_version = '1.0.0'\n")
	if err := os.WriteFile(filepath.Join(ext, ControlFile), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ext, "pgmq--"+Version+".sql"), []byte("-- stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	installed, err := Install(share)
	if err != nil || !installed {
		t.Fatalf("Install = %v, %v; want true, nil", installed, err)
	}
	for _, name := range []string{ControlFile, "pgmq--" + Version + ".sql"} {
		if !bytes.Equal(readFile(t, filepath.Join(ext, name)), embedded(t, name)) {
			t.Errorf("%s was not upgraded", name)
		}
	}
}

func TestInstallNeverOverwritesRealPgmq(t *testing.T) {
	share := t.TempDir()
	ext := filepath.Join(share, "extension")
	if err := os.MkdirAll(ext, 0o755); err != nil {
		t.Fatal(err)
	}
	real := []byte("# pgmq extension\ncomment = 'A lightweight message queue. Like AWS SQS and RSMQ but on Postgres.'\ndefault_version = '1.13.1'\nschema = 'pgmq'\n")
	realSQL := []byte("-- the real thing\n")
	if err := os.WriteFile(filepath.Join(ext, ControlFile), real, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ext, "pgmq--"+Version+".sql"), realSQL, 0o644); err != nil {
		t.Fatal(err)
	}
	installed, err := Install(share)
	if err != nil || installed {
		t.Fatalf("Install = %v, %v; want false, nil", installed, err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(ext, ControlFile)), real) {
		t.Error("a real pgmq.control was overwritten")
	}
	if !bytes.Equal(readFile(t, filepath.Join(ext, "pgmq--"+Version+".sql")), realSQL) {
		t.Error("a real pgmq script was overwritten")
	}
}

func TestInstallErrors(t *testing.T) {
	if _, err := Install(""); err == nil {
		t.Error("Install(\"\") succeeded")
	}
	// share dir is a regular file: cannot create extension/
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if installed, err := Install(f); err == nil || installed {
		t.Errorf("Install(file) = %v, %v; want an error", installed, err)
	}
}
