//go:build !unix

package loadgen

// CheckOpenFiles has no open-files limit to check on this platform.
func CheckOpenFiles(int, float64) error { return nil }
