// Package testkit holds what several packages' tests share: the openssl
// cross-checks of a CSR, the check that a CSR's sealed key is in a file
// store and unseals to the key of that CSR, a fresh file store for a
// function, log capture and parsing, and the cold-start benchmark loop.
// Only tests (and test-support packages) import it.
package testkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/seal"
)

// MasterKey returns a fresh master key and its base64 form for
// CSRFN_MASTER_KEY.
func MasterKey(t testing.TB) ([]byte, string) {
	t.Helper()
	k := make([]byte, seal.MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k, base64.StdEncoding.EncodeToString(k)
}

// OpenSSL runs openssl with stdin and returns its combined output.
func OpenSSL(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// VerifyCSR checks the CSR's self-signature with openssl. openssl exits 0
// even when verification fails, so the text decides.
func VerifyCSR(t testing.TB, csrPEM string) {
	t.Helper()
	out := OpenSSL(t, []byte(csrPEM), "req", "-noout", "-verify")
	if !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl req -verify did not say verify OK:\n%s", out)
	}
}

var md5RE = regexp.MustCompile(`(?m)([0-9a-f]{32})\s*$`)

// PubMd5 computes the PubMd5 of a CSR the way the contract states it:
// openssl req -pubkey | openssl pkey -pubin -outform DER | openssl md5.
func PubMd5(t testing.TB, csrPEM string) string {
	t.Helper()
	pub := OpenSSL(t, []byte(csrPEM), "req", "-noout", "-pubkey")
	der := opensslRaw(t, []byte(pub), "pkey", "-pubin", "-outform", "DER")
	m := md5RE.FindStringSubmatch(OpenSSL(t, der, "md5"))
	if m == nil {
		t.Fatal("openssl md5 printed no digest")
	}
	return m[1]
}

func opensslRaw(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// CheckStored asserts that dir holds the record of pubMd5, that it carries
// csrPEM, and that its sealed key opens under masterKey to the key of that
// CSR. It returns the record.
func CheckStored(t testing.TB, dir string, masterKey []byte, pubMd5, csrPEM string) *record.Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, record.Name(pubMd5)))
	if err != nil {
		t.Fatalf("record of %s: %v", pubMd5, err)
	}
	rec, err := record.Unmarshal(b)
	if err != nil {
		t.Fatalf("record of %s: %v", pubMd5, err)
	}
	if rec.Csr != csrPEM {
		t.Fatalf("record of %s holds another CSR", pubMd5)
	}
	opener, err := seal.NewLocal(masterKey, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := record.OpenKey(context.Background(), rec, opener); err != nil {
		t.Fatalf("record of %s does not unseal to the CSR's key: %v", pubMd5, err)
	}
	return rec
}

// CheckCSR runs every openssl check on a returned CSR and its store record.
func CheckCSR(t testing.TB, dir string, masterKey []byte, pubMd5, csrPEM string) *record.Record {
	t.Helper()
	VerifyCSR(t, csrPEM)
	if got := PubMd5(t, csrPEM); got != pubMd5 {
		t.Fatalf("PubMd5 %s, openssl computes %s", pubMd5, got)
	}
	return CheckStored(t, dir, masterKey, pubMd5, csrPEM)
}

// PeakRSS returns the peak resident set size (VmHWM) of process pid.
func PeakRSS(pid int) (kib int, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// PidOf finds the running process whose executable is path.
func PidOf(path string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process runs %s", path)
}

// Quantile returns the q-quantile (0–1) of xs, interpolating linearly
// between the closest ranks. Every benchmark report uses it, so that a p50
// means the same thing everywhere.
func Quantile[T ~int64 | ~float64](xs []T, q float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + T((h-float64(lo))*float64(s[lo+1]-s[lo]))
}
