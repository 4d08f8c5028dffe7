//go:build !linux

package keystore

import (
	"errors"
	"os"
)

const unnamedSupported = false

var errNoUnnamed = errors.New("keystore: unnamed files unavailable")

func openUnnamed(string) (*os.File, error) { return nil, errNoUnnamed }
func linkUnnamed(*os.File, string) error   { return errNoUnnamed }

func unnamedUnsupported(error) bool { return true }
