package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/httpapi"
)

// counts returns the number of documents in each collection.
func counts(t *testing.T, store *harmonia.Store) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	names, err := store.Database().ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	out := map[string]int64{}
	for _, n := range names {
		c, err := store.Database().Collection(n).CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		out[n] = c
	}
	return out
}

// write is one write operation, sent as a test sends it.
type write struct {
	method, path string
	body         any
	scope        httpapi.Scope
}

// writes returns a request for every write operation of the document,
// against the fixtures of b: a license, an artifact, a published
// version, an alias and a job.
func writes(t *testing.T, b *bundle) map[string]write {
	lic := b.license("MIT")
	a := b.artifact("a", "1", lic)
	b.publish("1.0", a)
	r := b.do(publishToken, "PUT", "/aliases/prod", map[string]any{"version_tag": "1.0"})
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(writeToken, "POST", "/jobs", map[string]any{"type": "report"})
	require.Equal(t, http.StatusCreated, r.status)
	var job httpapi.EnqueueOutput
	r.decode(t, &job)
	d := map[string]any{"path": "d.tar", "size_bytes": 1}
	return map[string]write{
		"createLicense":   {"POST", "/licenses", map[string]any{"spdx_id": "Apache-2.0", "commercial_use": true}, httpapi.ScopeWrite},
		"ensureLicense":   {"PUT", "/licenses/spdx/BSD-3-Clause", map[string]any{"commercial_use": true}, httpapi.ScopeWrite},
		"updateLicense":   {"PATCH", "/licenses/" + lic.ID.Hex(), map[string]any{"notes": "x"}, httpapi.ScopeWrite},
		"createArtifact":  {"POST", "/artifacts", map[string]any{"name": "b", "version": "1", "path": "b.onnx", "size_bytes": 1}, httpapi.ScopeWrite},
		"ensureArtifact":  {"PUT", "/artifacts/c/1", map[string]any{"path": "c.onnx", "size_bytes": 1}, httpapi.ScopeWrite},
		"updateArtifact":  {"PATCH", "/artifacts/" + a.ID.Hex(), map[string]any{"notes": "x"}, httpapi.ScopeWrite},
		"createDataset":   {"POST", "/datasets", map[string]any{"name": "d", "version": "1", "path": "d.tar", "size_bytes": 1}, httpapi.ScopeWrite},
		"ensureDataset":   {"PUT", "/datasets/e/1", d, httpapi.ScopeWrite},
		"updateDataset":   {"PATCH", "/datasets/" + strings.Repeat("0", 24), map[string]any{"notes": "x"}, httpapi.ScopeWrite},
		"enqueueJob":      {"POST", "/jobs", map[string]any{"type": "report"}, httpapi.ScopeWrite},
		"publishVersion":  {"POST", "/versions", map[string]any{"version_tag": "2.0", "artifact_ids": []string{a.ID.Hex()}}, httpapi.ScopePublish},
		"setAlias":        {"PUT", "/aliases/prod", map[string]any{"version_tag": "1.0"}, httpapi.ScopePublish},
		"deleteAlias":     {"DELETE", "/aliases/prod", nil, httpapi.ScopePublish},
		"cancelJob":       {"POST", "/jobs/" + job.Job.ID + "/cancel", nil, httpapi.ScopeAdmin},
		"repairInventory": {"POST", "/check/repair", nil, httpapi.ScopeAdmin},
	}
}

// tokenWithout returns a token that lacks scope (but may read).
func tokenWithout(scope httpapi.Scope) string {
	if scope == httpapi.ScopeWrite {
		return publishToken
	}
	return writeToken
}

func TestScopes(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ws := writes(t, b)

	// Every write operation of the document is here, with its scope.
	for path, item := range b.doc.Paths.Map() {
		for method, op := range item.Operations() {
			scope := op.Extensions["x-harmonia-scope"]
			if scope == string(httpapi.ScopeRead) {
				continue
			}
			w, ok := ws[op.OperationID]
			require.True(t, ok, "%s %s (%s) has no scope test", method, path, op.OperationID)
			require.Equal(t, string(w.scope), scope, op.OperationID)
		}
	}

	before := counts(t, b.store)
	for id, w := range ws {
		for _, c := range []struct {
			token  string
			status int
		}{{"", http.StatusUnauthorized}, {"not-a-token-at-all", http.StatusUnauthorized},
			{readToken, http.StatusForbidden}, {tokenWithout(w.scope), http.StatusForbidden}} {
			r := b.do(c.token, w.method, w.path, w.body)
			require.Equal(t, c.status, r.status, "%s with %q: %s", id, c.token, r.body)
			p := r.problem(t)
			if c.status == http.StatusUnauthorized {
				require.Equal(t, httpapi.CodeUnauthorized, p.Code)
				require.Equal(t, `Bearer realm="harmonia"`, r.header.Get("WWW-Authenticate"))
			} else {
				require.Equal(t, httpapi.CodeForbidden, p.Code)
				require.Contains(t, p.Detail, string(w.scope))
			}
			if c.token != "" {
				require.NotContains(t, string(r.body), c.token, "the token is never echoed")
			}
		}
	}
	require.Equal(t, before, counts(t, b.store), "a refused call wrote nothing")

	// Reads need a token with any scope when an authorizer is set.
	require.Equal(t, http.StatusUnauthorized, b.do("", "GET", "/licenses", nil).status)
	for _, tok := range []string{readToken, writeToken, publishToken, adminToken} {
		require.Equal(t, http.StatusOK, b.do(tok, "GET", "/licenses", nil).status)
	}
	// Admin holds every scope.
	w := ws["createLicense"]
	require.Equal(t, http.StatusCreated, b.do(adminToken, w.method, w.path, w.body).status)
}

func TestNoAuthorizerServesReadsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, &httpapi.Options{})
	lic := &harmonia.License{SPDXID: "MIT"}
	require.NoError(t, b.store.CreateLicense(t.Context(), lic))
	require.Equal(t, http.StatusOK, b.do("", "GET", "/licenses/"+lic.ID.Hex(), nil).status)
	before := counts(t, b.store)
	for _, tok := range []string{"", adminToken} {
		r := b.do(tok, "POST", "/licenses", map[string]any{"spdx_id": "Apache-2.0", "commercial_use": true})
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Contains(t, r.problem(t).Detail, "no authorizer")
		r = b.do(tok, "POST", "/jobs/"+strings.Repeat("0", 24)+"/cancel", nil)
		require.Equal(t, http.StatusUnauthorized, r.status)
	}
	require.Equal(t, before, counts(t, b.store))
}

func TestReadOnlyAndAnonymousRead(t *testing.T) {
	t.Parallel()
	auth, err := httpapi.NewTokenAuthorizer([]httpapi.Token{{Secret: adminToken, Identity: httpapi.Identity{Name: "admin", Scopes: []httpapi.Scope{httpapi.ScopeAdmin}}}})
	require.NoError(t, err)
	b := setup(t, &httpapi.Options{Authorizer: auth, ReadOnly: true, AnonymousRead: true})
	require.Equal(t, http.StatusOK, b.do("", "GET", "/licenses", nil).status)
	r := b.do(adminToken, "POST", "/licenses", map[string]any{"spdx_id": "MIT", "commercial_use": true})
	require.Equal(t, http.StatusForbidden, r.status)
	require.Contains(t, r.problem(t).Detail, "read-only")

	// Read-only without an authorizer: 403 too, as harmonia serve --read-only says.
	b = setup(t, &httpapi.Options{ReadOnly: true})
	r = b.do("", "POST", "/licenses", map[string]any{"spdx_id": "MIT", "commercial_use": true})
	require.Equal(t, http.StatusForbidden, r.status)
}

func TestTokenAuthorizer(t *testing.T) {
	t.Parallel()
	toks, err := httpapi.ParseTokens(strings.NewReader("# comment\n\nci write,publish 0123456789abcdef\nops admin fedcba9876543210\n"))
	require.NoError(t, err)
	require.Len(t, toks, 2)
	require.Equal(t, []httpapi.Scope{httpapi.ScopeWrite, httpapi.ScopePublish}, toks[0].Identity.Scopes)
	require.NotContains(t, toks[0].String(), "0123456789abcdef", "a token prints without its secret")
	_, err = httpapi.ParseTokens(strings.NewReader("ci root 0123456789abcdef\n"))
	require.ErrorContains(t, err, "line 1")
	_, err = httpapi.ParseTokens(strings.NewReader("ci write\n"))
	require.Error(t, err)
	_, err = httpapi.NewTokenAuthorizer([]httpapi.Token{{Secret: "short", Identity: httpapi.Identity{Name: "x", Scopes: []httpapi.Scope{httpapi.ScopeRead}}}})
	require.ErrorContains(t, err, "16")
	_, err = httpapi.NewTokenAuthorizer([]httpapi.Token{toks[0], {Secret: toks[0].Secret, Identity: toks[1].Identity}})
	require.ErrorContains(t, err, "same secret")

	a, err := httpapi.NewTokenAuthorizer(toks)
	require.NoError(t, err)
	req, _ := http.NewRequest("GET", "/", nil)
	id, err := a.Authenticate(req)
	require.NoError(t, err)
	require.Nil(t, id, "no credentials")
	req.Header.Set("Authorization", "bearer fedcba9876543210")
	id, err = a.Authenticate(req)
	require.NoError(t, err)
	require.Equal(t, "ops", id.Name)
	require.True(t, id.Has(httpapi.ScopePublish), "admin holds every scope")
	req.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
	_, err = a.Authenticate(req)
	require.Error(t, err)
	req.Header.Set("Authorization", "Bearer fedcba9876543211")
	_, err = a.Authenticate(req)
	require.ErrorContains(t, err, "unknown token")
	require.NotContains(t, err.Error(), "fedcba")
}
