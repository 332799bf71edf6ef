package bench

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ticks is a process's CPU time in clock ticks.
type ticks struct{ user, sys uint64 }

func (t ticks) total() uint64 { return t.user + t.sys }

// procTicks returns the CPU time pid has used, from /proc/<pid>/stat.
func procTicks(pid int) (ticks, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ticks{}, err
	}
	return parseProcTicks(data)
}

func parseProcTicks(data []byte) (ticks, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return ticks{}, fmt.Errorf("unexpected /proc stat %q", data)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return ticks{}, fmt.Errorf("unexpected /proc stat %q", data)
	}
	u, err1 := strconv.ParseUint(fields[11], 10, 64)
	s, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ticks{}, fmt.Errorf("unexpected /proc stat %q", data)
	}
	return ticks{user: u, sys: s}, nil
}

// findServerPID returns the pid of the clickhouse-server started with
// dir/config.xml, or 0.
func findServerPID(dir string) int {
	want := []byte("--config-file=" + filepath.Join(dir, "config.xml"))
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, want) {
			return pid
		}
	}
	return 0
}

// cpuMeter attributes the machine's CPU time during one measurement to the
// processes taking part in it and to everything else. Linux only; elsewhere
// it reports nothing.
type cpuMeter struct {
	mu     sync.Mutex
	began  time.Time
	start  cpuTimes
	ok     bool
	names  []string
	pids   map[string]int
	base   map[string]ticks
	others string // what "other processes" includes besides strangers
}

// newCPUMeter starts measuring; procs maps a label to a pid already running.
func newCPUMeter(others string, procs map[string]int) *cpuMeter {
	m := &cpuMeter{pids: map[string]int{}, base: map[string]ticks{}, others: others, began: time.Now()}
	start, err := readCPUTimes()
	if err != nil {
		return m
	}
	m.start, m.ok = start, true
	for _, name := range slices.Sorted(maps.Keys(procs)) {
		if pid := procs[name]; pid > 0 {
			m.track(name, pid, true)
		}
	}
	return m
}

func (m *cpuMeter) track(name string, pid int, fromNow bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var base ticks
	if fromNow {
		t, err := procTicks(pid)
		if err != nil {
			return
		}
		base = t
	}
	if _, dup := m.pids[name]; !dup {
		m.names = append(m.names, name)
	}
	m.pids[name], m.base[name] = pid, base
}

// add tracks a process started during the measurement (all its CPU time
// counts).
func (m *cpuMeter) add(name string, pid int) { m.track(name, pid, false) }

// summary says how many cores each tracked process kept busy on average,
// how much CPU time it spent per event (events handled in the measured
// span) and which share of it was in the kernel, then the same for
// everything else on the machine. Call it before the tracked processes
// exit.
func (m *cpuMeter) summary(events int) string {
	if m == nil || !m.ok {
		return ""
	}
	end, err := readCPUTimes()
	if err != nil || end.total <= m.start.total {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ncpu := float64(runtime.NumCPU())
	total := float64(end.total - m.start.total)
	wall := time.Since(m.began).Seconds()
	part := func(name string, used uint64) string {
		cores := float64(used) * ncpu / total
		if events <= 0 {
			return fmt.Sprintf("%s %.2f", name, cores)
		}
		return fmt.Sprintf("%s %.2f (%.1f µs/event)", name, cores, cores*wall*1e6/float64(events))
	}
	var parts []string
	var ours uint64
	for _, name := range m.names {
		t, err := procTicks(m.pids[name])
		b := m.base[name]
		if err != nil || t.user < b.user || t.sys < b.sys {
			continue
		}
		used := t.total() - b.total()
		ours += used
		p := part(name, used)
		if used > 0 {
			p = strings.TrimSuffix(p, ")") + fmt.Sprintf(", %.0f%% in the kernel)", 100*float64(t.sys-b.sys)/float64(used))
		}
		parts = append(parts, p)
	}
	irq, steal := end.irq-m.start.irq, end.steal-m.start.steal
	var other uint64
	if busy := end.busy - m.start.busy; busy > ours+irq+steal {
		other = busy - ours - irq - steal
	}
	label := "other processes"
	if m.others != "" {
		label += " (" + m.others + ")"
	}
	parts = append(parts, part(label, other), part("interrupts", irq))
	if steal > 0 {
		parts = append(parts, part("hypervisor steal", steal))
	}
	return fmt.Sprintf("CPU, cores busy on average (of %d) and CPU time per event: %s.", runtime.NumCPU(), strings.Join(parts, ", "))
}

// cpuTimes is the machine's CPU time from /proc/stat's first line, in
// clock ticks: busy is everything but idle and iowait; irq (hard and soft
// interrupts: loopback networking, block I/O) and steal (taken by the
// hypervisor) are parts of busy that no process is charged for.
type cpuTimes struct{ busy, total, irq, steal uint64 }

func readCPUTimes() (cpuTimes, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 5 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var t cpuTimes
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("parse /proc/stat: %w", err)
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
		switch i {
		case 5, 6: // irq, softirq
			t.irq += v
		case 7:
			t.steal += v
		}
	}
	return t, nil
}

// machineBusy returns the fraction of the machine's CPU time that was busy
// during d (everything running, not only this process); -1 if unknown.
func machineBusy(ctx context.Context, d time.Duration) float64 {
	a, err := readCPUTimes()
	if err != nil {
		return -1
	}
	select {
	case <-ctx.Done():
		return -1
	case <-time.After(d):
	}
	b, err := readCPUTimes()
	if err != nil || b.total <= a.total {
		return -1
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total)
}
