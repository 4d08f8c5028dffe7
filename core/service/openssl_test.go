package service_test

// Cross-checks of the CSRs the service produces with the real openssl CLI,
// the independent peer of DESIGN.md §1: self-signature, subject order and
// values, SANs, key type and size, signature algorithm and PubMd5. openssl
// must be installed (CI installs it); the test fails, never skips, without.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/record"
)

func opensslPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("the openssl CLI is required for the cross-checks (apt-get install openssl): %v", err)
	}
	return p
}

// openssl runs openssl with args and returns stdout and stderr together.
func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(opensslPath(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// pipeline runs the commands with each one's stdout piped into the next
// one's stdin, as a shell pipeline would, and returns the last's stdout.
func pipeline(t *testing.T, cmds ...*exec.Cmd) []byte {
	t.Helper()
	stderr := make([]bytes.Buffer, len(cmds)) // one each: they run at once
	for i, c := range cmds {
		c.Stderr = &stderr[i]
		if i > 0 {
			r, err := cmds[i-1].StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			c.Stdin = r
		}
	}
	var out bytes.Buffer
	cmds[len(cmds)-1].Stdout = &out
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, stderr[i].String())
		}
	}
	return out.Bytes()
}

// opensslPubMd5 is `openssl req -in x.csr -noout -pubkey | openssl pkey
// -pubin -outform DER | openssl md5`; it also returns the SPKI DER.
func opensslPubMd5(t *testing.T, csrPath string) (md5hex string, spki []byte) {
	t.Helper()
	o := opensslPath(t)
	spki = pipeline(t,
		exec.Command(o, "req", "-in", csrPath, "-noout", "-pubkey"),
		exec.Command(o, "pkey", "-pubin", "-outform", "DER"))
	out := pipeline(t,
		exec.Command(o, "req", "-in", csrPath, "-noout", "-pubkey"),
		exec.Command(o, "pkey", "-pubin", "-outform", "DER"),
		exec.Command(o, "md5"))
	// "MD5(stdin)= 629bf4fd…" (OpenSSL 3) or "(stdin)= 629bf4fd…" (1.1).
	m := regexp.MustCompile(`= ([0-9a-f]{32})\s*$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("cannot read openssl md5 output %q", out)
	}
	return string(m[1]), spki
}

// opensslVerified reports whether `openssl req -verify` accepted the CSR.
// openssl exits 0 either way, so the text decides.
func opensslVerified(t *testing.T, args ...string) bool {
	t.Helper()
	out := openssl(t, append([]string{"req", "-noout", "-verify"}, args...)...)
	return strings.Contains(out, "verify OK") && !strings.Contains(strings.ToLower(out), "fail")
}

// opensslSubject returns the subject as short-name/value pairs in order.
func opensslSubject(t *testing.T, csrPath string) [][2]string {
	t.Helper()
	out := openssl(t, "req", "-in", csrPath, "-noout", "-subject", "-nameopt", "sep_multiline,sname,utf8,-esc_msb,space_eq")
	var got [][2]string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "    ") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "    "), " = ")
		if !ok {
			t.Fatalf("subject line %q", line)
		}
		got = append(got, [2]string{k, v})
	}
	return got
}

type opensslText struct {
	bits     string   // "2048"
	curve    string   // "prime256v1"
	exponent string   // "65537"
	sigAlgs  []string // every "Signature Algorithm:" line
	sans     []string // "DNS:x" and "IP:canonical"
}

func opensslParseText(t *testing.T, csrPath string) opensslText {
	t.Helper()
	out := openssl(t, "req", "-in", csrPath, "-noout", "-text")
	var r opensslText
	if m := regexp.MustCompile(`Public-Key: \((\d+) bit\)`).FindStringSubmatch(out); m != nil {
		r.bits = m[1]
	}
	if m := regexp.MustCompile(`ASN1 OID: (\S+)`).FindStringSubmatch(out); m != nil {
		r.curve = m[1]
	}
	if m := regexp.MustCompile(`Exponent: (\d+)`).FindStringSubmatch(out); m != nil {
		r.exponent = m[1]
	}
	for _, m := range regexp.MustCompile(`Signature Algorithm: (\S+)`).FindAllStringSubmatch(out, -1) {
		r.sigAlgs = append(r.sigAlgs, m[1])
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, "X509v3 Subject Alternative Name") && i+1 < len(lines) {
			for _, item := range strings.Split(strings.TrimSpace(lines[i+1]), ", ") {
				switch {
				case strings.HasPrefix(item, "DNS:"):
					r.sans = append(r.sans, item)
				case strings.HasPrefix(item, "IP Address:"):
					a, err := netip.ParseAddr(strings.TrimPrefix(item, "IP Address:"))
					if err != nil {
						t.Fatalf("openssl printed IP %q: %v", item, err)
					}
					r.sans = append(r.sans, "IP:"+a.String())
				default:
					r.sans = append(r.sans, "OTHER:"+item)
				}
			}
		}
	}
	return r
}

// TestOpenSSLCrossCheck produces one CSR per KeyAlgorithm through the
// service and has openssl check every property the contract fixes.
func TestOpenSSLCrossCheck(t *testing.T) {
	t.Parallel()
	opensslPath(t)
	tests := []struct {
		alg, bits, curve, sig string
	}{
		{"RSA_2048", "2048", "", "sha256WithRSAEncryption"},
		{"RSA_3072", "3072", "", "sha256WithRSAEncryption"},
		{"RSA_4096", "4096", "", "sha256WithRSAEncryption"},
		{"EC_prime256v1", "256", "prime256v1", "ecdsa-with-SHA256"},
		{"EC_secp384r1", "384", "secp384r1", "ecdsa-with-SHA384"},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, nil)
			resp := e.post(t, map[string]any{
				"CommonName":       "Example.COM.",
				"SANs":             []string{"www.example.com", "192.0.2.10", "2001:DB8::1", "bücher.example", "*.example.com", "WWW.example.com", "::ffff:198.51.100.9"},
				"Organization":     "Acme, Inc.",
				"OrganizationUnit": "Web+Ops",
				"Country":          "de",
				"State":            "Baden-Württemberg",
				"City":             "Stuttgart",
				"Email":            "admin@example.com",
				"KeyAlgorithm":     tc.alg,
			})
			if resp.Status != 200 {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			var body struct{ RequestId, PubMd5, Csr, CommonName string }
			if err := json.Unmarshal(resp.Body, &body); err != nil {
				t.Fatal(err)
			}
			if body.CommonName != "example.com" {
				t.Errorf("CommonName %q", body.CommonName)
			}
			csrPath := filepath.Join(t.TempDir(), "x.csr")
			if err := os.WriteFile(csrPath, []byte(body.Csr), 0o600); err != nil {
				t.Fatal(err)
			}

			if !opensslVerified(t, "-in", csrPath) {
				t.Error("openssl req -verify did not print verify OK")
			}

			wantSubject := [][2]string{
				{"C", "DE"}, {"ST", "Baden-Württemberg"}, {"L", "Stuttgart"}, {"O", "Acme, Inc."},
				{"OU", "Web+Ops"}, {"CN", "example.com"}, {"emailAddress", "admin@example.com"},
			}
			if got := opensslSubject(t, csrPath); !slices.Equal(got, wantSubject) {
				t.Errorf("subject\n got  %q\n want %q", got, wantSubject)
			}

			txt := opensslParseText(t, csrPath)
			wantSANs := []string{"DNS:example.com", "DNS:www.example.com", "IP:192.0.2.10", "IP:2001:db8::1",
				"DNS:xn--bcher-kva.example", "DNS:*.example.com", "IP:198.51.100.9"}
			if !slices.Equal(txt.sans, wantSANs) {
				t.Errorf("SANs\n got  %q\n want %q", txt.sans, wantSANs)
			}
			if txt.bits != tc.bits {
				t.Errorf("key size %q bits, want %s", txt.bits, tc.bits)
			}
			if txt.curve != tc.curve {
				t.Errorf("curve %q, want %q", txt.curve, tc.curve)
			}
			if tc.curve == "" && txt.exponent != "65537" {
				t.Errorf("RSA exponent %q, want 65537", txt.exponent)
			}
			if len(txt.sigAlgs) == 0 {
				t.Error("openssl printed no signature algorithm")
			}
			for _, s := range txt.sigAlgs {
				if s != tc.sig {
					t.Errorf("signature algorithm %q, want %q", s, tc.sig)
				}
			}

			md5hex, spki := opensslPubMd5(t, csrPath)
			if md5hex != body.PubMd5 {
				t.Errorf("PubMd5 %s, openssl says %s", body.PubMd5, md5hex)
			}

			// The stored record opens to the key of this CSR.
			b, err := e.store.Load(ctx, record.Name(body.PubMd5))
			if err != nil {
				t.Fatalf("no record under the PubMd5: %v", err)
			}
			rec, err := record.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Csr != body.Csr || string(rec.KeyAlgorithm) != tc.alg || rec.RequestId != body.RequestId {
				t.Errorf("record does not match the response")
			}
			key, err := record.OpenKey(ctx, rec, e.local)
			if err != nil {
				t.Fatalf("OpenKey: %v", err)
			}
			pub, err := x509.MarshalPKIXPublicKey(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pub, spki) {
				t.Error("the stored private key's public key differs from the one openssl reads from the CSR")
			}
			block, _ := pem.Decode([]byte(body.Csr))
			req, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(req.PublicKey) {
				t.Error("the stored private key does not match the CSR")
			}

			// No file in the store holds the private key in the clear.
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if h := e.sealer.plaintexts(); len(h) != 1 || !bytes.Equal(h[0], der) {
				t.Error("the sealer was not handed this key's PKCS#8 DER")
			}
			secrets := map[string][]string{"master key": needles(e.master)}
			secretsOf(t, der, secrets)
			texts := map[string]string{"log": e.logs.String(), "response": string(resp.Body)}
			for name, b := range e.storeFiles(t) {
				texts["store file "+name] = string(b)
			}
			if len(texts) != 3 {
				t.Errorf("store holds %d files, want 1", len(texts)-2)
			}
			assertNoLeak(t, secrets, texts)
		})
	}
}

// TestOpenSSLRefusesTamperedCSR shows that the verify check can fail: a
// CSR whose signature was altered is not reported as verified.
func TestOpenSSLRefusesTamperedCSR(t *testing.T) {
	t.Parallel()
	opensslPath(t)
	e := newEnv(t, nil)
	resp := e.post(t, map[string]any{"CommonName": "example.com", "KeyAlgorithm": "EC_prime256v1"})
	if resp.Status != 200 {
		t.Fatalf("status %d", resp.Status)
	}
	var body struct{ Csr string }
	json.Unmarshal(resp.Body, &body)
	block, _ := pem.Decode([]byte(body.Csr))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.der")
	bad := filepath.Join(dir, "bad.der")
	os.WriteFile(good, block.Bytes, 0o600)
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-5] ^= 0xff // inside the signature value
	os.WriteFile(bad, tampered, 0o600)
	if !opensslVerified(t, "-inform", "DER", "-in", good) {
		t.Fatal("the untouched CSR did not verify")
	}
	if opensslVerified(t, "-inform", "DER", "-in", bad) {
		t.Error("openssl reported a tampered CSR as verified: the check cannot fail")
	}
}
