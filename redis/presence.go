package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/livegate/livegate/broker"
)

// Presence keys: a hash of connection id → ClientInfo JSON and a sorted
// set of connection id scored by expiry time (Unix milliseconds, Redis's
// clock). Both live as long as their latest entry.
func (b *Broker) presenceKeys(ch string) []string {
	return []string{b.e.key("pr:{", ch, "}:h"), b.e.key("pr:{", ch, "}:z")}
}

// presencePrune removes expired entries; it defines now (Redis's time,
// in ms) for the rest of the script.
const presencePrune = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, c in ipairs(gone) do redis.call('HDEL', KEYS[1], c) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
`

var (
	addPresenceLua = goredis.NewScript(presencePrune + `
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1
`)
	presenceLua = goredis.NewScript(presencePrune + `
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
local out = {}
for i = 1, #live, 500 do
  local chunk = {}
  for j = i, math.min(i + 499, #live) do chunk[#chunk + 1] = live[j] end
  for _, v in ipairs(redis.call('HMGET', KEYS[1], unpack(chunk))) do out[#out + 1] = v end
end
return out
`)
)

// AddPresence records (or refreshes) c in channel until ttl from now, by
// Redis's clock. An empty c.Node is set to this node's id.
func (b *Broker) AddPresence(ctx context.Context, channel string, c broker.ClientInfo, ttl time.Duration) error {
	if err := b.check(channel); err != nil {
		return err
	}
	if c.ConnID == "" {
		return fmt.Errorf("redis: add presence: empty connection id")
	}
	if ttl <= 0 {
		return fmt.Errorf("redis: add presence: ttl %v is not positive", ttl)
	}
	if c.Node == "" {
		c.Node = b.e.opts.NodeID
	}
	js, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("redis: add presence: %w", err)
	}
	ctx, cancel, err := b.e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	err = addPresenceLua.Run(ctx, b.e.rdb, b.presenceKeys(channel), c.ConnID, js, durMillis(ttl)).Err()
	return b.e.wrap("add presence", err)
}

// RemovePresence removes connID from channel.
func (b *Broker) RemovePresence(ctx context.Context, channel, connID string) error {
	if err := b.check(channel); err != nil {
		return err
	}
	ctx, cancel, err := b.e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	keys := b.presenceKeys(channel)
	_, err = b.e.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HDel(ctx, keys[0], connID)
		p.ZRem(ctx, keys[1], connID)
		return nil
	})
	return b.e.wrap("remove presence", err)
}

// Presence returns the unexpired entries of channel from every node.
func (b *Broker) Presence(ctx context.Context, channel string) ([]broker.ClientInfo, error) {
	if err := b.check(channel); err != nil {
		return nil, err
	}
	ctx, cancel, err := b.e.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	raw, err := presenceLua.Run(ctx, b.e.rdb, b.presenceKeys(channel)).Slice()
	if err != nil {
		return nil, b.e.wrap("presence", err)
	}
	out := make([]broker.ClientInfo, 0, len(raw))
	for _, r := range raw {
		s, ok := r.(string)
		if !ok {
			continue // no hash entry: skip rather than fail the listing
		}
		var c broker.ClientInfo
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			return nil, fmt.Errorf("redis: presence: malformed entry: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}
