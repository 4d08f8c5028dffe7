//go:build csrfn_testhooks

package main

import "bytes"

// Only the end-to-end tests build with csrfn_testhooks: they need a handler
// panic to show that the process keeps serving after one.
func init() {
	testHook = func(payload []byte) {
		if bytes.Contains(payload, []byte("csrfn-test-panic")) {
			panic("csrfn test hook: forced panic")
		}
	}
}
