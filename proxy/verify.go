package proxy

import (
	"container/heap"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of VerifierConfig.
const (
	// DefaultMaxSkew is the largest accepted difference between a
	// request's timestamp and the verifier's clock, either way.
	DefaultMaxSkew = 5 * time.Minute
	// DefaultMaxNonces bounds the nonces a Verifier remembers.
	DefaultMaxNonces = 100_000
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Secrets are the accepted signing secrets, each at least
	// MinSecretBytes long: one, or two while rotating (add the new secret
	// here, switch the gateway to it, then remove the old one). Required.
	Secrets [][]byte
	// MaxSkew is the accepted clock difference; zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxNonces bounds the replay cache; zero means DefaultMaxNonces. When
	// it is full of unexpired nonces the oldest is dropped and requests
	// no newer than it are refused as replayed from then on, so the bound
	// never lets a replay through.
	MaxNonces int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks requests signed with Sign: the signature (compared in
// constant time), the timestamp's freshness and the nonce's uniqueness.
// It is what a Go backend uses to authenticate the gateway. It is safe for
// concurrent use.
type Verifier struct {
	secrets [][]byte
	skew    int64 // seconds
	now     func() time.Time
	nonces  nonceCache
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Secrets) == 0 || len(cfg.Secrets) > 2 {
		return nil, fmt.Errorf("%w: need one or two secrets, got %d", ErrInvalidConfig, len(cfg.Secrets))
	}
	v := &Verifier{now: cfg.Now}
	for i, s := range cfg.Secrets {
		if len(s) < MinSecretBytes {
			return nil, fmt.Errorf("%w: secret %d must be at least %d bytes, got %d", ErrInvalidConfig, i, MinSecretBytes, len(s))
		}
		v.secrets = append(v.secrets, append([]byte(nil), s...))
	}
	switch {
	case cfg.MaxSkew < 0:
		return nil, fmt.Errorf("%w: negative MaxSkew", ErrInvalidConfig)
	case cfg.MaxSkew == 0:
		cfg.MaxSkew = DefaultMaxSkew
	case cfg.MaxSkew < time.Second:
		return nil, fmt.Errorf("%w: MaxSkew must be at least one second", ErrInvalidConfig)
	}
	v.skew = int64(cfg.MaxSkew / time.Second)
	switch {
	case cfg.MaxNonces < 0:
		return nil, fmt.Errorf("%w: negative MaxNonces", ErrInvalidConfig)
	case cfg.MaxNonces == 0:
		cfg.MaxNonces = DefaultMaxNonces
	}
	v.nonces = nonceCache{max: cfg.MaxNonces, seen: make(map[string]int64)}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Verify checks the signature headers of r against body, the exact bytes
// of its body (which the caller has read, with a size limit). It returns
// nil, or an error wrapping ErrBadSignature (missing, malformed or wrong
// signature, checked first so that a tampered timestamp or nonce reads
// as a bad signature), ErrStale (timestamp outside the skew window) or
// ErrReplayed (nonce already seen). Only requests that pass every check
// record their nonce.
func (v *Verifier) Verify(r *http.Request, body []byte) error {
	ts, nonce, mac, err := parseHeaders(r.Header)
	if err != nil {
		return err
	}
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") && r.URL != nil {
		target = r.URL.RequestURI()
	}
	ok := false
	for _, s := range v.secrets {
		// Every secret is tried so that the time taken does not say which
		// one matched.
		if hmac.Equal(computeMAC(s, r.Method, target, ts, nonce, body), mac) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("%w: signature mismatch", ErrBadSignature)
	}
	t, _ := strconv.ParseInt(ts, 10, 64) // parseHeaders checked the digits
	now := v.now().Unix()
	if t < now-v.skew || t > now+v.skew {
		return fmt.Errorf("%w: timestamp %d is %ds from now", ErrStale, t, t-now)
	}
	return v.nonces.add(nonce, t, now-v.skew)
}

// parseHeaders returns the timestamp, nonce and MAC of a signed request.
func parseHeaders(h http.Header) (ts, nonce string, mac []byte, err error) {
	ts, ok1 := single(h, HeaderTimestamp)
	nonce, ok2 := single(h, HeaderNonce)
	sig, ok3 := single(h, HeaderSignature)
	if !ok1 || !ok2 || !ok3 {
		return "", "", nil, fmt.Errorf("%w: missing or repeated signature header", ErrBadSignature)
	}
	if len(ts) == 0 || len(ts) > 12 || strings.Trim(ts, "0123456789") != "" {
		return "", "", nil, fmt.Errorf("%w: malformed timestamp", ErrBadSignature)
	}
	if len(nonce) != nonceLen {
		return "", "", nil, fmt.Errorf("%w: malformed nonce", ErrBadSignature)
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(nonce); err != nil {
		return "", "", nil, fmt.Errorf("%w: malformed nonce", ErrBadSignature)
	}
	hexMAC, found := strings.CutPrefix(sig, signaturePrefix)
	if !found || len(hexMAC) != 64 || strings.Trim(hexMAC, "0123456789abcdef") != "" {
		return "", "", nil, fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	mac, err = hex.DecodeString(hexMAC)
	if err != nil {
		return "", "", nil, fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	return ts, nonce, mac, nil
}

// single returns the only value of header name.
func single(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) != 1 {
		return "", false
	}
	return vs[0], true
}

// nonceCache remembers the nonces of accepted requests until their
// timestamps leave the skew window. It holds at most max nonces; when an
// unexpired nonce has to make room, floor rises to its timestamp and every
// later request at or before floor is refused, so a forgotten nonce can
// never be replayed.
type nonceCache struct {
	mu    sync.Mutex
	max   int
	seen  map[string]int64 // nonce → timestamp
	order nonceHeap        // by timestamp, oldest first
	floor int64
}

// add records nonce with timestamp ts; oldest is the oldest timestamp
// still inside the window.
func (c *nonceCache) add(nonce string, ts, oldest int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.order) > 0 && c.order[0].ts < oldest {
		e := heap.Pop(&c.order).(nonceEntry)
		delete(c.seen, e.nonce)
	}
	if _, dup := c.seen[nonce]; dup {
		return fmt.Errorf("%w: nonce already used", ErrReplayed)
	}
	if ts <= c.floor {
		return fmt.Errorf("%w: nonce cache full for timestamps up to %d", ErrReplayed, c.floor)
	}
	for len(c.seen) >= c.max {
		e := heap.Pop(&c.order).(nonceEntry)
		delete(c.seen, e.nonce)
		c.floor = max(c.floor, e.ts)
	}
	if ts <= c.floor {
		return fmt.Errorf("%w: nonce cache full for timestamps up to %d", ErrReplayed, c.floor)
	}
	c.seen[nonce] = ts
	heap.Push(&c.order, nonceEntry{ts: ts, nonce: nonce})
	return nil
}

type nonceEntry struct {
	ts    int64
	nonce string
}

type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].ts < h[j].ts }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
