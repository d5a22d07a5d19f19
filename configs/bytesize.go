package configs

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ByteSize is a size in bytes. It is written as Postgres writes sizes: a
// number and a unit of kB, MB, GB or TB, each a power of 1024 (KiB, MiB, GiB
// and TiB are accepted as the same units), or a bare number of bytes.
type ByteSize int64

// Size units, powers of 1024 as in postgresql.conf.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var sizeUnits = map[string]ByteSize{
	"": 1, "b": 1,
	"k": KiB, "kb": KiB, "kib": KiB,
	"m": MiB, "mb": MiB, "mib": MiB,
	"g": GiB, "gb": GiB, "gib": GiB,
	"t": TiB, "tb": TiB, "tib": TiB,
}

// ParseByteSize parses "512MiB", "8GB", "1.5GiB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("bad size %q (use e.g. 512MiB, 8GiB, 100GB)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q (use e.g. 512MiB, 8GiB, 100GB)", s)
	}
	return ByteSize(f * float64(mult)), nil
}

// MiBs is the size in whole MiB, rounded down.
func (b ByteSize) MiBs() int64 { return int64(b / MiB) }

// String writes the size in the largest unit that divides it exactly, or
// with one decimal in the largest unit below it when none does.
func (b ByteSize) String() string {
	units := []struct {
		n string
		v ByteSize
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}}
	for _, u := range units {
		if b != 0 && b%u.v == 0 {
			return fmt.Sprintf("%d%s", b/u.v, u.n)
		}
	}
	for _, u := range units {
		if b >= u.v {
			return fmt.Sprintf("%.1f%s", float64(b)/float64(u.v), u.n)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalYAML accepts a number (bytes) or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalYAML writes the size with its unit.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// Set and Type let a ByteSize be a command-line flag.
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}
