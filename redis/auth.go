package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/livegate/livegate/auth"
)

// ReplayStore is an auth.ReplayStore shared by every node using the same
// Redis: a consumed token id is a key set with SET NX PX, so exactly one
// node consumes a given id. Get it from Engine.ReplayStore.
//
// When Redis is unreachable Consume returns an error wrapping
// ErrUnavailable; the gateway then refuses the token (fails closed).
type ReplayStore struct{ e *Engine }

var _ auth.ReplayStore = (*ReplayStore)(nil)

// Consume atomically marks jti as used until expiresAt. It returns
// auth.ErrReplayed if jti was already consumed and has not expired,
// auth.ErrNoTokenID for an empty jti, and an error wrapping
// ErrUnavailable when Redis does not answer. An expiresAt not after now
// consumes nothing (the entry would expire at once).
func (s *ReplayStore) Consume(ctx context.Context, jti string, expiresAt time.Time) error {
	if jti == "" {
		return auth.ErrNoTokenID
	}
	ttl := time.Until(expiresAt)
	ctx, cancel, err := s.e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if ttl <= 0 {
		return nil
	}
	ok, err := s.e.rdb.SetNX(ctx, s.e.key("jti:", jti), "1", time.Duration(durMillis(ttl))*time.Millisecond).Result()
	if err != nil {
		return s.e.wrap("consume", err)
	}
	if !ok {
		return auth.ErrReplayed
	}
	return nil
}

// Ping reports whether Redis answers.
func (s *ReplayStore) Ping(ctx context.Context) error { return s.e.Ping(ctx) }

// Revocations is an auth.Revocations shared by every node using the same
// Redis. Each revocation is a key expiring at its until time, so a node
// that was cut off from the others when the revocation was made still
// refuses the tokens afterwards: it reads Redis on every check. Get it
// from Engine.Revocations.
//
// Revoked returns an error wrapping ErrUnavailable when Redis does not
// answer; the gateway then refuses the token (fails closed).
type Revocations struct {
	e   *Engine
	now func() time.Time
}

var _ auth.Revocations = (*Revocations)(nil)

// revokeLua stores "until_ms:at_s" unless a longer revocation exists,
// merging the two so a revocation is never shortened or narrowed.
var revokeLua = goredis.NewScript(`
local until_ms, at_s = tonumber(ARGV[1]), tonumber(ARGV[2])
local old = redis.call('GET', KEYS[1])
if old then
  local ou, oa = string.match(old, '^(-?%d+):(-?%d+)$')
  if ou then
    ou, oa = tonumber(ou), tonumber(oa)
    if ou > until_ms then until_ms = ou end
    if oa > at_s then at_s = oa end
  end
end
redis.call('SET', KEYS[1], string.format('%d:%d', until_ms, at_s), 'PXAT', until_ms)
return 1
`)

// RevokeSession implements auth.Revocations.
func (r *Revocations) RevokeSession(ctx context.Context, sid string, until time.Time) error {
	return r.revoke(ctx, "session", "s:", sid, time.Unix(0, 0), until)
}

// RevokeUser implements auth.Revocations. at is kept to the second, which
// is the precision of "iat".
func (r *Revocations) RevokeUser(ctx context.Context, sub string, at, until time.Time) error {
	return r.revoke(ctx, "user", "u:", sub, at, until)
}

// RevokeToken implements auth.Revocations.
func (r *Revocations) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	return r.revoke(ctx, "token", "t:", jti, time.Unix(0, 0), until)
}

func (r *Revocations) revoke(ctx context.Context, what, kind, id string, at, until time.Time) error {
	if id == "" {
		return fmt.Errorf("redis: revoke %s: empty id", what)
	}
	if now := r.now(); !now.Before(until) {
		return fmt.Errorf("redis: revoke %s: until %v is not after now %v", what, until, now)
	}
	ctx, cancel, err := r.e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	untilMs := (until.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	err = revokeLua.Run(ctx, r.e.rdb, []string{r.e.key("rev:", kind, id)}, untilMs, at.Unix()).Err()
	return r.e.wrap("revoke "+what, err)
}

// Revoked implements auth.Revocations with one round trip to Redis.
func (r *Revocations) Revoked(ctx context.Context, id auth.Identity) (bool, error) {
	ctx, cancel, err := r.e.op(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	keys := []string{r.e.key("rev:t:", id.TokenID), r.e.key("rev:s:", id.Session), r.e.key("rev:u:", id.User)}
	use := []bool{id.TokenID != "", id.Session != "", id.User != ""}
	vals, err := r.e.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return false, r.e.wrap("revoked", err)
	}
	nowMs := r.now().UnixMilli()
	for i, v := range vals {
		s, ok := v.(string)
		if !ok || !use[i] {
			continue
		}
		u, a, ok := strings.Cut(s, ":")
		untilMs, err1 := strconv.ParseInt(u, 10, 64)
		atS, err2 := strconv.ParseInt(a, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return false, errors.New("redis: revoked: malformed entry")
		}
		if nowMs >= untilMs {
			continue
		}
		if i < 2 {
			return true, nil
		}
		// A missing iat counts as the Unix epoch; iat has one-second
		// precision, so comparing whole seconds is exact.
		iat := int64(0)
		if !id.IssuedAt.IsZero() {
			iat = id.IssuedAt.Unix()
		}
		if iat <= atS {
			return true, nil
		}
	}
	return false, nil
}

// Ping reports whether Redis answers.
func (r *Revocations) Ping(ctx context.Context) error { return r.e.Ping(ctx) }
