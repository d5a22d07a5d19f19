// Package pgmq ships mqstack's own PostgreSQL extension named pgmq: an
// implementation of the pgmq 1.13.1 SQL API written from mqstack's
// specification. The extension's control and script files are embedded so
// that the mqstack binary can install them into a server's share directory.
package pgmq

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Files holds pgmq.control and the pgmq--*.sql scripts.
//
//go:embed pgmq.control pgmq--*.sql
var Files embed.FS

// Version is the extension version the embedded files install.
const Version = "1.13.1"

// Marker starts a comment line in our control file. A pgmq.control without
// it belongs to a real pgmq, which Install never overwrites.
const Marker = "# mqstack-pgmq"

// ControlFile is the control file's name.
const ControlFile = "pgmq.control"

// Install copies the embedded extension files into <shareDir>/extension
// (shareDir is what `pg_config --sharedir` prints). It does nothing and
// returns installed=false when that directory already holds a pgmq.control
// that is not ours (a real pgmq); an older or identical copy of ours is
// overwritten. Files are written atomically (temporary file + rename), the
// scripts before the control file, so a concurrent CREATE EXTENSION never
// reads a half-written file.
func Install(shareDir string) (installed bool, err error) {
	if shareDir == "" {
		return false, errors.New("pgmq: empty share directory")
	}
	extDir := filepath.Join(shareDir, "extension")
	ours, err := isOurs(filepath.Join(extDir, ControlFile))
	if err != nil {
		return false, err
	}
	if !ours {
		return false, nil
	}
	if err := os.MkdirAll(extDir, 0o755); err != nil {
		return false, fmt.Errorf("pgmq: %w", err)
	}
	names, err := fileNames()
	if err != nil {
		return false, err
	}
	for _, name := range names {
		data, err := Files.ReadFile(name)
		if err != nil {
			return false, fmt.Errorf("pgmq: embedded %s: %w", name, err)
		}
		if err := writeAtomic(filepath.Join(extDir, name), data); err != nil {
			return false, err
		}
	}
	return true, nil
}

// isOurs reports whether the control file at path is ours or missing.
func isOurs(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgmq: %w", err)
	}
	defer f.Close()
	return hasMarker(f), nil
}

// hasMarker reports whether a control file's content has our marker line.
func hasMarker(r io.Reader) bool {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.HasPrefix(strings.TrimSpace(sc.Text()), Marker) {
			return true
		}
	}
	return false
}

// fileNames lists the embedded files: scripts first, the control file last.
func fileNames() ([]string, error) {
	entries, err := fs.ReadDir(Files, ".")
	if err != nil {
		return nil, fmt.Errorf("pgmq: embedded files: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != ControlFile {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return append(names, ControlFile), nil
}

func writeAtomic(dst string, data []byte) error {
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+path.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pgmq: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("pgmq: write %s: %w", dst, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("pgmq: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pgmq: write %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("pgmq: install %s: %w", dst, err)
	}
	return nil
}
