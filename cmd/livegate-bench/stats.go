package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livegate/livegate/internal/loadgen"
)

// recorder collects latencies of one connection (its reader goroutine
// writes, the workload reads at the end).
type recorder struct {
	mu  sync.Mutex
	lat []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.lat = append(r.lat, d)
	r.mu.Unlock()
}

// latencySummary merges recs and returns p50/p90/p99/p99.9/max in
// milliseconds under prefix, with the sample count. The samples are kept
// exactly and sorted (no bucketing).
func latencySummary(prefix string, recs ...*recorder) map[string]float64 {
	var all []time.Duration
	for _, r := range recs {
		r.mu.Lock()
		all = append(all, r.lat...)
		r.mu.Unlock()
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	out := map[string]float64{prefix + "samples": float64(len(all))}
	if len(all) == 0 {
		return out
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50_ms", 50}, {"p90_ms", 90}, {"p99_ms", 99}, {"p999_ms", 99.9}} {
		out[prefix+p.name] = ms(loadgen.Percentile(all, p.q))
	}
	out[prefix+"max_ms"] = ms(all[len(all)-1])
	return out
}

// memory is what a probe of the server's memory found.
type memory struct {
	RSS       int64 // VmRSS of /proc/<pid>/status, bytes; -1 unknown
	HeapStack int64 // go_memstats_heap_inuse_bytes + go_memstats_stack_inuse_bytes; -1 unknown
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: Linux reports
// them in USER_HZ, 100 a second on every architecture it exports them for.
const userHZ = 100

// readCPU returns the CPU time, user plus system, process pid has used.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// fields are counted from the last ')'. utime and stime are fields 14
	// and 15, so the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// readRSS returns the resident set size of process pid.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseInt(fields[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
				}
				return kb * 1024, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// scrapeGoMemory reads go_memstats_heap_inuse_bytes and
// go_memstats_stack_inuse_bytes from a Prometheus endpoint.
func scrapeGoMemory(ctx context.Context, hc *http.Client, url, bearer string) (int64, error) {
	v, err := scrapeValues(ctx, hc, url, bearer, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes")
	if err != nil {
		return 0, err
	}
	return int64(v[0] + v[1]), nil
}

// scrapeValues reads the unlabelled samples names from a Prometheus
// endpoint's text format; every name must be there.
func scrapeValues(ctx context.Context, hc *http.Client, url, bearer string, names ...string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	out := make([]float64, len(names))
	found := make([]bool, len(names))
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		i := slices.Index(names, name)
		if i < 0 {
			continue
		}
		if out[i], err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
			return nil, fmt.Errorf("metrics: %s: %w", name, err)
		}
		found[i] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if i := slices.Index(found, false); i >= 0 {
		return nil, fmt.Errorf("metrics: %s missing", names[i])
	}
	return out, nil
}

// probeMemory reads what it can; unknown parts are -1.
func probeMemory(ctx context.Context, hc *http.Client, cfg *runConfig) memory {
	m := memory{RSS: -1, HeapStack: -1}
	if cfg.ServerPID > 0 {
		if rss, err := readRSS(cfg.ServerPID); err == nil {
			m.RSS = rss
		}
	}
	if cfg.MetricsURL != "" {
		if hs, err := scrapeGoMemory(ctx, hc, cfg.MetricsURL, cfg.MetricsKey); err == nil {
			m.HeapStack = hs
		}
	}
	return m
}
