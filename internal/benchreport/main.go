// Command benchreport summarises the output of `make bench` (go test -bench
// on core/service, read from stdin): a table of each measured thing with
// its sample count, p50 and p99, and the two ratios DESIGN.md §7 sets
// targets for.
//
// It reads the metrics the benchmarks report: "p50-ms", "p99-ms" and
// "samples" for a benchmark that measures one thing, or "PART.p50-ms" and so
// on for one that measures several things interleaved, which gives a row
// "NAME/PART". "same-key" is the number of seeds for which a paired bare key
// generation made the service's key; "load1" the 1-minute load average when
// a benchmark ended, compared with the GOMAXPROCS of the benchmark names to
// flag a busy machine.
//
// It exits 1 when the input holds a failure, lacks a row a ratio needs, or
// shows broken pairing; a ratio that misses its target is reported, not an
// error.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// A ratio of two rows' p50, with its target.
// diff, when set, is a row of per-sample differences num-den, which gives a
// paired estimate 1 + p50(diff)/p50(den) less sensitive to noise.
type ratio struct {
	label     string
	num, den  string
	maxTarget float64
	diff      string
}

var ratios = []ratio{
	{"whole RSA_2048 path / bare key generation", "Create/RSA_2048/path", "Create/RSA_2048/keygen", 1.05, "Create/RSA_2048/path-keygen"},
	{"pre-made-key RSA_2048 path / bare CSR signature", "PremadeKey/RSA_2048/path", "PremadeKey/RSA_2048/csr-sign", 1.6, ""},
}

// partOrder is the order of a benchmark's rows; other parts follow in the
// order they were read.
var partOrder = []string{"", "keygen", "path", "path-keygen", "csr-sign", "pkcs1v15-sign"}

type row struct {
	name              string
	samples, p50, p99 float64
	hasP50, hasP99    bool
}

type bench struct {
	name    string
	parts   map[string]map[string]float64 // part → metric → value
	order   []string                      // parts as read
	sameKey float64
	hasSame bool
	load1   float64
	hasLoad bool
	procs   int // the -N suffix of the name, 0 if none
}

type input struct {
	header  []string // goos, goarch, cpu, pkg lines
	benches []*bench
	failed  []string
}

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader) (*input, error) {
	in := &input{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "cpu:"), strings.HasPrefix(line, "goos:"),
			strings.HasPrefix(line, "goarch:"), strings.HasPrefix(line, "pkg:"):
			in.header = append(in.header, line)
		case strings.HasPrefix(trimmed, "--- FAIL"), strings.HasPrefix(trimmed, "FAIL"),
			strings.HasPrefix(trimmed, "panic:"):
			in.failed = append(in.failed, trimmed)
		case strings.HasPrefix(line, "Benchmark"):
			b, err := parseBench(line)
			if err != nil {
				return nil, err
			}
			if b != nil {
				in.benches = append(in.benches, b)
			}
		}
	}
	return in, sc.Err()
}

// parseBench parses "BenchmarkX/Y-2  1  123 ns/op  4.5 p50-ms ...". A line
// without an iteration count (a benchmark's name printed before its logs)
// gives nil.
func parseBench(line string) (*bench, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return nil, nil
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		return nil, nil
	}
	if len(f)%2 != 0 {
		return nil, fmt.Errorf("malformed benchmark line: %q", line)
	}
	name := strings.TrimPrefix(f[0], "Benchmark")
	procs := 0
	if m := procSuffix.FindString(name); m != "" {
		procs, _ = strconv.Atoi(m[1:])
		name = strings.TrimSuffix(name, m)
	}
	b := &bench{name: name, parts: map[string]map[string]float64{}, procs: procs}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("malformed value %q in %q", f[i], line)
		}
		unit := f[i+1]
		switch unit {
		case "same-key":
			b.sameKey, b.hasSame = v, true
			continue
		case "load1":
			b.load1, b.hasLoad = v, true
			continue
		}
		part, metric := "", unit
		if p, m, ok := strings.Cut(unit, "."); ok {
			part, metric = p, m
		}
		if b.parts[part] == nil {
			b.parts[part] = map[string]float64{}
			b.order = append(b.order, part)
		}
		b.parts[part][metric] = v
	}
	return b, nil
}

func (b *bench) rows() []row {
	var parts []string
	for _, p := range partOrder {
		if b.parts[p] != nil {
			parts = append(parts, p)
		}
	}
	for _, p := range b.order {
		if !contains(partOrder, p) {
			parts = append(parts, p)
		}
	}
	var out []row
	for _, p := range parts {
		m := b.parts[p]
		p50, hasP50 := m["p50-ms"]
		p99, hasP99 := m["p99-ms"]
		if !hasP50 && !hasP99 {
			continue // e.g. a benchmark reporting only ns/op
		}
		name := b.name
		if p != "" {
			name += "/" + p
		}
		out = append(out, row{name: name, samples: m["samples"], p50: p50, p99: p99, hasP50: hasP50, hasP99: hasP99})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fmtMs(v float64, ok bool) string {
	switch a := math.Abs(v); {
	case !ok:
		return "-"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// report writes the summary and returns an error for a failure the input
// shows.
func report(in *input, w io.Writer) error {
	var errs []error
	for _, h := range in.header {
		fmt.Fprintln(w, h)
	}
	if len(in.benches) == 0 {
		errs = append(errs, errors.New("no benchmark results in the input"))
	}

	byName := map[string]row{}
	var rows []row
	width := len("name")
	for _, b := range in.benches {
		for _, r := range b.rows() {
			byName[r.name] = r
			rows = append(rows, r)
			width = max(width, len(r.name))
		}
	}
	fmt.Fprintf(w, "%-*s  %7s  %9s  %9s\n", width, "name", "samples", "p50 ms", "p99 ms")
	for _, r := range rows {
		n := "-"
		if r.samples > 0 {
			n = strconv.Itoa(int(r.samples))
		}
		fmt.Fprintf(w, "%-*s  %7s  %9s  %9s\n", width, r.name, n, fmtMs(r.p50, r.hasP50), fmtMs(r.p99, r.hasP99))
	}
	fmt.Fprintln(w)

	for _, q := range ratios {
		num, okN := byName[q.num]
		den, okD := byName[q.den]
		if !okN || !okD || !num.hasP50 || !den.hasP50 || den.p50 <= 0 {
			fmt.Fprintf(w, "ratio %s (p50): n/a, needs rows %s and %s\n", q.label, q.num, q.den)
			errs = append(errs, fmt.Errorf("ratio %s: missing rows", q.label))
			continue
		}
		v := num.p50 / den.p50
		verdict := "PASS"
		if v > q.maxTarget {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "ratio %s (p50): %s / %s ms = %.3f, target <= %.2f: %s\n",
			q.label, fmtMs(num.p50, true), fmtMs(den.p50, true), v, q.maxTarget, verdict)
		if d, ok := byName[q.diff]; ok && d.hasP50 {
			fmt.Fprintf(w, "  paired estimate: 1 + p50(%s) / p50(%s) = 1 + %s / %s = %.3f\n",
				q.diff, q.den, fmtMs(d.p50, true), fmtMs(den.p50, true), 1+d.p50/den.p50)
		}
	}

	var checks []string
	broken := false
	for _, b := range in.benches {
		if !b.hasSame {
			continue
		}
		n := b.parts["keygen"]["samples"]
		checks = append(checks, fmt.Sprintf("%s %d/%d", strings.TrimPrefix(b.name, "Create/"), int(b.sameKey), int(n)))
		if b.sameKey != n {
			broken = true
		}
	}
	if len(checks) == 0 {
		fmt.Fprintln(w, "pairing: none in the input (no same-key metric)")
	} else {
		fmt.Fprintln(w, "pairing: Create/* keygen and path samples ran interleaved, order alternating, over the same seeds;"+
			" seed i is a ChaCha8 stream used under GODEBUG cryptocustomrand=1 with a leading 1-byte"+
			" (MaybeReadByte) read ignored; path-keygen is the per-seed difference.")
		status := "identical"
		if broken {
			status = "NOT identical (pairing broken)"
			errs = append(errs, errors.New("pairing broken: a bare key differs from the service's"))
		}
		fmt.Fprintf(w, "pairing: bare key and service key %s for %s seeds\n", status, strings.Join(checks, ", "))
	}
	maxLoad, procs, seen := 0.0, 0, false
	for _, b := range in.benches {
		if b.hasLoad {
			maxLoad, seen = max(maxLoad, b.load1), true
		}
		procs = max(procs, b.procs)
	}
	if seen {
		note := ""
		if procs > 0 && maxLoad > float64(procs) {
			note = fmt.Sprintf(": WARNING, above GOMAXPROCS %d: other work shared the CPUs, figures may be inflated and noisy", procs)
		}
		fmt.Fprintf(w, "load: highest 1-minute load average at the end of a benchmark %.2f%s\n", maxLoad, note)
	}
	for _, f := range in.failed {
		errs = append(errs, fmt.Errorf("the benchmark run failed: %s", f))
	}
	return errors.Join(errs...)
}

func main() {
	in, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	if err := report(in, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}
