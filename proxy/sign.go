package proxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names set by Sign and read by Verifier.Verify. The gateway never
// forwards a client-supplied header whose name starts with "Livegate-".
const (
	HeaderTimestamp = "Livegate-Timestamp"
	HeaderNonce     = "Livegate-Nonce"
	HeaderSignature = "Livegate-Signature"
)

// MinSecretBytes is the shortest signing secret accepted.
const MinSecretBytes = 32

// signaturePrefix names the signature scheme in the Livegate-Signature
// header: "v1=" followed by 64 lowercase hex digits.
const signaturePrefix = "v1="

// nonceBytes is the size of the random nonce (128 bits); it is sent as 22
// characters of unpadded base64url.
const nonceBytes = 16

var nonceLen = base64.RawURLEncoding.EncodedLen(nonceBytes)

// Sign signs an outgoing request for a backend: it sets the
// Livegate-Timestamp (now, in unix seconds), Livegate-Nonce (128 random
// bits, unpadded base64url) and Livegate-Signature headers, replacing any
// already present. body must be the exact bytes the request will send.
//
// The signature is "v1=" followed by the lowercase hex HMAC-SHA256, keyed
// with secret, of the canonical string
//
//	METHOD "\n" REQUEST-URI "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body))
//
// where METHOD is the request method as sent ("POST") and REQUEST-URI is the
// request target as sent on the request line: the escaped path and, when
// there is one, "?" and the raw query (req.URL.RequestURI()). secret must
// be at least MinSecretBytes long.
func Sign(req *http.Request, body []byte, secret []byte, now time.Time) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("%w: secret must be at least %d bytes, got %d", ErrInvalidConfig, MinSecretBytes, len(secret))
	}
	if req == nil || req.URL == nil {
		return fmt.Errorf("%w: nil request", ErrInvalidConfig)
	}
	var raw [nonceBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("proxy: nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(raw[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := computeMAC(secret, req.Method, req.URL.RequestURI(), ts, nonce, body)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, signaturePrefix+hex.EncodeToString(mac))
	return nil
}

// CanonicalString returns the string that Sign authenticates for the given
// request parts; it is exported so that backends written in other
// languages can be checked against it.
func CanonicalString(method, requestURI, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	var b strings.Builder
	b.Grow(len(method) + len(requestURI) + len(timestamp) + len(nonce) + 2*sha256.Size + 4)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(requestURI)
	b.WriteByte('\n')
	b.WriteString(timestamp)
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.String()
}

func computeMAC(secret []byte, method, requestURI, ts, nonce string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(CanonicalString(method, requestURI, ts, nonce, body)))
	return m.Sum(nil)
}
