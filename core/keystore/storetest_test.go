package keystore_test

import (
	"path/filepath"
	"testing"

	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/keystore/storetest"
)

// TestConformance runs the store contract every backend passes against the
// embedded file store.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, err := keystore.OpenFile(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
