//go:build unix

package loadgen

import (
	"fmt"
	"syscall"
)

// CheckOpenFiles refuses conns when they would use more than share (0..1)
// of the process's open-files limit.
func CheckOpenFiles(conns int, share float64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil // no limit known: the tool's own cap applies
	}
	if limit := float64(rl.Cur) * share; float64(conns) > limit {
		return fmt.Errorf("%d connections is over %d%% of the open-files limit (%d); raise it with ulimit -n", conns, int(share*100), rl.Cur)
	}
	return nil
}
