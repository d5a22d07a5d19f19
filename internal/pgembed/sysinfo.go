package pgembed

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"mqstack/configs"
)

// MemoryLimit returns the memory this process may use: the cgroup limit when
// one is set, else physical memory. 0 when neither can be read.
func MemoryLimit() int64 {
	phys := physicalMemory()
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(data))
		if v == "max" {
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n > 0 && (phys == 0 || n < phys) {
			return n
		}
	}
	return phys
}

func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// CPUs returns the CPUs this process may use.
func CPUs() int { return runtime.GOMAXPROCS(0) }

// DiskSize returns the size of the file system holding path (0 if unknown).
func DiskSize(path string) int64 {
	var st syscall.Statfs_t
	for p := path; ; {
		if err := syscall.Statfs(p, &st); err == nil {
			return int64(st.Blocks) * int64(st.Bsize)
		}
		parent := parentDir(p)
		if parent == p {
			return 0
		}
		p = parent
	}
}

func parentDir(p string) string {
	i := strings.LastIndex(strings.TrimRight(p, "/"), "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// TuneInputFor sizes the embedded cluster: configured values win; otherwise
// memory is the cgroup limit or physical memory capped by max_memory, CPUs
// are those of this process, and the disk is the file system of dataDir
// (ignored when under 10 GB, so a small disk keeps the Postgres default).
func TuneInputFor(p configs.PostgresConfig, dataDir string) configs.TuneInput {
	in := configs.TuneInput{Memory: p.Memory, CPUs: p.CPUs, Disk: p.Disk, Database: p.Database, Superuser: Superuser}
	if in.Memory == 0 {
		in.Memory = configs.ByteSize(MemoryLimit())
		if p.MaxMemory > 0 && (in.Memory == 0 || in.Memory > p.MaxMemory) {
			in.Memory = p.MaxMemory
		}
		if in.Memory < configs.MinTuneMemory {
			in.Memory = configs.MinTuneMemory
		}
	}
	if in.CPUs == 0 {
		in.CPUs = CPUs()
	}
	if in.Disk == 0 {
		if d := configs.ByteSize(DiskSize(dataDir)); d >= configs.MinDisk {
			in.Disk = d
		}
	}
	return in
}
