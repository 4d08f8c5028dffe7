//go:debug cryptocustomrand=1

package service

// Benchmarks of DESIGN.md §7, run by `make bench` and summarised by
// internal/benchreport. Each benchmark times every sample itself and reports
// p50 and p99 (b.ReportMetric units "p50-ms", "p99-ms", "samples"); a
// benchmark that measures several things interleaved prefixes the units with
// the part's name ("keygen.p50-ms"). ns/op is the mean of the main part;
// load1 is the machine's 1-minute load average when the benchmark ended.
//
// RSA key generation time depends on how long the prime search takes, so
// the whole create path is compared with a bare key generation over the SAME
// random streams: sample i of both reads a ChaCha8 stream seeded with i.
// That needs GODEBUG cryptocustomrand=1 (the go:debug line above; since Go
// 1.26 crypto ignores a caller's reader without it), and a reader that
// ignores the leading one-byte read crypto/internal/randutil.MaybeReadByte
// makes with probability 1/2, which would otherwise shift one stream by a
// byte. TestBenchPairing checks that both sides then make the same key, and
// the Create benchmark re-checks it on every sample ("same-key").
//
// CSRFN_BENCH_SCALE (default 1) multiplies every sample count.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/request"
	"github.com/csrfn/csrfn/core/seal"

	"github.com/csrfn/csrfn/internal/testkit"
)

// seededStream is a deterministic random stream, restarted per sample. A
// one-byte read at the start of a stream (randutil.MaybeReadByte) gets a
// zero byte and does not advance the stream, so whether or not crypto makes
// that read, key generation sees the same bytes.
type seededStream struct {
	src     *mrand.ChaCha8
	started bool
}

func newSeededStream(seed uint64) *seededStream {
	s := &seededStream{src: mrand.NewChaCha8([32]byte{})}
	s.reset(seed)
	return s
}

func (s *seededStream) reset(seed uint64) {
	var k [32]byte
	binary.LittleEndian.PutUint64(k[:], seed)
	copy(k[8:], "csrfn bench stream")
	s.src.Seed(k)
	s.started = false
}

func (s *seededStream) Read(p []byte) (int, error) {
	if !s.started && len(p) == 1 {
		s.started = true
		p[0] = 0
		return 1, nil
	}
	s.started = true
	return s.src.Read(p)
}

// bareGenerate is key generation with nothing around it.
func bareGenerate(random io.Reader, a keys.Algorithm) (crypto.Signer, error) {
	switch a {
	case keys.RSA2048:
		return rsa.GenerateKey(random, 2048)
	case keys.RSA3072:
		return rsa.GenerateKey(random, 3072)
	case keys.RSA4096:
		return rsa.GenerateKey(random, 4096)
	case keys.ECP256:
		return ecdsa.GenerateKey(elliptic.P256(), random)
	case keys.ECP384:
		return ecdsa.GenerateKey(elliptic.P384(), random)
	}
	return nil, fmt.Errorf("unknown algorithm %q", a)
}

// benchEnv is a service on a real file store in a temporary directory and
// a real local sealer, whose random source is a seededStream.
type benchEnv struct {
	svc    *Service
	store  *keystore.File
	sealer *seal.Local
	stream *seededStream
}

func newBenchEnv(tb testing.TB) *benchEnv {
	tb.Helper()
	store, err := keystore.OpenFile(filepath.Join(tb.TempDir(), "store"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	master := make([]byte, seal.MasterKeySize)
	crand.Read(master)
	sealer, err := seal.NewLocal(master, crand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	stream := newSeededStream(0)
	svc, err := New(Config{Store: store, Sealer: sealer, Rand: stream})
	if err != nil {
		tb.Fatal(err)
	}
	return &benchEnv{svc: svc, store: store, sealer: sealer, stream: stream}
}

// benchRequest is a typical request: a CommonName, one more SAN, the
// default subject.
func benchRequest(tb testing.TB, a keys.Algorithm) request.Request {
	tb.Helper()
	r, err := request.Parse(params.Set{
		"CommonName":   "www.example.com",
		"SANs":         "example.com",
		"KeyAlgorithm": string(a),
	}, request.SeedDefaults)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func pubMd5Of(tb testing.TB, k crypto.Signer) string {
	tb.Helper()
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return keys.PubMd5(spki)
}

// TestBenchPairing checks what the paired benchmarks rely on: the same seed
// makes the same key in a bare key generation and in the service (as stored
// in its sealed record), whatever MaybeReadByte decides on either side.
func TestBenchPairing(t *testing.T) {
	ctx := context.Background()
	env := newBenchEnv(t)
	check := func(a keys.Algorithm, seed uint64) {
		t.Helper()
		bare, err := bareGenerate(newSeededStream(seed), a)
		if err != nil {
			t.Fatal(err)
		}
		env.stream.reset(seed)
		resp, err := env.svc.Create(ctx, "PAIRING", benchRequest(t, a))
		if err != nil {
			t.Fatal(err)
		}
		data, err := env.store.Load(ctx, record.Name(resp.PubMd5))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := record.Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := record.OpenKey(ctx, rec, env.sealer)
		if err != nil {
			t.Fatal(err)
		}
		eq, ok := stored.(interface{ Equal(crypto.PrivateKey) bool })
		if !ok || !eq.Equal(bare) {
			t.Fatalf("%s seed %d: the service stored another key than the bare generation made (PubMd5 %s, bare %s)",
				a, seed, resp.PubMd5, pubMd5Of(t, bare))
		}
	}
	for seed := range uint64(2) {
		check(keys.RSA2048, seed)
	}
	// MaybeReadByte flips a coin per generation; P-256 is cheap enough to
	// make sure both outcomes on both sides are covered.
	for seed := range uint64(24) {
		check(keys.ECP256, seed)
	}
}

func TestSeededStream(t *testing.T) {
	a, b := newSeededStream(7), newSeededStream(7)
	var one [1]byte
	if n, err := a.Read(one[:]); n != 1 || err != nil || one[0] != 0 {
		t.Fatalf("leading 1-byte read = %d, %v, %#x; want 1, nil, 0", n, err, one[0])
	}
	x, y := make([]byte, 64), make([]byte, 64)
	a.Read(x)
	b.Read(y)
	if string(x) != string(y) {
		t.Fatal("a leading 1-byte read advanced the stream")
	}
	// Only the leading read is skipped.
	a.Read(one[:])
	b.Read(y[:1])
	if one[0] != y[0] {
		t.Fatal("a later 1-byte read did not come from the stream")
	}
	a.reset(7)
	a.Read(x)
	b.reset(7)
	b.Read(y)
	if string(x) != string(y) {
		t.Fatal("reset does not restart the stream")
	}
	b.reset(8)
	b.Read(y)
	if string(x) == string(y) {
		t.Fatal("seeds 7 and 8 gave the same stream")
	}
}

// benchSamples is a list of durations of one measured thing.
type benchSamples []time.Duration

// quantile is testkit.Quantile, the one definition every report uses.
func (s benchSamples) quantile(q float64) time.Duration { return testkit.Quantile(s, q) }

func (s benchSamples) mean() time.Duration {
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return sum / time.Duration(max(len(s), 1))
}

func toMs(d time.Duration) float64 { return float64(d) / 1e6 }

// reportQuantiles emits the samples' count, p50 and p99, units prefixed by part.
func reportQuantiles(b *testing.B, part string, s benchSamples) {
	p := ""
	if part != "" {
		p = part + "."
	}
	b.ReportMetric(float64(len(s)), p+"samples")
	b.ReportMetric(toMs(s.quantile(0.50)), p+"p50-ms")
	b.ReportMetric(toMs(s.quantile(0.99)), p+"p99-ms")
}

// sampleCount scales n by CSRFN_BENCH_SCALE.
func sampleCount(b *testing.B, n int) int {
	if v := os.Getenv("CSRFN_BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			b.Fatalf("CSRFN_BENCH_SCALE=%q: want a positive number", v)
		}
		n = int(math.Round(float64(n) * f))
	}
	return max(n, 3)
}

// reportLoad reports the 1-minute load average at the end of a benchmark
// (Linux only), so a summary can flag results taken on a busy machine.
func reportLoad(b *testing.B) {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return
	}
	if v, err := strconv.ParseFloat(f[0], 64); err == nil {
		b.ReportMetric(v, "load1")
	}
}

func timeOp(f func() error) (time.Duration, error) {
	t0 := time.Now()
	err := f()
	return time.Since(t0), err
}

// BenchmarkKeyGenCryptoRand is the reference: a bare RSA 2048 key
// generation from crypto/rand, as production runs it.
func BenchmarkKeyGenCryptoRand(b *testing.B) {
	b.Run("RSA_2048", func(b *testing.B) {
		n := sampleCount(b, 200)
		var s benchSamples
		for range b.N {
			for range n {
				d, err := timeOp(func() error { _, err := rsa.GenerateKey(crand.Reader, 2048); return err })
				if err != nil {
					b.Fatal(err)
				}
				s = append(s, d)
			}
		}
		reportQuantiles(b, "", s)
		b.ReportMetric(float64(s.mean()), "ns/op")
		reportLoad(b)
	})
}

// BenchmarkCreate measures, per algorithm, the whole create path
// (service.Create: key, CSR, sealing, durable write) and a bare key
// generation, interleaved over the same seeds (the order alternates per
// seed). Parts: keygen, path, and path-keygen (the per-seed difference).
// same-key counts the seeds whose bare key was the service's key.
func BenchmarkCreate(b *testing.B) {
	cases := []struct {
		alg keys.Algorithm
		n   int
	}{
		{keys.RSA2048, 400},
		{keys.RSA3072, 80},
		{keys.RSA4096, 30},
		{keys.ECP256, 1000},
		{keys.ECP384, 1000},
	}
	for _, c := range cases {
		b.Run(string(c.alg), func(b *testing.B) {
			ctx := context.Background()
			env := newBenchEnv(b)
			req := benchRequest(b, c.alg)
			bareStream := newSeededStream(0)
			n := sampleCount(b, c.n)
			var keygen, path, diff benchSamples
			same := 0
			seed := uint64(0)
			b.ResetTimer()
			for range b.N {
				for range n {
					var bare crypto.Signer
					bareOp := func() error {
						bareStream.reset(seed)
						var err error
						bare, err = bareGenerate(bareStream, c.alg)
						return err
					}
					var resp *Response
					pathOp := func() error {
						env.stream.reset(seed)
						var err error
						resp, err = env.svc.Create(ctx, "BENCH", req)
						return err
					}
					var dk, dp time.Duration
					var err1, err2 error
					if seed%2 == 0 {
						dk, err1 = timeOp(bareOp)
						dp, err2 = timeOp(pathOp)
					} else {
						dp, err2 = timeOp(pathOp)
						dk, err1 = timeOp(bareOp)
					}
					if err1 != nil || err2 != nil {
						b.Fatal(err1, err2)
					}
					keygen = append(keygen, dk)
					path = append(path, dp)
					diff = append(diff, dp-dk)
					if pubMd5Of(b, bare) == resp.PubMd5 {
						same++
					}
					seed++
				}
			}
			reportQuantiles(b, "keygen", keygen)
			reportQuantiles(b, "path", path)
			reportQuantiles(b, "path-keygen", diff)
			b.ReportMetric(float64(same), "same-key")
			b.ReportMetric(float64(path.mean()), "ns/op")
			reportLoad(b)
		})
	}
}

// BenchmarkPremadeKey measures, with one pre-made RSA 2048 key and
// interleaved (the order rotates per sample):
//   - path: createWithKey, everything after key generation (CSR signature,
//     parse-back check, PEM, MD5, PKCS#8, AES-GCM, JSON, durable write);
//   - csr-sign: a bare x509.CreateCertificateRequest with the same template
//     (the subject and SAN extension of the path's CSR);
//   - pkcs1v15-sign: a bare rsa.SignPKCS1v15 of a SHA-256 digest.
//
// The path's record is removed after each sample, outside the timing, and
// the directory fsynced, so that the next sample can store the same key.
func BenchmarkPremadeKey(b *testing.B) {
	b.Run("RSA_2048", func(b *testing.B) {
		ctx := context.Background()
		env := newBenchEnv(b)
		req := benchRequest(b, keys.RSA2048)
		key, err := rsa.GenerateKey(crand.Reader, 2048)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := env.svc.createWithKey(ctx, "BENCH", req, key)
		if err != nil {
			b.Fatal(err)
		}
		recPath := filepath.Join(env.store.Dir(), record.Name(resp.PubMd5))
		dir, err := os.Open(env.store.Dir())
		if err != nil {
			b.Fatal(err)
		}
		defer dir.Close()
		unstore := func() {
			if err := os.Remove(recPath); err != nil {
				b.Fatal(err)
			}
			if err := dir.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		unstore()
		parsed, err := x509.ParseCertificateRequest(mustPEMBlock(b, resp.Csr))
		if err != nil {
			b.Fatal(err)
		}
		tmpl := &x509.CertificateRequest{
			RawSubject:         parsed.RawSubject,
			ExtraExtensions:    parsed.Extensions,
			SignatureAlgorithm: x509.SHA256WithRSA,
		}
		digest := sha256.Sum256([]byte("csrfn"))

		ops := []func() error{
			func() error { _, err := env.svc.createWithKey(ctx, "BENCH", req, key); return err },
			func() error { _, err := x509.CreateCertificateRequest(crand.Reader, tmpl, key); return err },
			func() error { _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); return err },
		}
		parts := []string{"path", "csr-sign", "pkcs1v15-sign"}
		s := make([]benchSamples, len(ops))
		n := sampleCount(b, 1000)
		i := 0
		b.ResetTimer()
		for range b.N {
			for range n {
				for j := range ops {
					k := (i + j) % len(ops)
					d, err := timeOp(ops[k])
					if err != nil {
						b.Fatal(err)
					}
					s[k] = append(s[k], d)
					if k == 0 {
						b.StopTimer()
						unstore()
						b.StartTimer()
					}
				}
				i++
			}
		}
		for k, part := range parts {
			reportQuantiles(b, part, s[k])
		}
		b.ReportMetric(float64(s[0].mean()), "ns/op")
		reportLoad(b)
	})
}

func mustPEMBlock(tb testing.TB, s string) []byte {
	tb.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		tb.Fatal("the CSR is not PEM")
	}
	return block.Bytes
}
