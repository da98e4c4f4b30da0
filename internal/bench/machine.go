package bench

import (
	"bufio"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where a run took place.
type Machine struct {
	NProc     int    `json:"nproc"`
	CPU       string `json:"cpu"`
	LoadAvg   string `json:"loadavg"` // /proc/loadavg's 1, 5 and 15 minute averages at start
	MemTotal  string `json:"mem_total,omitempty"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// ReadMachine describes this machine: its CPUs (the CPU model from
// /proc/cpuinfo), load average and memory where /proc has them.
func ReadMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), CPU: "unknown", LoadAvg: "unknown", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	return m
}

// procField returns the value of the first line of a /proc file that
// starts with key followed by a colon (spaces or tabs between), or "".
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// rssOf returns the resident memory of process pid ("self" for this one)
// in bytes, from VmRSS in /proc/PID/status; 0 where /proc lacks it.
func rssOf(pid string) int64 {
	v := procField("/proc/"+pid+"/status", "VmRSS")
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}

// cpuTime returns this process's user and system CPU time (getrusage).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mib converts bytes to MiB.
func mib(b int64) float64 { return float64(b) / (1 << 20) }

// latencies collects durations.
type latencies []time.Duration

// quantile returns the q quantile (0..1) of l, sorting it; 0 when empty.
func (l latencies) quantile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	// Nearest rank: the smallest value with at least q of the values at or
	// below it, so that the p99 of a few runs is their slowest.
	i := int(math.Ceil(q*float64(len(l)))) - 1
	return l[max(i, 0)]
}

// ms returns d in milliseconds; us in microseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
