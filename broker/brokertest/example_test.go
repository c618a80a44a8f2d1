package brokertest_test

import (
	"testing"

	"github.com/livegate/livegate/broker"
	"github.com/livegate/livegate/broker/brokertest"
)

// A broker implementation's tests run the contract tests with a
// constructor that gives each test a fresh broker.
func ExampleRun() {
	testBroker := func(t *testing.T) {
		brokertest.Run(t, func(t *testing.T) broker.Broker {
			b := broker.NewMemory(broker.MemoryConfig{})
			t.Cleanup(func() { _ = b.Close() })
			return b
		})
	}
	_ = testBroker // func TestMyBroker(t *testing.T) { testBroker(t) }
}
