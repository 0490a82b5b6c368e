package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/httpapi"
)

func TestMain(m *testing.M) { harmoniatest.Main(m) }

// Tokens of the test server, one per scope.
const (
	readToken    = "read-token-0123456789"
	writeToken   = "write-token-0123456789"
	publishToken = "publish-token-0123456789"
	adminToken   = "admin-token-0123456789"
)

// bundle is one test's server: the store, the handler over it, an HTTP
// server and the OpenAPI document it serves.
type bundle struct {
	t       *testing.T
	store   *harmonia.Store
	handler *httpapi.Handler
	srv     *httptest.Server
	doc     *openapi3.T
}

// setup starts the handler over a fresh store with a token per scope,
// unless opts says otherwise.
func setup(t *testing.T, opts *httpapi.Options) *bundle {
	t.Helper()
	return setupWith(t, harmoniatest.Store(t, nil), opts)
}

// setupWith is setup over store.
func setupWith(t *testing.T, store *harmonia.Store, opts *httpapi.Options) *bundle {
	t.Helper()
	if opts == nil {
		auth, err := httpapi.NewTokenAuthorizer([]httpapi.Token{
			{Secret: readToken, Identity: httpapi.Identity{Name: "reader", Scopes: []httpapi.Scope{httpapi.ScopeRead}}},
			{Secret: writeToken, Identity: httpapi.Identity{Name: "writer", Scopes: []httpapi.Scope{httpapi.ScopeWrite}}},
			{Secret: publishToken, Identity: httpapi.Identity{Name: "publisher", Scopes: []httpapi.Scope{httpapi.ScopePublish}}},
			{Secret: adminToken, Identity: httpapi.Identity{Name: "admin", Scopes: []httpapi.Scope{httpapi.ScopeAdmin}}},
		})
		require.NoError(t, err)
		opts = &httpapi.Options{Authorizer: auth, Watch: &harmonia.WatchOpts{Interval: 50 * time.Millisecond}}
	}
	h, err := httpapi.New(store, opts)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.RegisterOnShutdown(h.Close)
	srv.Start()
	t.Cleanup(func() { h.Close(); srv.Close() })
	b := &bundle{t: t, store: store, handler: h, srv: srv}
	res, err := http.Get(srv.URL + httpapi.OpenAPIPath)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	b.doc, err = openapi3.NewLoader().LoadFromData(raw)
	require.NoError(t, err)
	return b
}

// response is one answer, already validated against the document.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), string(r.body))
}

func (r *response) problem(t *testing.T) httpapi.Problem {
	t.Helper()
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"), string(r.body))
	var p httpapi.Problem
	r.decode(t, &p)
	require.Equal(t, r.status, p.Status)
	require.Equal(t, httpapi.ProblemTypeBase+string(p.Code), p.Type)
	return p
}

// do sends a request with token (none when empty) and headers given as
// name, value pairs, and validates the response against the served
// document: its status is one the operation declares and its headers and
// body match the schema.
func (b *bundle) do(token, method, path string, body any, headers ...string) *response {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			var err error
			raw, err = json.Marshal(body)
			require.NoError(b.t, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	require.NoError(b.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := b.srv.Client().Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	r := &response{status: res.StatusCode, header: res.Header, body: raw}
	b.validate(req, r)
	return r
}

// validate checks a response against the operation of the served
// document that the request addresses. A request no operation serves
// must have a problem document for an answer.
func (b *bundle) validate(req *http.Request, r *response) {
	b.t.Helper()
	route, params := b.route(req)
	if route == nil {
		require.Contains(b.t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, r.status)
		require.Equal(b.t, "application/problem+json", r.header.Get("Content-Type"))
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			ExcludeResponseBody: strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream")},
	}
	require.NoError(b.t, openapi3filter.ValidateResponse(context.Background(), in), "%s %s → %d %s", req.Method, req.URL.Path, r.status, r.body)
}

// route finds the document's operation for req by matching the path
// templates segment by segment; of several, the one with the most
// literal segments wins, as in the handler's router.
func (b *bundle) route(req *http.Request) (*routers.Route, map[string]string) {
	segs := strings.Split(strings.Trim(req.URL.EscapedPath(), "/"), "/")
	var best *routers.Route
	var bestParams map[string]string
	bestLiterals := -1
	for path, item := range b.doc.Paths.Map() {
		tpl := strings.Split(strings.Trim(path, "/"), "/")
		op := item.GetOperation(req.Method)
		if len(tpl) != len(segs) || op == nil {
			continue
		}
		params := map[string]string{}
		literals := 0
		ok := true
		for i, s := range tpl {
			switch {
			case strings.HasPrefix(s, "{"):
				v, err := url.PathUnescape(segs[i])
				require.NoError(b.t, err)
				params[strings.Trim(s, "{}")] = v
			case s == segs[i]:
				literals++
			default:
				ok = false
			}
		}
		if ok && literals > bestLiterals {
			best = &routers.Route{Spec: b.doc, Path: path, PathItem: item, Method: req.Method, Operation: op}
			bestParams, bestLiterals = params, literals
		}
	}
	return best, bestParams
}
