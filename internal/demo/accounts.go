package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livegate/livegate/audit"
	"github.com/livegate/livegate/auth"
	"github.com/livegate/livegate/identity"
	"github.com/livegate/livegate/protocol"
)

// Accounts and sessions.
const (
	// SessionCookie is the name of the login session cookie: HttpOnly,
	// SameSite=Strict, holding 256 random bits.
	SessionCookie = "livegate_session"
	// SessionTTL is how long a login session lasts.
	SessionTTL = 8 * time.Hour
	// MemberGroup is the group of connections opened from a login session.
	// Live operations require it, and so do the live view's events: a
	// token for a bare name from /dev/token has no group.
	MemberGroup = "member"
	// MaxUsers bounds the accounts the demo keeps (the seeded ones and
	// those registered through the page).
	MaxUsers = 500
	// MaxSessions bounds the login sessions kept in all, and
	// MaxSessionsPerUser those of one user; the oldest go first.
	MaxSessions        = 10_000
	MaxSessionsPerUser = 16
	// maxFormBody bounds login, register and start request bodies.
	maxFormBody = 4 << 10
)

// DemoUsers are the accounts the demo starts with; they share the
// password of Server.DemoPassword.
var DemoUsers = []string{"alice", "bob", "carol"}

// userLockout locks a user name after three wrong passwords in a row for
// 5 s, doubling with each further failure up to 5 min.
var userLockout = identity.LockoutConfig{FreeFailures: 3, BaseDelay: 5 * time.Second, MaxDelay: 5 * time.Minute}

// passwordPolicy is the default NIST-style policy (12..128 characters, no
// common password, not the user name) plus the product's name.
var passwordPolicy = identity.Policy{Words: []string{"livegate"}}

func (s *Server) setupAccounts(password string) error {
	s.users = identity.NewUsers(passwordPolicy, identity.DefaultParams)
	// Per address, the default 20 failures before locking: many people
	// may share one.
	s.users.ConfigureLockout(userLockout, identity.LockoutConfig{FreeFailures: 20})
	if password == "" {
		var err error
		if password, err = randomPassword(); err != nil {
			return err
		}
	}
	s.password = password
	for _, u := range DemoUsers {
		if err := s.users.Add(u, password); err != nil {
			return fmt.Errorf("demo user %s: %w", u, err)
		}
	}
	return nil
}

// randomPassword returns 80 random bits as four groups of four base32
// characters, "abcd-efgh-ijkl-mnop": easy to copy, impossible to guess.
func randomPassword() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	s := strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16], nil
}

// DemoPassword returns the password of the DemoUsers accounts.
func (s *Server) DemoPassword() string { return s.password }

// session is one login.
type session struct {
	// ref identifies the session where the client can see it (tokens,
	// view sessions, logs): the hex SHA-256 of the cookie value, cut to
	// 128 bits. The cookie value itself never leaves the cookie.
	ref     string
	user    string
	created time.Time
	expires time.Time
}

// sessions is the server-side session store: cookie → user, with expiry.
type sessions struct {
	now func() time.Time

	mu    sync.Mutex
	byRef map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, byRef: make(map[string]*session)}
}

// sessionRef returns the ref of a cookie value.
func sessionRef(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:16])
}

// create starts a session for user and returns its cookie value.
func (ss *sessions) create(user string) (string, *session, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, err
	}
	cookie := base64.RawURLEncoding.EncodeToString(raw[:])
	now := ss.now()
	sess := &session{ref: sessionRef(cookie), user: user, created: now, expires: now.Add(SessionTTL)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var mine []*session
	for _, o := range ss.byRef {
		if o.user == user {
			mine = append(mine, o)
		}
	}
	if len(mine) >= MaxSessionsPerUser {
		slices.SortFunc(mine, func(a, b *session) int { return a.created.Compare(b.created) })
		for _, o := range mine[:len(mine)-MaxSessionsPerUser+1] {
			delete(ss.byRef, o.ref)
		}
	}
	if len(ss.byRef) >= MaxSessions {
		ss.sweepLocked(now)
	}
	for len(ss.byRef) >= MaxSessions {
		var oldest *session
		for _, o := range ss.byRef {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(ss.byRef, oldest.ref)
	}
	ss.byRef[sess.ref] = sess
	return cookie, sess, nil
}

// get returns the live session of a cookie value, or nil.
func (ss *sessions) get(cookie string) *session {
	if len(cookie) != 43 { // 32 bytes, base64url without padding
		return nil
	}
	return ss.byRefAlive(sessionRef(cookie))
}

func (ss *sessions) byRefAlive(ref string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	sess := ss.byRef[ref]
	if sess == nil {
		return nil
	}
	if !ss.now().Before(sess.expires) {
		delete(ss.byRef, ref)
		return nil
	}
	return sess
}

// alive reports whether ref is a live session of user.
func (ss *sessions) alive(ref, user string) bool {
	sess := ss.byRefAlive(ref)
	return sess != nil && sess.user == user
}

func (ss *sessions) remove(ref string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byRef, ref)
}

func (ss *sessions) sweep() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.sweepLocked(ss.now())
}

func (ss *sessions) sweepLocked(now time.Time) int {
	n := 0
	for ref, sess := range ss.byRef {
		if !now.Before(sess.expires) {
			delete(ss.byRef, ref)
			n++
		}
	}
	return n
}

// session returns the request's login session, or nil.
func (s *Server) session(r *http.Request) *session {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil
	}
	return s.sessions.get(c.Value)
}

// member is the identity of a login session: its user, its session (so
// that logging out revokes its connections) and the member group.
func member(sess *session) auth.Identity {
	return auth.Identity{User: sess.user, Session: sess.ref, Groups: []string{MemberGroup}}
}

// sessionUser identifies the user of an HTTP request from its login
// session, for the ops endpoints.
func (s *Server) sessionUser(r *http.Request) (auth.Identity, error) {
	sess := s.session(r)
	if sess == nil {
		return auth.Identity{}, errors.New("demo: not signed in")
	}
	return member(sess), nil
}

func (s *Server) setSessionCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- always HttpOnly and SameSite=Strict; Secure when served over HTTPS
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteStrictMode,
	})
}

// tokenRequest is the body of POST /dev/token.
type tokenRequest struct {
	User string `json:"user"`
}

// identify answers POST /dev/token (the gateway's TokenHandler checks CSRF
// first: Fetch Metadata, Origin and the page's token).
//
// When the request carries a login session of the user it names, the
// token is for that session: member group, session ref (POST /logout
// revokes it). Otherwise — no session, or another name — it is the dev
// shortcut the endpoint has always been: a token for the bare name, with a
// fresh session id and no group, good for the chat rooms only. Nothing
// else of the demo accepts such a token: live operations and the live
// view's events require the member group, and a view join needs a session
// token rendered for that user's login.
func (s *Server) identify(r *http.Request) (auth.Identity, error) {
	if !isJSON(r) {
		return auth.Identity{}, errors.New("demo: want application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<10+1))
	if err != nil || len(body) > 1<<10 {
		return auth.Identity{}, errors.New("demo: body too large")
	}
	var req tokenRequest
	if err := protocol.Unmarshal(body, &req); err != nil || !userRe.MatchString(req.User) {
		return auth.Identity{}, errors.New("demo: bad user name")
	}
	if sess := s.session(r); sess != nil && sess.user == req.User {
		return member(sess), nil
	}
	sid, err := auth.GenerateSecret(12)
	if err != nil {
		return auth.Identity{}, err
	}
	return auth.Identity{User: req.User, Session: fmt.Sprintf("%x", sid)}, nil
}

// credentials are the body of POST /login and POST /register.
type credentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// readCredentials reads a JSON body or a form (already parsed by the CSRF
// guard when it carried the token).
func readCredentials(w http.ResponseWriter, r *http.Request) (credentials, error) {
	var c credentials
	if isJSON(r) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
		if err != nil {
			return c, err
		}
		if err := protocol.Unmarshal(body, &c); err != nil {
			return c, err
		}
		return c, nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return c, err
	}
	c.User, c.Password = r.PostFormValue("user"), r.PostFormValue("password")
	return c, nil
}

// clientIP is the client's address for lockouts and audit events: the
// dev server is reached directly, so RemoteAddr.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authReply is the JSON answer of /login, /register and /logout.
type authReply struct {
	OK         bool   `json:"ok,omitempty"`
	User       string `json:"user,omitempty"`
	Error      string `json:"error,omitempty"`
	Message    string `json:"message,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

// login checks a user name and password (POST /login, JSON or form, CSRF
// checked by the guard) and starts a session. Failures are counted per
// user name and per address; a locked name or address is refused with 429
// and how long to wait, without looking at the password.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := readCredentials(w, r)
	if err != nil {
		s.authFailed(w, r, http.StatusBadRequest, authReply{Error: "bad_request", Message: "The sign-in form could not be read."}, "")
		return
	}
	user := strings.ToLower(strings.TrimSpace(c.User))
	err = s.users.Authenticate(user, c.Password, clientIP(r), time.Now())
	var locked identity.LockedError
	switch {
	case err == nil:
		s.startSession(w, r, user)
	case errors.As(err, &locked):
		secs := int(math.Ceil(locked.RetryAfter.Seconds()))
		secs = max(secs, 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.record(r, audit.TypeAuthFailed, "login_locked", user)
		s.authFailed(w, r, http.StatusTooManyRequests, authReply{
			Error: "locked", RetryAfter: secs,
			Message: fmt.Sprintf("Too many failed attempts. Try again in %d s.", secs),
		}, user)
	case errors.Is(err, identity.ErrInvalid):
		s.record(r, audit.TypeAuthFailed, "login_invalid", user)
		s.authFailed(w, r, http.StatusUnauthorized, authReply{Error: "invalid", Message: "Wrong user name or password."}, user)
	default:
		s.log.Error("demo: login", "err", err)
		s.authFailed(w, r, http.StatusInternalServerError, authReply{Error: "internal", Message: "Sign-in failed on the server."}, user)
	}
}

// register creates an account whose password passes the policy and signs
// it in (POST /register, JSON or form, CSRF checked by the guard).
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	c, err := readCredentials(w, r)
	if err != nil {
		s.registerFailed(w, r, http.StatusBadRequest, "bad_request", "The form could not be read.")
		return
	}
	user := strings.ToLower(strings.TrimSpace(c.User))
	if !userRe.MatchString(user) {
		s.registerFailed(w, r, http.StatusBadRequest, "bad_name", "User names are 1 to 32 letters, digits, '_', '.' or '-'.")
		return
	}
	if s.users.Len() >= MaxUsers {
		s.registerFailed(w, r, http.StatusServiceUnavailable, "full", "The demo has as many accounts as it keeps; sign in with a demo user.")
		return
	}
	if err := s.users.Add(user, c.Password); err != nil {
		code, msg := policyMessage(err)
		status := http.StatusBadRequest
		if code == "exists" {
			status = http.StatusConflict
		} else if code == "internal" {
			s.log.Error("demo: register", "err", err)
			status = http.StatusInternalServerError
		}
		s.registerFailed(w, r, status, code, msg)
		return
	}
	s.startSession(w, r, user)
}

// policyMessage explains a refused new password (or name) to the user.
func policyMessage(err error) (code, message string) {
	switch {
	case errors.Is(err, identity.ErrExists):
		return "exists", "That user name is taken."
	case errors.Is(err, identity.ErrBadName):
		return "bad_name", "User names are 1 to 32 letters, digits, '_', '.' or '-'."
	case errors.Is(err, identity.ErrTooShort):
		return "weak_password", fmt.Sprintf("Use at least %d characters.", identity.DefaultMinLength)
	case errors.Is(err, identity.ErrTooLong):
		return "weak_password", fmt.Sprintf("Use at most %d characters.", identity.DefaultMaxLength)
	case errors.Is(err, identity.ErrEncoding):
		return "weak_password", "The password is not valid text."
	case errors.Is(err, identity.ErrRepeated):
		return "weak_password", "A repeated character or pattern is too easy to guess."
	case errors.Is(err, identity.ErrContainsUser):
		return "weak_password", "The password must not contain the user name."
	case errors.Is(err, identity.ErrContainsWord):
		return "weak_password", "The password must not contain “livegate”."
	case errors.Is(err, identity.ErrCommon):
		return "weak_password", "That password is on the list of common passwords; pick a less guessable one."
	}
	return "internal", "The account could not be created."
}

// startSession replaces the request's session (if any: no fixation) with
// a new one for user and answers the login or registration.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user string) {
	if old := s.session(r); old != nil {
		s.sessions.remove(old.ref)
	}
	cookie, _, err := s.sessions.create(user)
	if err != nil {
		s.log.Error("demo: session", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.setSessionCookie(w, cookie, int(SessionTTL/time.Second))
	w.Header().Set("Cache-Control", "no-store")
	if isJSON(r) {
		writeJSON(w, http.StatusOK, authReply{OK: true, User: user})
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the request's session and closes the connections opened
// with it (POST /logout, CSRF checked by the guard).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if sess := s.session(r); sess != nil {
		s.sessions.remove(sess.ref)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		if _, err := s.gw.RevokeSession(ctx, sess.ref); err != nil {
			s.log.Warn("demo: logout: revoke session", "err", err)
		}
		cancel()
	}
	s.setSessionCookie(w, "", -1)
	w.Header().Set("Cache-Control", "no-store")
	if isJSON(r) {
		writeJSON(w, http.StatusOK, authReply{OK: true})
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// authFailed answers a refused login: JSON for the page's script, or the
// page again with the message for a plain form post.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, status int, rep authReply, user string) {
	w.Header().Set("Cache-Control", "no-store")
	if isJSON(r) {
		writeJSON(w, status, rep)
		return
	}
	s.renderPage(w, r, status, pageOptions{authNotice: rep.Message, authUser: user})
}

func (s *Server) registerFailed(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if isJSON(r) {
		writeJSON(w, status, authReply{Error: code, Message: msg})
		return
	}
	s.renderPage(w, r, status, pageOptions{registerNotice: msg})
}

// record writes a security event. A user name that is not one the demo
// accepts is left out (it is attacker-chosen text of any length).
func (s *Server) record(r *http.Request, typ, reason, user string) {
	if !userRe.MatchString(user) {
		user = ""
	}
	s.events.Record(context.WithoutCancel(r.Context()), audit.Event{
		Type: typ, Time: time.Now(), Severity: audit.SeverityWarning,
		IP: clientIP(r), Reason: reason, User: user,
	})
}
