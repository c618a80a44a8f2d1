// Package redis connects livegate gateway nodes through Redis, so that
// several nodes behind a load balancer act as one gateway.
//
// An Engine, made by New, holds the connections to one Redis and provides
// everything a gateway shares with the other nodes:
//
//   - Broker: a broker.Broker (publications, per-channel history with
//     offsets and epochs), broker.Control (revocations and disconnects
//     reaching every node) and broker.Presence (who is in a channel,
//     across nodes);
//   - ReplayStore: single-use token ids consumed exactly once cluster-wide;
//   - Revocations: revoked users, sessions and tokens, read from Redis on
//     every check;
//   - LimitStore: a ratelimit.Store whose limits hold across nodes.
//
// Everything fails closed: when Redis cannot be reached, methods return
// an error wrapping ErrUnavailable within the Options timeouts, and the
// gateway refuses what it cannot check. The Broker re-establishes its
// pub/sub connection by itself and replays from history what the node
// missed meanwhile, or reports the loss.
//
// docs/scaling.md describes the key layout, the ordering guarantees and
// the failure behaviour.
package redis
