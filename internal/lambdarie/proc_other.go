//go:build !linux

package lambdarie

import (
	"errors"
	"syscall"
)

// The RIE only runs on Linux: RIEPath and Start skip the test elsewhere, so
// these are never called.
const supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalTerm(int) error { return errors.New("lambdarie: unsupported platform") }

func killGroup(int) {}

type proc struct{}

func (proc) kill() {}

func descendants(int) []proc { return nil }

func processAlive(int) bool { return false }
