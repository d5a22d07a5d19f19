package pgembed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Supported major versions of PostgreSQL.
const (
	MinMajor = 14
	MaxMajor = 17
)

// Binaries is a located PostgreSQL server installation.
type Binaries struct {
	Dir     string // directory holding initdb, postgres, pg_ctl
	Major   int
	Version string // e.g. "15.20"
}

// Path returns the full path of the named program.
func (b Binaries) Path(name string) string { return filepath.Join(b.Dir, name) }

// ShareDir asks pg_config for the installation's share directory
// (extensions live in <sharedir>/extension).
func (b Binaries) ShareDir() (string, error) {
	pgc := b.Path("pg_config")
	if _, err := os.Stat(pgc); err != nil {
		if p, lerr := exec.LookPath("pg_config"); lerr == nil {
			pgc = p
		} else {
			return "", fmt.Errorf("pg_config not found next to %s or on PATH", b.Dir)
		}
	}
	out, err := exec.Command(pgc, "--sharedir").Output()
	if err != nil {
		return "", fmt.Errorf("pg_config --sharedir: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// ErrNoBinaries means no supported PostgreSQL server was found.
var ErrNoBinaries = errors.New("no PostgreSQL 14-17 server binaries found")

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// FindBinaries locates the server binaries. Order: dir (from config), the
// PG_BIN environment variable, `pg_config --bindir`, then the newest
// /usr/lib/postgresql/<major>/bin with 14 <= major <= 17.
func FindBinaries(dir string) (Binaries, error) {
	if dir != "" {
		return probe(dir, "postgres.bin_dir")
	}
	if env := os.Getenv("PG_BIN"); env != "" {
		return probe(env, "PG_BIN")
	}
	if pgc, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgc, "--bindir").Output(); err == nil {
			if b, err := probe(strings.TrimSpace(string(out)), "pg_config --bindir"); err == nil {
				return b, nil
			}
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	type cand struct {
		major int
		dir   string
	}
	var cands []cand
	for _, m := range matches {
		major, err := strconv.Atoi(filepath.Base(filepath.Dir(m)))
		if err == nil && major >= MinMajor && major <= MaxMajor {
			cands = append(cands, cand{major, m})
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].major > cands[j].major })
	for _, c := range cands {
		if b, err := probe(c.dir, "/usr/lib/postgresql"); err == nil {
			return b, nil
		}
	}
	return Binaries{}, fmt.Errorf("%w: set PG_BIN or postgres.bin_dir, or install them with `make deps` (apt-get install postgresql-15)", ErrNoBinaries)
}

// probe checks that dir holds a usable, supported server.
func probe(dir, source string) (Binaries, error) {
	for _, prog := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, prog)); err != nil {
			return Binaries{}, fmt.Errorf("%w: %s (from %s) has no %s", ErrNoBinaries, dir, source, prog)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return Binaries{}, fmt.Errorf("%s/postgres --version: %w", dir, err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return Binaries{}, fmt.Errorf("cannot read the version of %s/postgres: %q", dir, strings.TrimSpace(string(out)))
	}
	major, _ := strconv.Atoi(m[1])
	if major < MinMajor || major > MaxMajor {
		return Binaries{}, fmt.Errorf("%w: %s (from %s) is PostgreSQL %d", ErrNoBinaries, dir, source, major)
	}
	v := m[1]
	if m[2] != "" {
		v += "." + m[2]
	}
	return Binaries{Dir: dir, Major: major, Version: v}, nil
}
