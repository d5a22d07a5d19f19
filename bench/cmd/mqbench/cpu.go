package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat (100 on every architecture Go runs Linux on).
const clockTick = 10 * time.Millisecond

// cpuTime is the user plus system CPU time pid has used so far, all its
// threads together (its children, Postgres under `mqstack up`, are not in it).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces; the
	// fields after the last ')' start at field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// cpuMeter measures the CPU a proxy process spends during one cell.
type cpuMeter struct {
	pid   int
	start time.Duration
}

// startCPU starts measuring pid; pid 0 (direct Postgres) measures nothing.
func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid}
	if pid != 0 {
		m.start, _ = cpuTime(pid)
	}
	return m
}

// perOp is the CPU used since start divided by ops, in microseconds; 0
// when nothing was measured.
func (m cpuMeter) perOp(ops int64) float64 {
	if m.pid == 0 || ops <= 0 {
		return 0
	}
	end, err := cpuTime(m.pid)
	if err != nil {
		return 0
	}
	return float64(end-m.start) / float64(time.Microsecond) / float64(ops)
}

// measured is s with the CPU per operation since m started.
func (m cpuMeter) measured(s sample) sample {
	s.cpuUs = m.perOp(s.count)
	return s
}
