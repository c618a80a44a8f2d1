package ops

import "time"

// SetAfterFunc replaces the timer that ends a coalescing window, so that
// tests drive it with a fake clock. Call it before Start.
func SetAfterFunc(m *Manager, f func(d time.Duration, fn func()) (stop func() bool)) {
	m.afterFunc = f
}
