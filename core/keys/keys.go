// Package keys generates the private keys csrfn issues CSRs for and computes
// their identity, the PubMd5.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
)

// Algorithm is a KeyAlgorithm value; the names are AWS ACM's.
type Algorithm string

const (
	RSA2048 Algorithm = "RSA_2048"
	RSA3072 Algorithm = "RSA_3072"
	RSA4096 Algorithm = "RSA_4096"
	ECP256  Algorithm = "EC_prime256v1"
	ECP384  Algorithm = "EC_secp384r1"
	Default           = RSA2048
)

// Algorithms lists the accepted values in the order the README gives them.
var Algorithms = []Algorithm{RSA2048, RSA3072, RSA4096, ECP256, ECP384}

// Parse returns the Algorithm named s exactly, or false.
func Parse(s string) (Algorithm, bool) {
	for _, a := range Algorithms {
		if string(a) == s {
			return a, true
		}
	}
	return "", false
}

// IsEC reports whether a is an elliptic-curve algorithm.
func (a Algorithm) IsEC() bool { return a == ECP256 || a == ECP384 }

// SignatureAlgorithm is the CSR signature the contract fixes for a.
func (a Algorithm) SignatureAlgorithm() x509.SignatureAlgorithm {
	switch a {
	case ECP256:
		return x509.ECDSAWithSHA256
	case ECP384:
		return x509.ECDSAWithSHA384
	default:
		return x509.SHA256WithRSA
	}
}

// Generate makes a new key. Since Go 1.26 the crypto packages ignore random
// and use the system's source unless GODEBUG=cryptocustomrand=1 is set; it
// is passed through so that tests which set that can force failures.
func Generate(random io.Reader, a Algorithm) (crypto.Signer, error) {
	switch a {
	case RSA2048:
		return rsa.GenerateKey(random, 2048)
	case RSA3072:
		return rsa.GenerateKey(random, 3072)
	case RSA4096:
		return rsa.GenerateKey(random, 4096)
	case ECP256:
		return ecdsa.GenerateKey(elliptic.P256(), random)
	case ECP384:
		return ecdsa.GenerateKey(elliptic.P384(), random)
	}
	return nil, fmt.Errorf("keys: unknown algorithm %q", a)
}

// AlgorithmOf names the algorithm of an existing key.
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECP256, nil
		case elliptic.P384():
			return ECP384, nil
		}
	}
	return "", fmt.Errorf("keys: unsupported public key %T", pub)
}

// PubMd5 is the lower-case hex MD5 of a DER SubjectPublicKeyInfo: the key's
// identity in the store, as openssl computes it from the CSR's public key.
func PubMd5(spki []byte) string {
	sum := md5.Sum(spki)
	return hex.EncodeToString(sum[:])
}
