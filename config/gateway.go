package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"

	"github.com/livegate/livegate"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/policy"
)

// ErrNotValidated is returned by the methods that need the values read by
// a successful Validate.
var ErrNotValidated = errors.New("config: Validate has not succeeded")

func namespaceConfig(n Namespace) policy.NamespaceConfig {
	return policy.NamespaceConfig{
		Name:         n.Name,
		TenantScoped: n.TenantScoped,
		HistorySize:  n.HistorySize,
		HistoryTTL:   n.HistoryTTL,
		Presence:     n.Presence,
		JoinLeave:    n.JoinLeave,
	}
}

func (f *File) validated() (*secrets, error) {
	if f.sec == nil {
		if err := f.Validate(); err != nil {
			return nil, err
		}
	}
	return f.sec, nil
}

// GatewayConfig returns the livegate.Config the file describes, validating
// it first when Validate has not succeeded yet. The runtime parts are left
// for the caller: ReplayStore, Revocations, Broker, Presence, NodeID,
// Logger, SecurityEvents, Metrics and the proxy hooks.
func (f *File) GatewayConfig() (livegate.Config, error) {
	s, err := f.validated()
	if err != nil {
		return livegate.Config{}, err
	}
	t := f.Tokens
	c := livegate.Config{
		Audience:                t.Audience,
		Issuer:                  t.Issuer,
		MaxTokenLifetime:        t.MaxLifetime,
		TokenLeeway:             t.Leeway,
		RequireTokenID:          t.RequireJTI,
		JWKSURL:                 t.JWKSURL,
		TokenTTL:                t.TTL,
		TokenSigningKeyID:       t.SigningKeyID,
		TokenSigningKey:         s.signer,
		Namespaces:              slices.Clone(s.namespaces),
		Roles:                   slices.Clone(s.roles),
		PublicURL:               f.PublicURL,
		AllowedOrigins:          slices.Clone(f.AllowedOrigins),
		Hosts:                   slices.Clone(f.Hosts),
		TrustedProxies:          slices.Clone(f.TrustedProxies),
		InsecureSkipOriginCheck: f.InsecureSkipOriginCheck,
		CSRFKey:                 s.csrf,
		EnableCompression:       f.EnableCompression,
		Debug:                   f.Debug,
		Limits:                  f.gatewayLimits(s),
	}
	if len(t.Keys) > 0 {
		c.TokenKeys = slices.Clone(s.keys)
	} else if s.hmac != nil || s.publicKey != nil {
		c.TokenAlgorithm = t.Algorithm
		if c.TokenAlgorithm == "" {
			c.TokenAlgorithm = "HS256"
		}
		c.TokenHMACSecret = s.hmac
		c.TokenPublicKey = s.publicKey
	}
	cn := f.Connection
	c.ConnectTimeout = cn.ConnectTimeout
	c.MaxInboundFrame = cn.MaxInboundFrame
	c.MaxOutboundMessage = cn.MaxOutboundMessage
	c.MaxChannelsPerConn = cn.MaxChannels
	c.SendQueueMessages = cn.SendQueueMessages
	c.SendQueueBytes = cn.SendQueueBytes
	c.WriteTimeout = cn.WriteTimeout
	c.CoalesceDelay = cn.CoalesceDelay
	c.PingInterval = cn.PingInterval
	c.PongTimeout = cn.PongTimeout
	c.CommandRate = cn.CommandRate
	c.CommandBurst = cn.CommandBurst
	c.MaxRateWarnings = cn.MaxRateWarnings
	c.MaxConnLifetime = cn.MaxLifetime
	c.MaxConnections = cn.MaxConnections
	c.MaxQueuedBytes = cn.MaxQueuedBytes
	return c, nil
}

func (f *File) gatewayLimits(s *secrets) livegate.Limits {
	return livegate.Limits{
		AttemptsPerIP:   s.limits.attemptsIP,
		AttemptsPerUser: s.limits.attemptsUser,
		ConnsPerIP:      f.Limits.ConnsPerIP,
		ConnsPerUser:    f.Limits.ConnsPerUser,
		Cooldown:        f.Limits.Cooldown,
		TokensPerUser:   s.limits.tokensUser,
		TokensPerIP:     s.limits.tokensIP,
	}
}

// GatewayLimits returns the limits for Gateway.SetLimits.
func (f *File) GatewayLimits() (livegate.Limits, error) {
	s, err := f.validated()
	if err != nil {
		return livegate.Limits{}, err
	}
	return f.gatewayLimits(s), nil
}

// NamespaceConfigs returns the namespaces for Gateway.SetNamespaces.
func (f *File) NamespaceConfigs() ([]policy.NamespaceConfig, error) {
	s, err := f.validated()
	if err != nil {
		return nil, err
	}
	return slices.Clone(s.namespaces), nil
}

// TokenKeys returns the static verification keys for Gateway.SetTokenKeys:
// tokens.keys, or the single key of tokens.algorithm (without an ID); nil
// when only a JWKS is configured.
func (f *File) TokenKeys() ([]auth.Key, error) {
	s, err := f.validated()
	if err != nil {
		return nil, err
	}
	if len(f.Tokens.Keys) > 0 {
		return slices.Clone(s.keys), nil
	}
	alg := f.Tokens.Algorithm
	if alg == "" {
		alg = "HS256"
	}
	switch {
	case s.hmac != nil:
		return []auth.Key{{Algorithm: alg, Secret: s.hmac}}, nil
	case s.publicKey != nil:
		return []auth.Key{{Algorithm: alg, PublicKey: s.publicKey}}, nil
	}
	return nil, nil
}

// AdminSecret returns the admin secret (nil when none).
func (f *File) AdminSecret() []byte {
	if f.sec == nil {
		return nil
	}
	return f.sec.admin
}

// ProxySecret returns the key that signs proxy requests (nil when none).
func (f *File) ProxySecret() []byte {
	if f.sec == nil {
		return nil
	}
	return f.sec.proxy
}

// RedisPassword returns the Redis password from redis.password or
// redis.password_file.
func (f *File) RedisPassword() string {
	if f.sec == nil {
		return ""
	}
	return f.sec.redisPassword
}

// RedisTLSConfig returns the TLS configuration for Redis, nil when
// redis.tls.enabled is false.
func (f *File) RedisTLSConfig() (*tls.Config, error) {
	t := f.Redis.TLS
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.cert_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Reloadable are the top-level keys a reload applies to a running
// gateway: token keys, namespaces and limits.
var Reloadable = []string{
	"tokens.algorithm", "tokens.keys", "tokens.hmac_secret", "tokens.hmac_secret_file", "tokens.public_key_file",
	"namespaces", "limits",
}

// NeedsRestart lists the keys whose values differ between old and new
// that a reload cannot apply (everything but token keys, namespaces and
// limits), in file order.
func NeedsRestart(old, new *File) []string {
	var out []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		k := yamlKey(t.Field(i))
		if k == "" || k == "namespaces" || k == "limits" {
			continue
		}
		if k == "tokens" {
			to, tn := old.Tokens, new.Tokens
			// The verification keys are applied; the rest is not.
			to.Keys, tn.Keys = nil, nil
			to.HMACSecret, tn.HMACSecret = "", ""
			to.HMACSecretFile, tn.HMACSecretFile = "", ""
			to.PublicKeyFile, tn.PublicKeyFile = "", ""
			to.Algorithm, tn.Algorithm = "", ""
			tt := reflect.TypeFor[Tokens]()
			for j := range tt.NumField() {
				if !reflect.DeepEqual(reflect.ValueOf(to).Field(j).Interface(), reflect.ValueOf(tn).Field(j).Interface()) {
					out = append(out, "tokens."+yamlKey(tt.Field(j)))
				}
			}
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			out = append(out, k)
		}
	}
	return out
}
