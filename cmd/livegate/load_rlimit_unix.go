//go:build unix

package main

import (
	"fmt"

	"github.com/livegate/livegate/internal/loadgen"
)

// checkOpenFiles refuses more connections than fit comfortably under the
// process's open-files limit.
func checkOpenFiles(conns int) error {
	if err := loadgen.CheckOpenFiles(conns, loadFileShare); err != nil {
		return fmt.Errorf("--conns: %w", err)
	}
	return nil
}
