//go:build !unix

package main

// checkOpenFiles has no open-files limit to check on this platform: the
// --conns cap applies alone.
func checkOpenFiles(int) error { return nil }
