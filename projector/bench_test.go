package projector

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tallyhq/tally/testenv"
)

// BenchmarkProjector measures how fast one projector process catches up a
// backlog (TALLY_BENCH_EVENTS, default 500,000) into ClickHouse 18.16 on
// this machine, and its peak RSS:
//
//	go test ./projector/ -run '^$' -bench BenchmarkProjector -benchtime 1x
func BenchmarkProjector(b *testing.B) {
	n := 500_000
	if v, err := strconv.Atoi(os.Getenv("TALLY_BENCH_EVENTS")); err == nil {
		n = v
	}
	ctx := b.Context()
	url, _, js := newStreams(b, 0)
	ch := testenv.ClickHouse(b)
	events := generate(genConfig{Seed: 5, Resellers: 10, Orgs: 20, Jobs: n * 10 / 29, Now: time.Now(), Spread: time.Minute})
	n = len(events)
	start := time.Now()
	publishEvents(b, ctx, js, events)
	b.Logf("published %d events in %s", n, time.Since(start).Round(time.Millisecond))
	events = nil

	chPID := serverPID(b, ch.Server.Dir())
	for b.Loop() {
		// TALLY_BENCH_LOGDIR keeps the projector's debug log (one line per batch).
		logDir, level := os.Getenv("TALLY_BENCH_LOGDIR"), "debug"
		if logDir == "" {
			logDir, level = b.TempDir(), "info"
		}
		env := []string{childNATS + "=" + url, childCHAddr + "=" + ch.Config.Addr, childCHDB + "=" + ch.Config.Database,
			childLogLevel + "=" + level, childCPUProf + "=" + os.Getenv("TALLY_BENCH_CPUPROFILE"),
			childBatch + "=" + os.Getenv("TALLY_BENCH_BATCH")}
		chCPU, selfCPU := processCPU(b, chPID), selfCPUTime()
		start = time.Now()
		c := startChild(b, logDir, env...)
		c.waitLog(b, "projector started", 30*time.Second)
		waitDrained(b, ctx, js, DefaultConsumer, 10*time.Minute)
		took := time.Since(start)
		chCPU, selfCPU = processCPU(b, chPID)-chCPU, selfCPUTime()-selfCPU
		c.stop(b)
		childCPU := c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
		b.Logf("CPU per 1k events: projector %s, clickhouse-server %s, NATS server (test process) %s",
			childCPU*1000/time.Duration(n), chCPU*1000/time.Duration(n), selfCPU*1000/time.Duration(n))
		var rss float64
		for _, rec := range c.logLines(b) {
			if rec["msg"] == "child exit" {
				rss = rec["vm_hwm_kib"].(float64) / 1024
			}
		}
		if got := queryLines(b, ctx, ch.Conn, "SELECT toString(count()) FROM events"); got[0] != strconv.Itoa(n) {
			b.Fatalf("events has %s rows, want %d", got[0], n)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
		b.ReportMetric(rss, "peak-RSS-MiB")
		b.Logf("caught up %d events in %s (%.0f events/s, process start included); projector peak RSS %.0f MiB",
			n, took.Round(time.Millisecond), float64(n)/took.Seconds(), rss)
	}
}

// serverPID finds the clickhouse-server process whose config lives in dir.
func serverPID(t testing.TB, dir string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		raw, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(raw), "clickhouse") && strings.Contains(string(raw), dir) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	t.Fatalf("no clickhouse-server process for %s", dir)
	return 0
}

// processCPU is the user+system CPU time pid has used.
func processCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesized command: utime and stime are the
	// 12th and 13th (clock ticks, 100 per second on Linux).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFreshness publishes TALLY_BENCH_RATE events/s (default 5,000)
// for TALLY_BENCH_SECONDS (default 20) to a projector with the default
// configuration and measures freshness: from each event's publish ack to
// the moment ClickHouse counts it (polled every 5 ms).
//
//	go test ./projector/ -run '^$' -bench BenchmarkFreshness -benchtime 1x
func BenchmarkFreshness(b *testing.B) {
	rate, secs := 5000, 20
	if v, err := strconv.Atoi(os.Getenv("TALLY_BENCH_RATE")); err == nil {
		rate = v
	}
	if v, err := strconv.Atoi(os.Getenv("TALLY_BENCH_SECONDS")); err == nil {
		secs = v
	}
	ctx := b.Context()
	_, _, js := newStreams(b, 0)
	ch := testenv.ClickHouse(b)
	for b.Loop() {
		events := generate(genConfig{Seed: 6, Resellers: 5, Orgs: 10, Jobs: rate * secs * 10 / 29, Now: time.Now(), Spread: 10 * time.Second})
		pr := startProjector(b, DefaultConfig(), js, ch.Conn)

		type seen struct {
			at    time.Time
			count int
		}
		var polls []seen
		stopPoll := make(chan struct{})
		pollDone := make(chan struct{})
		go func() {
			defer close(pollDone)
			last := 0
			for {
				var n uint64
				if err := ch.Conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err == nil && int(n) > last {
					last = int(n)
					polls = append(polls, seen{time.Now(), last})
				}
				select {
				case <-stopPoll:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()

		acked := make([]time.Time, len(events))
		perTick := max(1, rate/100)
		tick := time.NewTicker(10 * time.Millisecond)
		for i := 0; i < len(events); i += perTick {
			<-tick.C
			end := min(i+perTick, len(events))
			publishEvents(b, ctx, js, events[i:end])
			now := time.Now()
			for k := i; k < end; k++ {
				acked[k] = now
			}
		}
		tick.Stop()
		waitDrained(b, ctx, js, DefaultConsumer, time.Minute)
		time.Sleep(50 * time.Millisecond)
		close(stopPoll)
		<-pollDone
		if err := pr.stop(); err != nil {
			b.Fatalf("Run: %v", err)
		}

		delays := make([]time.Duration, len(events))
		p := 0
		for k := range events {
			for p < len(polls) && polls[p].count < k+1 {
				p++
			}
			if p == len(polls) {
				b.Fatalf("event %d never counted in ClickHouse", k)
			}
			delays[k] = polls[p].at.Sub(acked[k])
		}
		slices.Sort(delays)
		q := func(f float64) time.Duration { return delays[int(f*float64(len(delays)-1))].Round(time.Millisecond) }
		b.ReportMetric(float64(q(0.5).Milliseconds()), "p50-ms")
		b.ReportMetric(float64(q(0.99).Milliseconds()), "p99-ms")
		b.Logf("%d events at %d/s: freshness p50 %s, p90 %s, p99 %s, max %s", len(events), rate, q(0.5), q(0.9), q(0.99), q(1))
	}
}
