package config

import (
	"errors"
	"fmt"
	"io"

	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/seal"
)

// LocalSealer builds the local master-key sealer. The key comes from
// CSRFN_MASTER_KEY, else CSRFN_MASTER_KEY_FILE; with neither, createDefault
// says whether to create DefaultMasterKeyFile (the local server) or to fail
// (the cloud adapters, which should use a KMS). created reports a new file.
func LocalSealer(c *Config, random io.Reader, createDefault bool) (s *seal.Local, keyFile string, created bool, err error) {
	var key []byte
	switch {
	case c.MasterKey != "":
		key, err = seal.DecodeKey(c.MasterKey.Reveal())
		if err != nil {
			return nil, "", false, &Error{EnvMasterKey, err.Error()}
		}
	case c.MasterKeyFile != "":
		keyFile = c.MasterKeyFile
		key, err = seal.ReadKeyFile(keyFile)
		if err != nil {
			return nil, "", false, &Error{EnvMasterKeyFile, err.Error()}
		}
	case createDefault:
		keyFile = DefaultMasterKeyFile
		key, created, err = seal.LoadOrCreateKeyFile(keyFile, random)
		if err != nil {
			return nil, "", false, &Error{EnvMasterKeyFile, fmt.Sprintf("default %s: %v", keyFile, err)}
		}
	default:
		return nil, "", false, &Error{EnvMasterKey, "no sealing key: set " + EnvKMSKeyID + " (recommended in the cloud), " + EnvMasterKey + " or " + EnvMasterKeyFile}
	}
	s, err = seal.NewLocal(key, random)
	seal.Zero(key)
	if err != nil {
		return nil, "", false, &Error{EnvMasterKey, err.Error()}
	}
	return s, keyFile, created, nil
}

// FileStore opens the file:// store of c.
func FileStore(c *Config) (*keystore.File, error) {
	if c.Store.Scheme != "file" {
		return nil, &Error{EnvStore, fmt.Sprintf("this build serves only file:// stores, not %s://", c.Store.Scheme)}
	}
	s, err := keystore.FromURL(c.Store)
	if err != nil {
		return nil, &Error{EnvStore, err.Error()}
	}
	return s, nil
}

// AsError reports whether err is a configuration error.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
