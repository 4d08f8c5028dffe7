package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/csrfn/csrfn/core/service
cpu: AMD EPYC
BenchmarkKeyGenCryptoRand/RSA_2048-2         	       1	  63362662 ns/op	        41.60 p50-ms	       225.6 p99-ms	        10.00 samples
BenchmarkCreate/RSA_2048-2                   	       1	  48731899 ns/op	        42.00 keygen.p50-ms	       101.1 keygen.p99-ms	        20.00 keygen.samples	         2.398 path-keygen.p50-ms	        12.49 path-keygen.p99-ms	        20.00 path-keygen.samples	        43.50 path.p50-ms	       105.0 path.p99-ms	        20.00 path.samples	        20.00 same-key	         1.50 load1
BenchmarkCreate/EC_prime256v1-2              	       1	    637895 ns/op	         0.01156 keygen.p50-ms	         0.05679 keygen.p99-ms	        30.00 keygen.samples	         0.5952 path-keygen.p50-ms	         1.085 path-keygen.p99-ms	        30.00 path-keygen.samples	         0.6059 path.p50-ms	         1.114 path.p99-ms	        30.00 path.samples	        30.00 same-key	         2.50 load1
BenchmarkPremadeKey/RSA_2048-2               	       1	   1377339 ns/op	         0.8000 csr-sign.p50-ms	         1.182 csr-sign.p99-ms	        50.00 csr-sign.samples	         1.600 path.p50-ms	         2.532 path.p99-ms	        50.00 path.samples	         0.7492 pkcs1v15-sign.p50-ms	         1.014 pkcs1v15-sign.p99-ms	        50.00 pkcs1v15-sign.samples
PASS
ok  	github.com/csrfn/csrfn/core/service	6.446s
`

func run(t *testing.T, in string) (string, error) {
	t.Helper()
	parsed, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err = report(parsed, &out)
	return out.String(), err
}

func TestReport(t *testing.T) {
	out, err := run(t, sample)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	t.Log("\n" + out)

	// Rows in order, with the processor suffix dropped and parts ordered.
	wantRows := []string{
		"KeyGenCryptoRand/RSA_2048  10   41.60  225.6",
		"Create/RSA_2048/keygen  20   42.00  101.1",
		"Create/RSA_2048/path  20   43.50  105.0",
		"Create/RSA_2048/path-keygen  20    2.40  12.49",
		"Create/EC_prime256v1/keygen  30   0.012  0.057",
		"PremadeKey/RSA_2048/path  50    1.60   2.53",
		"PremadeKey/RSA_2048/csr-sign  50   0.800   1.18",
		"PremadeKey/RSA_2048/pkcs1v15-sign  50   0.749   1.01",
	}
	last := -1
	for _, w := range wantRows {
		i := indexFields(out, w)
		if i < 0 {
			t.Errorf("no row %q", w)
			continue
		}
		if i < last {
			t.Errorf("row %q out of order", w)
		}
		last = i
	}
	for _, w := range []string{
		"cpu: AMD EPYC",
		"ratio whole RSA_2048 path / bare key generation (p50): 43.50 / 42.00 ms = 1.036, target <= 1.05: PASS",
		"ratio pre-made-key RSA_2048 path / bare CSR signature (p50): 1.60 / 0.800 ms = 2.000, target <= 1.60: MISS",
		"pairing: bare key and service key identical for RSA_2048 20/20, EC_prime256v1 30/30 seeds",
		"  paired estimate: 1 + p50(Create/RSA_2048/path-keygen) / p50(Create/RSA_2048/keygen) = 1 + 2.40 / 42.00 = 1.057",
		"load: highest 1-minute load average at the end of a benchmark 2.50: WARNING, above GOMAXPROCS 2",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// indexFields finds the line whose fields are want's, returning its index.
func indexFields(out, want string) int {
	w := strings.Join(strings.Fields(want), " ")
	for i, line := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(line), " ") == w {
			return i
		}
	}
	return -1
}

func TestReportErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "PASS\n",
		"missing row":    strings.Replace(sample, "BenchmarkPremadeKey", "BenchmarkOther", 1),
		"broken pairing": strings.Replace(sample, "20.00 same-key", "19.00 same-key", 1),
		"failed":         sample + "--- FAIL: BenchmarkCreate/RSA_4096\nFAIL\n",
	} {
		if out, err := run(t, in); err == nil {
			t.Errorf("%s: no error\n%s", name, out)
		}
	}
}

func TestParseBench(t *testing.T) {
	b, err := parseBench("BenchmarkA/B-16 \t 3 \t 12 ns/op \t 1.5 p50-ms \t 2 x.p99-ms")
	if err != nil {
		t.Fatal(err)
	}
	if b.name != "A/B" || b.procs != 16 || b.parts[""]["p50-ms"] != 1.5 || b.parts["x"]["p99-ms"] != 2 || b.parts[""]["ns/op"] != 12 {
		t.Fatalf("got %+v", b)
	}
	// A benchmark's name alone (printed before its logs) is not a result.
	if b, err := parseBench("BenchmarkA/B"); b != nil || err != nil {
		t.Fatalf("name only: %v, %v", b, err)
	}
	if _, err := parseBench("BenchmarkA 1 12"); err == nil {
		t.Fatal("odd field count accepted")
	}
	if _, err := parseBench("BenchmarkA 1 x ns/op"); err == nil {
		t.Fatal("bad value accepted")
	}
}
