package redis

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultKeyPrefix    = "livegate:"
	DefaultDialTimeout  = 5 * time.Second
	DefaultReadTimeout  = 3 * time.Second
	DefaultWriteTimeout = 3 * time.Second
	DefaultHistoryTTL   = 5 * time.Minute
	DefaultNodeTTL      = 15 * time.Second
)

// ErrClosed is returned by every method of an Engine and of the values it
// made once the Engine is closed.
var ErrClosed = errors.New("redis: closed")

// errMalformed reports a Redis reply livegate did not write.
var errMalformed = errors.New("redis: malformed reply")

// ErrUnavailable is wrapped by the errors of operations that could not
// reach Redis: the connection is down, or the operation timed out.
var ErrUnavailable = errors.New("redis: unavailable")

// Options configure an Engine. Only Addr is required.
type Options struct {
	// Addr is the Redis server's host:port.
	Addr string
	// Username and Password authenticate with Redis (ACL user, or only
	// Password for the default user).
	Username, Password string
	// DB is the logical database number.
	DB int
	// TLS, when not nil, connects with TLS using this configuration.
	TLS *tls.Config
	// KeyPrefix starts every key and pub/sub channel name livegate uses,
	// so several deployments can share one Redis. Default "livegate:".
	KeyPrefix string
	// NodeID names this gateway node. Default: random. The gateway's
	// Config.NodeID should equal it.
	NodeID string
	// DialTimeout bounds connecting; ReadTimeout and WriteTimeout bound one
	// command's reply and request. Defaults 5s, 3s, 3s. Every operation is
	// also bounded by DialTimeout+ReadTimeout+WriteTimeout in total.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// HistoryTTL is how long a stream lives when a publication does not
	// say (PublishOptions.HistoryTTL 0) and how long a stream started by
	// History lives. Default 5 minutes.
	HistoryTTL time.Duration
	// PoolSize is the maximum number of connections for commands (the
	// pub/sub connection is extra). Default: go-redis's, 10 per CPU.
	PoolSize int
	// NodeTTL is how long this node's connection-counter slots survive
	// after it stops refreshing them (it refreshes every NodeTTL/3), so the
	// slots of a node that died are freed. Default 15 seconds.
	NodeTTL time.Duration
	// Logger receives warnings (pub/sub reconnects, lost publications).
	// Default slog.Default().
	Logger *slog.Logger
}

// Engine connects a gateway node to Redis and makes the shared Broker,
// replay store, revocation list and rate-limit store of a cluster of
// nodes. Create it with New; it is safe for concurrent use.
type Engine struct {
	opts Options
	rdb  *goredis.Client
	opTO time.Duration
	// holder names this Engine instance in counters; its liveness key is
	// nodeKey(holder). It differs on every start, so a restarted node
	// never inherits the slots of its previous life.
	holder string

	broker *Broker
	replay *ReplayStore
	revs   *Revocations
	limits *LimitStore

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New connects to Redis as opts says and pings it. It returns an error
// wrapping ErrUnavailable when Redis cannot be reached within the
// timeouts, and a plain error for invalid options. The Engine starts two
// goroutines (the pub/sub reader and the node heartbeat), stopped by
// Close.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Addr == "" {
		return nil, errors.New("redis: Options.Addr is required")
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	if opts.NodeID == "" {
		opts.NodeID = randomID()
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.HistoryTTL <= 0 {
		opts.HistoryTTL = DefaultHistoryTTL
	}
	if opts.NodeTTL <= 0 {
		opts.NodeTTL = DefaultNodeTTL
	}
	rdb := goredis.NewClient(&goredis.Options{
		Addr:         opts.Addr,
		Username:     opts.Username,
		Password:     opts.Password,
		DB:           opts.DB,
		TLSConfig:    opts.TLS,
		DialTimeout:  opts.DialTimeout,
		ReadTimeout:  opts.ReadTimeout,
		WriteTimeout: opts.WriteTimeout,
		PoolSize:     opts.PoolSize,
		PoolTimeout:  opts.ReadTimeout,
		// Scripts that publish are not idempotent: a retry after a lost
		// reply could publish twice. Callers see the error instead.
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
		Protocol:              2,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	e := &Engine{
		opts:   opts,
		rdb:    rdb,
		opTO:   opts.DialTimeout + opts.ReadTimeout + opts.WriteTimeout,
		holder: opts.NodeID + "." + randomID(),
	}
	if err := e.Ping(ctx); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.broker = newBroker(e)
	e.replay = &ReplayStore{e: e}
	e.revs = &Revocations{e: e, now: time.Now}
	e.limits = &LimitStore{e: e}
	if err := e.heartbeat(ctx); err != nil {
		e.cancel()
		_ = rdb.Close()
		return nil, err
	}
	e.wg.Add(2)
	go e.broker.run()
	go e.heartbeatLoop()
	return e, nil
}

// NodeID returns this node's id (Options.NodeID or the random one chosen).
func (e *Engine) NodeID() string { return e.opts.NodeID }

// Broker returns the Engine's broker. It implements broker.Broker,
// broker.Control and broker.Presence.
func (e *Engine) Broker() *Broker { return e.broker }

// ReplayStore returns the Engine's auth.ReplayStore.
func (e *Engine) ReplayStore() *ReplayStore { return e.replay }

// Revocations returns the Engine's auth.Revocations.
func (e *Engine) Revocations() *Revocations { return e.revs }

// LimitStore returns the Engine's ratelimit.Store.
func (e *Engine) LimitStore() *LimitStore { return e.limits }

// Ping reports whether Redis answers, within ctx and the Engine's
// timeouts. It returns ErrClosed after Close and an error wrapping
// ErrUnavailable when Redis does not answer.
func (e *Engine) Ping(ctx context.Context) error {
	ctx, cancel, err := e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return e.wrap("ping", e.rdb.Ping(ctx).Err())
}

// Close stops the Engine's goroutines and closes its connections. It
// removes nothing from Redis: this node's counter slots expire after
// NodeTTL. Calls after the first return ErrClosed.
func (e *Engine) Close() error {
	err := ErrClosed
	e.closeOnce.Do(func() {
		e.cancel()
		e.broker.shutdown()
		e.wg.Wait()
		err = e.rdb.Close()
		if err != nil {
			err = fmt.Errorf("redis: close: %w", err)
		}
	})
	return err
}

// closed reports whether Close was called.
func (e *Engine) closed() bool {
	return e.ctx != nil && e.ctx.Err() != nil
}

// op derives the context of one Redis operation: ctx bounded by the
// Engine's total operation timeout. It fails when the Engine is closed or
// ctx is already done.
func (e *Engine) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if e.closed() {
		return nil, nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("redis: %w", err)
	}
	c, cancel := context.WithTimeout(ctx, e.opTO)
	return c, cancel, nil
}

// wrap turns a go-redis error into the package's: nil stays nil, a done
// caller context keeps its cause, anything else that is not a Redis reply
// error wraps ErrUnavailable.
func (e *Engine) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if e.closed() {
		return ErrClosed
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redis: %s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// key returns the prefixed name of a key.
func (e *Engine) key(parts ...string) string {
	n := len(e.opts.KeyPrefix)
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, e.opts.KeyPrefix...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return string(b)
}

// nodeKey is the liveness key of node id, refreshed by its heartbeat.
func (e *Engine) nodeKey(id string) string { return e.key("node:", id) }

// heartbeat marks this node alive for NodeTTL.
func (e *Engine) heartbeat(ctx context.Context) error {
	ctx, cancel, err := e.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return e.wrap("heartbeat", e.rdb.Set(ctx, e.nodeKey(e.holder), "1", e.opts.NodeTTL).Err())
}

// heartbeatLoop refreshes the node's liveness key every NodeTTL/3 until
// Close.
func (e *Engine) heartbeatLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.NodeTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			// An error is retried at the next tick; while Redis is down
			// every operation fails anyway.
			_ = e.heartbeat(e.ctx)
		}
	}
}

// logger returns the Engine's logger.
func (e *Engine) logger() *slog.Logger {
	if e.opts.Logger != nil {
		return e.opts.Logger
	}
	return slog.Default()
}

// randomID returns 16 random hex digits.
func randomID() string {
	var b [8]byte
	// crypto/rand.Read never fails; it crashes the program instead.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
