package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

const (
	// DefaultJWKSRefresh is the JWKS refresh interval used when
	// VerifierConfig.JWKSRefresh is zero.
	DefaultJWKSRefresh = time.Hour
	// MaxJWKSBytes bounds the size of a JWKS response; a larger response
	// fails the fetch and the keys held so far stay in use.
	MaxJWKSBytes = 1 << 20

	// jwksFetchTimeout bounds one JWKS request.
	jwksFetchTimeout = 10 * time.Second
	// jwksUnknownKIDInterval is the least time between two refreshes
	// triggered by unknown kids (or JWKSRefresh, when shorter).
	jwksUnknownKIDInterval = time.Minute
)

// errJWKSTooLarge fails a JWKS response larger than MaxJWKSBytes.
var errJWKSTooLarge = errors.New("auth: JWKS response too large")

// errInsecureJWKSURL refuses a JWKS request (including a redirect) that is
// neither https nor to a loopback host.
var errInsecureJWKSURL = errors.New("auth: JWKS URL must use https (plain http only to a loopback host)")

// jwksSource holds keys fetched from a JWKS URL. keyfunc/jwkset fetch the
// set at construction, refresh it every JWKSRefresh in a goroutine ended by
// ctx, and refresh it on demand (refreshUnknown) when a token names an
// unknown kid, at most once per jwksUnknownKIDInterval.
type jwksSource struct {
	storage jwkset.Storage
	limiter *rate.Limiter
	ctx     context.Context // cancelled by close
	cancel  context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight chan struct{}  // closed when the running on-demand refresh ends
	wg       sync.WaitGroup // on-demand refresh goroutines
}

// newJWKSSource validates the JWKS settings of cfg, fetches the set once
// (a failure is logged, not returned: the source then starts empty and
// refuses every token until a refresh succeeds) and starts the periodic
// refresh.
func newJWKSSource(cfg VerifierConfig, logger *slog.Logger) (*jwksSource, error) {
	if err := checkJWKSURL(cfg.JWKSURL); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.JWKSRefresh < 0 {
		return nil, fmt.Errorf("%w: negative JWKSRefresh", ErrInvalidConfig)
	}
	refresh := cfg.JWKSRefresh
	if refresh == 0 {
		refresh = DefaultJWKSRefresh
	}
	ctx, cancel := context.WithCancel(context.Background())
	noErrFirst := true
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:                    jwksClient(cfg.HTTPClient),
		HTTPTimeout:               jwksFetchTimeout,
		NoErrorReturnFirstHTTPReq: &noErrFirst,
		RateLimitWaitMax:          jwksFetchTimeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.LogAttrs(ctx, slog.LevelWarn, "auth: JWKS fetch failed", slog.String("url", u), slog.Any("error", err))
			}
		},
		RefreshInterval: refresh,
		// Unknown-kid refreshes are rate-limited by refreshUnknown, without
		// blocking; the storage must not wait on a limiter of its own.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: JWKS: %w", ErrInvalidConfig, err)
	}
	return &jwksSource{
		storage: kf.Storage(),
		limiter: rate.NewLimiter(rate.Every(min(refresh, jwksUnknownKIDInterval)), 1),
		ctx:     ctx,
		cancel:  cancel,
	}, nil
}

// close stops the periodic refresh and cancels fetches in flight; it waits
// for on-demand refreshes to end.
func (s *jwksSource) close() {
	s.mu.Lock()
	s.closed = true // no refresh starts after this
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// lookup returns the usable key named kid, refreshing the set once (rate
// limited) when kid is unknown. Every failure wraps errKey.
func (s *jwksSource) lookup(ctx context.Context, kid string) (*verifyKey, error) {
	if s.ctx.Err() != nil {
		return nil, fmt.Errorf("%w: verifier closed, JWKS keys no longer trusted", errKey)
	}
	if k, found, err := s.find(ctx, kid); found {
		return k, err
	}
	if err := s.refreshUnknown(ctx); err != nil {
		return nil, fmt.Errorf("%w: unknown kid %q: %w", errKey, kid, err)
	}
	if k, found, err := s.find(ctx, kid); found {
		return k, err
	}
	return nil, fmt.Errorf("%w: unknown kid %q", errKey, kid)
}

// find looks kid up in the cached set without fetching. found reports
// whether the set has a JWK with that kid; err says why it is unusable.
// Should several JWKs share the kid, the first usable one wins.
func (s *jwksSource) find(ctx context.Context, kid string) (k *verifyKey, found bool, err error) {
	all, err := s.storage.KeyReadAll(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("%w: JWKS: %w", errKey, err)
	}
	for _, j := range all {
		if j.Marshal().KID != kid {
			continue
		}
		found = true
		if k, err = jwkKey(j); err == nil {
			return k, true, nil
		}
	}
	return nil, found, err
}

// refreshUnknown refreshes the set after a token named an unknown kid. One
// refresh runs at a time, started at most once per limiter interval;
// concurrent callers wait for the running one (or for ctx). It returns an
// error when no refresh was allowed or ctx ended first; a failed fetch is
// logged and leaves the cached set unchanged.
func (s *jwksSource) refreshUnknown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("verifier closed")
	}
	ch := s.inflight
	if ch == nil {
		if !s.limiter.Allow() {
			s.mu.Unlock()
			return errors.New("JWKS refresh rate-limited")
		}
		ch = make(chan struct{})
		s.inflight = ch
		s.wg.Add(1)
		go s.runRefresh(ch)
	}
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runRefresh fetches the set, bound to the source's context rather than a
// caller's, so that one caller giving up does not fail the others.
func (s *jwksSource) runRefresh(done chan struct{}) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, jwksFetchTimeout)
	// Reading a kid that cannot exist makes the jwkset client refresh from
	// the URL (its own limiter is unlimited; ours gated the call).
	_, _ = s.storage.KeyRead(ctx, "\x00livegate-refresh")
	cancel()
	s.mu.Lock()
	s.inflight = nil
	close(done)
	s.mu.Unlock()
}

// jwkKey turns a JWK into a verification key. Only signature keys for
// EdDSA, ES256 and RS256 with an explicit "alg" are usable: symmetric
// ("oct") keys, keys without "alg" and keys for other algorithms are
// refused, so a JWKS can never supply an HMAC secret or leave the
// algorithm to the token.
func jwkKey(j jwkset.JWK) (*verifyKey, error) {
	m := j.Marshal()
	alg := m.ALG.String()
	switch alg {
	case AlgEdDSA, AlgES256, AlgRS256:
	case "":
		return nil, fmt.Errorf(`%w: JWK %q has no "alg"`, errKey, m.KID)
	default:
		return nil, fmt.Errorf(`%w: JWK %q has "alg" %q; want EdDSA, ES256 or RS256`, errKey, m.KID, alg)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf(`%w: JWK %q has "use" %q`, errKey, m.KID, m.USE)
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return nil, fmt.Errorf(`%w: JWK %q "key_ops" lacks "verify"`, errKey, m.KID)
	}
	key := j.Key()
	if p, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = p.Public() // a JWKS should not hold private keys; use only the public half
	}
	pub, err := checkPublicKey(alg, key)
	if err != nil {
		// Not wrapped: a bad remote key is a token failure, not a config error.
		return nil, fmt.Errorf("%w: JWK %q: %v", errKey, m.KID, err)
	}
	method, err := signingMethod(alg)
	if err != nil {
		return nil, fmt.Errorf("%w: JWK %q: %v", errKey, m.KID, err)
	}
	return &verifyKey{id: m.KID, alg: alg, method: method, key: pub}, nil
}

// checkJWKSURL accepts an absolute https URL, or http to a loopback host.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("JWKSURL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("JWKSURL %q has no host", raw)
	}
	return checkJWKSScheme(u)
}

func checkJWKSScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errInsecureJWKSURL
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// jwksClient returns a copy of c (nil: a default client) whose transport
// refuses insecure URLs, redirects included, and bounds response bodies to
// MaxJWKSBytes.
func jwksClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = &jwksTransport{base: base}
	return &out
}

type jwksTransport struct{ base http.RoundTripper }

func (t *jwksTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkJWKSScheme(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxJWKSBytes}
	return resp, nil
}

// limitedBody fails with errJWKSTooLarge once more than left bytes are read.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errJWKSTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
