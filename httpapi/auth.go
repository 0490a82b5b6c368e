package httpapi

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Scope is a permission an [Identity] holds. Each operation needs one:
// every read needs ScopeRead, and the scope of each write is in the
// OpenAPI document (x-harmonia-scope) and in the package documentation.
type Scope string

// The scopes, from the least to the most powerful. ScopeAdmin grants
// every other; any scope grants ScopeRead.
const (
	// ScopeRead reads everything: lists, entities, versions, aliases,
	// their history and watch, jobs and their logs, the inventory check.
	ScopeRead Scope = "read"
	// ScopeWrite creates and updates licenses, artifacts and datasets,
	// and enqueues jobs.
	ScopeWrite Scope = "write"
	// ScopePublish publishes inventory versions and moves and deletes
	// aliases.
	ScopePublish Scope = "publish"
	// ScopeAdmin grants every scope, and alone cancels jobs and repairs
	// the inventory (POST /check/repair).
	ScopeAdmin Scope = "admin"
)

// Scopes lists every scope, least powerful first.
var scopes = []Scope{ScopeRead, ScopeWrite, ScopePublish, ScopeAdmin}

// ParseScope returns the scope named s, or an error naming the scopes.
func ParseScope(s string) (Scope, error) {
	sc := Scope(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(scopes, sc) {
		return "", fmt.Errorf("unknown scope %q: one of read, write, publish, admin", s)
	}
	return sc, nil
}

// Identity is who sends a request, as an [Authorizer] established it.
type Identity struct {
	// Name identifies the caller; the handler records it as created_by,
	// published_by and an alias move's by. Required.
	Name string
	// Scopes are the scopes the caller holds.
	Scopes []Scope
}

// Has reports whether the identity holds scope s: it holds it, or holds
// ScopeAdmin, or s is ScopeRead and it holds any scope.
func (id *Identity) Has(s Scope) bool {
	if id == nil {
		return false
	}
	if s == ScopeRead && len(id.Scopes) > 0 {
		return true
	}
	return slices.Contains(id.Scopes, s) || slices.Contains(id.Scopes, ScopeAdmin)
}

// Authorizer establishes who sends a request. The embedding service
// provides one (its own sessions, mTLS, a gateway's headers), or uses
// [TokenAuthorizer].
type Authorizer interface {
	// Authenticate returns the request's identity. It returns (nil, nil)
	// for a request without credentials, which may then only read, and
	// an error for credentials it refuses, which the handler answers
	// with 401. It must not log the credentials.
	Authenticate(r *http.Request) (*Identity, error)
}

// Token is one bearer token a [TokenAuthorizer] accepts: the secret and
// the identity it stands for.
type Token struct {
	// Secret is the token's value, as clients send it in
	// "Authorization: Bearer <secret>". At least 16 characters.
	Secret string
	// Identity is who the token stands for.
	Identity Identity
}

// String leaves the secret out, so that a Token printed or logged by
// mistake does not reveal it.
func (t Token) String() string {
	return fmt.Sprintf("token for %s (%v)", t.Identity.Name, t.Identity.Scopes)
}

// TokenAuthorizer accepts bearer tokens with scopes. It keeps only the
// tokens' SHA-256 digests and compares a presented token's digest with
// every one of them in constant time, so that neither the comparison's
// duration nor an early exit tells which bytes matched.
type TokenAuthorizer struct {
	digests    [][sha256.Size]byte
	identities []Identity
}

// NewTokenAuthorizer returns an authorizer accepting tokens. Each token
// needs a name, at least one scope and a secret of at least 16
// characters; secrets must differ.
func NewTokenAuthorizer(tokens []Token) (*TokenAuthorizer, error) {
	a := &TokenAuthorizer{}
	for i, t := range tokens {
		switch {
		case t.Identity.Name == "":
			return nil, fmt.Errorf("token %d: no name", i+1)
		case len(t.Identity.Scopes) == 0:
			return nil, fmt.Errorf("token %d (%s): no scope", i+1, t.Identity.Name)
		case len(t.Secret) < 16:
			return nil, fmt.Errorf("token %d (%s): the secret must have at least 16 characters", i+1, t.Identity.Name)
		}
		d := sha256.Sum256([]byte(t.Secret))
		if slices.Contains(a.digests, d) {
			return nil, fmt.Errorf("token %d (%s): the same secret as an earlier token", i+1, t.Identity.Name)
		}
		a.digests = append(a.digests, d)
		a.identities = append(a.identities, Identity{Name: t.Identity.Name, Scopes: slices.Clone(t.Identity.Scopes)})
	}
	return a, nil
}

// Authenticate implements [Authorizer] for "Authorization: Bearer …".
func (a *TokenAuthorizer) Authenticate(r *http.Request) (*Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, fmt.Errorf("the Authorization header must be \"Bearer <token>\"")
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	found := -1
	for i := range a.digests {
		if subtle.ConstantTimeCompare(d[:], a.digests[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, fmt.Errorf("unknown token")
	}
	id := a.identities[found]
	return &id, nil
}

// ParseTokens reads tokens in the format of `harmonia serve --tokens`:
// one per line, "NAME SCOPES SECRET", SCOPES comma-separated
// ("ci write,publish s3cr3t-…"); blank lines and lines starting with #
// are skipped. Errors name the line but never show a secret.
func ParseTokens(r io.Reader) ([]Token, error) {
	var out []Token
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("tokens line %d: want NAME SCOPES SECRET, got %d fields", n, len(f))
		}
		t := Token{Secret: f[2], Identity: Identity{Name: f[0]}}
		for _, s := range strings.Split(f[1], ",") {
			sc, err := ParseScope(s)
			if err != nil {
				return nil, fmt.Errorf("tokens line %d: %w", n, err)
			}
			t.Identity.Scopes = append(t.Identity.Scopes, sc)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}

// authorize returns the identity of r if it may run an operation
// needing scope, or the problem refusing it.
func (h *Handler) authorize(r *http.Request, scope Scope) (*Identity, error) {
	if scope != ScopeRead && h.opts.ReadOnly {
		return nil, newProblem(http.StatusForbidden, CodeForbidden, "request", "", "this server is read-only")
	}
	if h.opts.Authorizer == nil {
		if scope == ScopeRead {
			return nil, nil
		}
		return nil, newProblem(http.StatusUnauthorized, CodeUnauthorized, "request", "Authorization",
			"this server has no authorizer configured and serves reads only: %s needs the %s scope", r.Method, scope)
	}
	id, err := h.opts.Authorizer.Authenticate(r)
	if err != nil {
		return nil, newProblem(http.StatusUnauthorized, CodeUnauthorized, "request", "Authorization", "%s", err.Error())
	}
	if id == nil {
		if scope == ScopeRead && h.opts.AnonymousRead {
			return nil, nil
		}
		return nil, newProblem(http.StatusUnauthorized, CodeUnauthorized, "request", "Authorization",
			"this operation needs a bearer token with the %s scope", scope)
	}
	if id.Name == "" {
		return nil, newProblem(http.StatusUnauthorized, CodeUnauthorized, "request", "Authorization", "the authorizer returned an identity without a name")
	}
	if !id.Has(scope) {
		return nil, newProblem(http.StatusForbidden, CodeForbidden, "request", "Authorization",
			"%s lacks the %s scope this operation needs", id.Name, scope)
	}
	return id, nil
}

var _ Authorizer = (*TokenAuthorizer)(nil)

// by is the name the handler records for a write by id.
func by(id *Identity) string {
	if id == nil {
		return ""
	}
	return id.Name
}
