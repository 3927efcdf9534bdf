package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// target is one scenario of a mix with its weight ("/sleep?ms=50@3").
type target struct {
	path   string
	weight int
}

func parseMix(s string) ([]target, error) {
	var out []target
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		t := target{path: part, weight: 1}
		if i := strings.LastIndex(part, "@"); i >= 0 {
			w, err := strconv.Atoi(part[i+1:])
			if err != nil || w < 1 {
				return nil, fmt.Errorf("scenario %q: expected path@weight with weight >= 1", part)
			}
			t.path, t.weight = part[:i], w
		}
		if !strings.HasPrefix(t.path, "/") {
			return nil, fmt.Errorf("scenario %q: expected a path starting with /", part)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario given")
	}
	return out, nil
}

// latency summarises latencies in milliseconds.
type latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// loadWindow is one -window slice of a run: did latency drift over a long run?
type loadWindow struct {
	StartS    float64 `json:"start_s"`
	Requests  int     `json:"requests"`
	LatencyMs latency `json:"latency_ms"`
}

func summarise(ms []float64) latency {
	if len(ms) == 0 {
		return latency{}
	}
	slices.Sort(ms)
	q := func(p float64) float64 { return ms[min(len(ms)-1, int(p*float64(len(ms))))] }
	return latency{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms[len(ms)-1]}
}

type loadReport struct {
	URL         string             `json:"url"`
	Scenarios   []string           `json:"scenarios"`
	Rate        float64            `json:"rate"`
	Concurrency int                `json:"concurrency"`
	DurationS   float64            `json:"duration_s"`
	Requests    int                `json:"requests"`
	Errors      int                `json:"errors"`
	Missed      int                `json:"missed"`
	Throughput  float64            `json:"throughput_rps"`
	LatencyMs   latency            `json:"latency_ms"`
	PerScenario map[string]latency `json:"per_scenario_latency_ms"`
	Windows     []loadWindow       `json:"windows,omitempty"`
}

// runLoad is the `load` subcommand: hits a scenario mix at -rate requests/s (0: as fast as
// -concurrency workers go) for -duration and prints a JSON report. With a rate, ticks that
// find every worker busy are counted as `missed` rather than queued, so the offered load
// stays what was asked.
func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "base URL of the demo service")
	mix := fs.String("scenario", "/sleep?ms=10", "comma-separated paths, each optionally @weight")
	rate := fs.Float64("rate", 0, "requests per second (0 = closed loop)")
	conc := fs.Int("concurrency", 4, "concurrent workers")
	dur := fs.Duration("duration", 5*time.Second, "how long to send")
	window := fs.Duration("window", 0, "also summarise each window of this length (by request start): a long run's p99 over time")
	_ = fs.Parse(args)
	targets, err := parseMix(*mix)
	if err != nil {
		return err
	}
	var wheel []string
	for _, t := range targets {
		for i := 0; i < t.weight; i++ {
			wheel = append(wheel, t.path)
		}
	}
	client := &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: 0},
	}
	type sample struct {
		path string
		at   time.Duration // request start, since the run's start
		ms   float64
		ok   bool
	}
	var (
		mu      sync.Mutex
		samples []sample
		wg      sync.WaitGroup
	)
	tokens := make(chan struct{}, *conc)
	stop := time.Now().Add(*dur)
	missed := 0
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if *rate > 0 {
					if _, ok := <-tokens; !ok {
						return
					}
				} else if time.Now().After(stop) {
					return
				}
				path := wheel[rand.IntN(len(wheel))]
				t0 := time.Now()
				resp, err := client.Get(*base + path)
				ok := err == nil
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode < 400
				}
				s := sample{path: path, at: t0.Sub(start), ms: msSince(t0), ok: ok}
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}
		}()
	}
	if *rate > 0 {
		// each tick hands out every token due since the start: a ticker drops ticks its
		// reader is late for, and at 2000 req/s (a 500 us tick) on a busy 2-core machine
		// that was ~45 % of them, so the load offered was far below -rate
		interval := max(time.Duration(float64(time.Second) / *rate), time.Millisecond)
		tick := time.NewTicker(interval)
		given := 0
		for now := range tick.C {
			if now.After(stop) {
				break
			}
			for due := int(now.Sub(start).Seconds() * *rate); given < due; given++ {
				select {
				case tokens <- struct{}{}:
				default:
					missed++
				}
			}
		}
		tick.Stop()
		close(tokens)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	rep := loadReport{
		URL: *base, Rate: *rate, Concurrency: *conc, DurationS: elapsed, Missed: missed,
		PerScenario: map[string]latency{},
	}
	for _, t := range targets {
		rep.Scenarios = append(rep.Scenarios, t.path)
	}
	all := make([]float64, 0, len(samples))
	per := map[string][]float64{}
	for _, s := range samples {
		rep.Requests++
		if !s.ok {
			rep.Errors++
		}
		all = append(all, s.ms)
		per[s.path] = append(per[s.path], s.ms)
	}
	rep.Throughput = float64(rep.Requests) / elapsed
	if *window > 0 {
		// a window per started interval; a trailing partial window (< half) joins the last
		n := max(1, int((*dur+*window/2) / *window))
		byWin := make([][]float64, n)
		for _, s := range samples {
			i := min(n-1, int(s.at / *window))
			byWin[i] = append(byWin[i], s.ms)
		}
		for i, v := range byWin {
			rep.Windows = append(rep.Windows, loadWindow{
				StartS: (time.Duration(i) * *window).Seconds(), Requests: len(v), LatencyMs: summarise(v),
			})
		}
	}
	rep.LatencyMs = summarise(all)
	for p, v := range per {
		rep.PerScenario[p] = summarise(v)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
