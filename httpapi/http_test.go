package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/httpapi"
)

func TestLimitsAndUnknownRoutes(t *testing.T) {
	t.Parallel()
	auth, err := httpapi.NewTokenAuthorizer([]httpapi.Token{{Secret: writeToken, Identity: httpapi.Identity{Name: "writer", Scopes: []httpapi.Scope{httpapi.ScopeWrite}}}})
	require.NoError(t, err)
	b := setup(t, &httpapi.Options{Authorizer: auth, MaxBodyBytes: 256, MaxQueryBytes: 64})

	r := b.do(writeToken, "POST", "/licenses", map[string]any{"spdx_id": "MIT", "commercial_use": true, "notes": strings.Repeat("n", 300)})
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	require.Equal(t, httpapi.CodeTooLarge, r.problem(t).Code)
	r = b.do(writeToken, "POST", "/licenses", []byte(`{"spdx_id": "MIT", "commercial_use": true}`), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)
	require.Equal(t, "Content-Type", r.problem(t).Field)
	r = b.do(writeToken, "GET", "/licenses?after="+strings.Repeat("0", 24)+"&limit=1&commercial_use=true&x="+strings.Repeat("y", 30), nil)
	require.Equal(t, http.StatusRequestURITooLong, r.status)
	require.Equal(t, "query", r.problem(t).Field)

	r = b.do(writeToken, "GET", "/nothing/here", nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, harmonia.CodeNotFound, r.problem(t).Code)
	r = b.do(writeToken, "DELETE", "/licenses", nil)
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, "GET, POST", r.header.Get("Allow"))
	require.Equal(t, httpapi.CodeNotAllowed, r.problem(t).Code)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, &httpapi.Options{Timeout: time.Nanosecond})
	r := b.do("", "GET", "/licenses", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	p := r.problem(t)
	require.Equal(t, httpapi.CodeTimeout, p.Code)
	require.NotContains(t, p.Detail, "mongo", "an internal cause is logged, not answered")
}
