//go:build !unix

package s3store

// lockFile is a no-op where flock(2) is missing: a concurrent build is
// wasted work, not a broken one, since the binary is renamed into place.
func lockFile(string) (func(), error) { return func() {}, nil }
