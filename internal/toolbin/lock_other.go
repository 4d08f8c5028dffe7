//go:build !unix

package toolbin

// lockFile is a no-op where flock is unavailable; concurrent first builds
// then race, and the rename keeps each result whole.
func lockFile(string) (func(), error) { return func() {}, nil }
