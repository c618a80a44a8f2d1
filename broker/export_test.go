package broker

// ChannelCount returns how many channels b holds: those with a stream or a
// subscription, plus dead ones not yet removed. Tests use it to check that
// channels do not accumulate.
func (b *MemoryBroker) ChannelCount() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += len(s.channels)
		s.mu.Unlock()
	}
	return n
}
