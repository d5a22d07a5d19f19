package main

import (
	"fmt"
	"io"

	"mqstack/configs"
)

func cmdTune(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tune", stderr)
	in := configs.TuneInput{Memory: 2 * configs.GiB, CPUs: 2}
	fs.Var(&in.Memory, "memory", "memory given to Postgres, e.g. 8GiB")
	fs.IntVar(&in.CPUs, "cpus", in.CPUs, "CPUs given to Postgres")
	fs.Var(&in.Disk, "disk", "size of Postgres' disk, e.g. 100GiB (omit to keep the default max_wal_size)")
	fs.StringVar(&in.Database, "database", "postgres", "default database (pg_partman maintenance runs there)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if in.CPUs < 1 {
		return &usageError{"--cpus must be at least 1"}
	}
	settings, err := configs.Tune(in)
	if err != nil {
		return err
	}
	disk := "unknown (Postgres default max_wal_size)"
	if in.Disk != 0 {
		disk = in.Disk.String()
	}
	header := fmt.Sprintf("postgresql.conf for a queue workload, by mqstack tune\nmemory %s, %d CPUs, disk %s", in.Memory, in.CPUs, disk)
	fmt.Fprint(stdout, configs.RenderConf(header, settings))
	return nil
}
