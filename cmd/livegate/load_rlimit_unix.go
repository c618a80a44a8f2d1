//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// checkOpenFiles refuses more connections than fit comfortably under the
// process's open-files limit.
func checkOpenFiles(conns int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil // no limit known: the --conns cap applies
	}
	if limit := float64(rl.Cur) * loadFileShare; float64(conns) > limit {
		return fmt.Errorf("--conns %d is over %d%% of the open-files limit (%d); raise it with ulimit -n", conns, int(loadFileShare*100), rl.Cur)
	}
	return nil
}
