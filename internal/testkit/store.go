package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// FileStoreEnv returns the directory of a fresh file store (not created
// yet: the function creates it), a new master key, and the environment
// (CSRFN_STORE, CSRFN_MASTER_KEY) that points a function at them.
func FileStoreEnv(t testing.TB) (store string, key []byte, env []string) {
	t.Helper()
	key, keyB64 := MasterKey(t)
	store = filepath.Join(t.TempDir(), "store")
	return store, key, []string{"CSRFN_STORE=file://" + store, "CSRFN_MASTER_KEY=" + keyB64}
}

// BreakStore replaces the file store's directory by a plain file, so that
// every later Create fails (tests run as root ignore permissions, so chmod
// would not do).
func BreakStore(t testing.TB, store string) {
	t.Helper()
	if err := os.RemoveAll(store); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
