package testkit

import (
	"testing"
	"time"
)

// ColdStartPayload is the request of the cold-start benchmarks: one
// RSA_2048 key.
var ColdStartPayload = []byte(`{"CommonName":"cold.example.com","KeyAlgorithm":"RSA_2048"}`)

// ColdStart is what one cold start of a function measured.
type ColdStart struct {
	Init          time.Duration // from process start until ready for the first event
	FirstResponse time.Duration // until the first response
	Pid           int           // the function's process, for its peak RSS
}

// BenchColdStarts measures b.N cold starts. Each time it calls start with
// the environment of a fresh file store and master key (FileStoreEnv);
// start runs the function under its emulator, invokes it once with
// ColdStartPayload, and returns what it measured and a stop that ends the
// function. The peak RSS of ColdStart.Pid is read before stop. It reports
// the medians as init-ms, first-response-ms and peak-rss-MiB.
func BenchColdStarts(b *testing.B, start func(env []string) (ColdStart, func())) {
	b.Helper()
	var inits, firsts, rss []float64
	for range b.N {
		_, _, env := FileStoreEnv(b)
		cs, stop := start(env)
		inits = append(inits, millis(cs.Init))
		firsts = append(firsts, millis(cs.FirstResponse))
		kib, err := PeakRSS(cs.Pid)
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, float64(kib)/1024)
		stop()
	}
	b.ReportMetric(Quantile(inits, 0.5), "init-ms")
	b.ReportMetric(Quantile(firsts, 0.5), "first-response-ms")
	b.ReportMetric(Quantile(rss, 0.5), "peak-rss-MiB")
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
