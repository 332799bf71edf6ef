package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// memStatus is what /proc/<pid>/status says about a process's memory, in
// bytes.
type memStatus struct {
	HWM uint64 // VmHWM: peak resident set size
	RSS uint64 // VmRSS: current resident set size
}

// readMemStatus reads VmHWM and VmRSS of pid from /proc (Linux only).
func readMemStatus(pid int) (memStatus, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memStatus{}, fmt.Errorf("read memory status of pid %d: %w", pid, err)
	}
	return parseMemStatus(data)
}

func parseMemStatus(data []byte) (memStatus, error) {
	var m memStatus
	var found int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return memStatus{}, fmt.Errorf("unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return memStatus{}, fmt.Errorf("parse %s: %w", key, err)
		}
		if key == "VmHWM" {
			m.HWM = kb << 10
		} else {
			m.RSS = kb << 10
		}
		found++
	}
	if found != 2 {
		return memStatus{}, errors.New("VmHWM or VmRSS missing from /proc status (not Linux?)")
	}
	return m, nil
}

// rssSampler samples a process's memory until stopped and keeps the peak.
type rssSampler struct {
	pid   int
	every time.Duration

	mu      sync.Mutex
	peakHWM uint64 // the kernel's own peak (VmHWM)
	peakRSS uint64 // highest VmRSS we saw
	samples int
	err     error

	stop chan struct{}
	done chan struct{}
}

func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, every: every, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *rssSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-s.stop:
			s.sample()
			return
		case <-t.C:
		}
	}
}

func (s *rssSampler) sample() {
	m, err := readMemStatus(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.samples == 0 && s.err == nil {
			s.err = err
		}
		return
	}
	s.samples++
	s.peakHWM = max(s.peakHWM, m.HWM)
	s.peakRSS = max(s.peakRSS, m.RSS)
}

// Stop ends sampling (after one last sample) and returns the peak: VmHWM
// when the kernel reported it, else the highest VmRSS seen.
func (s *rssSampler) Stop() (peak uint64, samples int, err error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == 0 {
		if s.err == nil {
			s.err = errors.New("no memory samples")
		}
		return 0, 0, s.err
	}
	return max(s.peakHWM, s.peakRSS), s.samples, nil
}

// child is a tally subcommand running as a separate process.
type child struct {
	opsAddr string // the projector's ops server (metrics), if any
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // cmd.Wait's result, read after exited is closed
}

// startChild starts argv with its output in logPath. The child gets
// SIGKILL if the bench dies (see childAttr).
func startChild(argv []string, env []string, logPath string) (*child, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command")
	}
	out, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("child log: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(argv[0]), err)
	}
	c := &child{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// alive returns an error (with the tail of the child's log) if it exited.
func (c *child) alive() error {
	select {
	case <-c.exited:
		return fmt.Errorf("child %d exited: %v%s", c.pid(), c.err, c.logTail())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to timeout, then SIGKILL.
func (c *child) stop(timeout time.Duration) error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(timeout):
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	return fmt.Errorf("child %d did not stop within %s after SIGTERM; killed", c.pid(), timeout)
}

func (c *child) logTail() string {
	data, err := os.ReadFile(c.logPath)
	if err != nil || len(data) == 0 {
		return ""
	}
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return "\n--- " + c.logPath + " (tail) ---\n" + string(bytes.TrimRight(data, "\n"))
}

// waitFor polls cond every interval until it returns true, ctx ends or
// the child exits.
func (c *child) waitFor(ctx context.Context, interval time.Duration, cond func(context.Context) (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := c.alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
