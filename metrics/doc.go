// Package metrics holds livegate's Prometheus metrics: connections,
// commands, messages, rate limits, authentication failures, back-end
// errors, audit drops and publish-to-deliver latency.
//
// Create one Metrics per Gateway with New, set it as Config.Metrics, and
// serve Handler on an admin listener that only operators reach:
//
//	m := metrics.New()
//	gw, err := livegate.New(livegate.Config{..., Metrics: m})
//	...
//	admin := http.NewServeMux()
//	admin.Handle("/metrics", m.Handler())
//	admin.Handle("/healthz", gw.HealthHandler())
//	admin.Handle("/readyz", gw.ReadyHandler())
//
// Each Metrics has its own registry; nothing is registered with the
// prometheus package's global registry. Registry returns it, for an
// application that adds its own collectors.
//
// Every method is safe for concurrent use, and a nil *Metrics records
// nothing, so the gateway calls them unconditionally and pays nothing when
// metrics are off. Labelled series are resolved once, in New, for a fixed
// set of label values (unknown values count under "other"): recording is a
// map lookup and an atomic add, with no allocation, and a client can never
// grow the number of series.
//
// docs/metrics.md lists every metric with its type, labels and meaning.
package metrics
