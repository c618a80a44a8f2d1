package redis

// Connects returns how many pub/sub connections the broker made.
func (b *Broker) Connects() uint64 { return b.connects.Load() }

// SetSessionHook makes f run before each pub/sub connection.
func (b *Broker) SetSessionHook(f func()) { b.sessionHook.Store(&f) }
