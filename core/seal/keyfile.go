package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DecodeKey decodes a base64 master key (standard or URL alphabet, padding
// optional). Errors never quote the input.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != MasterKeySize {
				return nil, fmt.Errorf("the master key decodes to %d bytes; it must be %d (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)", len(k), MasterKeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("the master key is not valid base64 (generate one with `openssl rand -base64 32`)")
}

// ErrKeyFileMode is returned for a key file that group or others may read.
var ErrKeyFileMode = errors.New("the master key file is accessible by group or others; run chmod 600 on it")

// ReadKeyFile reads a base64 master key from path, refusing a file whose
// mode grants group or others any access.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %w (mode %04o)", path, ErrKeyFileMode, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, err
	}
	k, err := DecodeKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKeyFile reads the master key at path, creating it with a new
// random key (mode 0600, directory 0700) when it does not exist. created
// says which happened.
func LoadOrCreateKeyFile(path string, random io.Reader) (key []byte, created bool, err error) {
	k, err := ReadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	k = make([]byte, MasterKeySize)
	if _, err := io.ReadFull(random, k); err != nil {
		return nil, false, fmt.Errorf("generate master key: %w", err)
	}
	// Written aside and linked into place, so that a concurrent start never
	// reads a half-written key and the first writer wins.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".master.key-*") // mode 0600
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return nil, false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		k, err := ReadKeyFile(path)
		return k, false, err
	} else if err != nil {
		return nil, false, err
	}
	return k, true, syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
