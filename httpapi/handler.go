package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/harmonia-ml/harmonia"
)

// Defaults of [Options].
const (
	// MaxBodyBytesDefault bounds a request body.
	MaxBodyBytesDefault = 1 << 20
	// MaxQueryBytesDefault bounds a request's query string.
	MaxQueryBytesDefault = 4096
	// TimeoutDefault bounds each request's server-side work (a watch's
	// stream excepted).
	TimeoutDefault = 30 * time.Second
	// KeepAliveDefault is how often an idle alias watch sends an SSE
	// comment, so that proxies keep the stream open.
	KeepAliveDefault = 15 * time.Second
	// VersionCacheDefault is how many published versions the handler
	// keeps in memory (they are immutable, so a cached one is never
	// stale).
	VersionCacheDefault = 256
)

// OpenAPIPath is where the handler serves its OpenAPI document.
const OpenAPIPath = "/openapi.json"

// Options configures a [Handler]. The zero value serves reads only.
type Options struct {
	// Authorizer establishes who sends each request. Without one the
	// handler serves reads only: every write answers 401 with a problem
	// document. Defaults to none.
	Authorizer Authorizer
	// AnonymousRead lets requests without credentials read when an
	// Authorizer is set. Defaults to false: every request needs an
	// identity with the read scope.
	AnonymousRead bool
	// ReadOnly refuses every write with 403, whoever sends it. Defaults
	// to false.
	ReadOnly bool
	// MaxBodyBytes bounds a request body; a larger one answers 413.
	// Defaults to MaxBodyBytesDefault.
	MaxBodyBytes int64
	// MaxQueryBytes bounds a query string; a longer one answers 414.
	// Defaults to MaxQueryBytesDefault.
	MaxQueryBytes int
	// Timeout bounds the server-side work of each request (the Store
	// calls it makes); past it the request answers 503. An alias watch's
	// stream is bounded by the client and [Handler.Close] instead.
	// Defaults to TimeoutDefault.
	Timeout time.Duration
	// Watch configures the polling of alias watches. Defaults to the
	// Store's defaults.
	Watch *harmonia.WatchOpts
	// KeepAlive is how often an idle alias watch sends a comment.
	// Defaults to KeepAliveDefault.
	KeepAlive time.Duration
	// VersionCache is how many published versions are kept in memory.
	// Defaults to VersionCacheDefault.
	VersionCache int
	// Logger receives internal errors (never credentials). Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Handler is the HTTP API over a Store: an http.Handler to mount in a
// service's own server, with http.StripPrefix for a path prefix.
type Handler struct {
	store *harmonia.Store
	opts  Options
	mux   *http.ServeMux
	doc   *openapi3.T
	json  []byte
	ops   []*operation
	// versions caches published versions by tag: immutable, never stale.
	versions *lru.Cache[string, *cachedVersion]
	closing  chan struct{}
	once     sync.Once
}

// New returns the handler over store. It builds the OpenAPI document
// from the handler's types; an error there is a bug of this package.
func New(store *harmonia.Store, opts *Options) (*Handler, error) {
	if store == nil {
		return nil, &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "httpapi", Field: "store", Reason: "a Store is required"}
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o.MaxBodyBytes = cmp.Or(o.MaxBodyBytes, MaxBodyBytesDefault)
	o.MaxQueryBytes = cmp.Or(o.MaxQueryBytes, MaxQueryBytesDefault)
	o.Timeout = cmp.Or(o.Timeout, TimeoutDefault)
	o.KeepAlive = cmp.Or(o.KeepAlive, KeepAliveDefault)
	o.VersionCache = cmp.Or(o.VersionCache, VersionCacheDefault)
	o.Logger = cmp.Or(o.Logger, slog.Default())
	if o.MaxBodyBytes < 0 || o.MaxQueryBytes < 0 || o.Timeout < 0 || o.KeepAlive < 0 || o.VersionCache < 0 {
		return nil, &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "httpapi", Field: "options", Reason: "limits, timeouts and sizes must not be negative"}
	}
	cache, err := lru.New[string, *cachedVersion](o.VersionCache)
	if err != nil {
		return nil, err
	}
	h := &Handler{store: store, opts: o, mux: http.NewServeMux(), versions: cache, closing: make(chan struct{})}
	h.ops = h.operations()
	if h.doc, err = buildDocument(h.ops); err != nil {
		return nil, fmt.Errorf("httpapi: build the OpenAPI document: %w", err)
	}
	if h.json, err = json.MarshalIndent(h.doc, "", "  "); err != nil {
		return nil, fmt.Errorf("httpapi: encode the OpenAPI document: %w", err)
	}
	h.json = append(h.json, '\n')
	if h.doc, err = bindRoutes(h.json, h.ops); err != nil {
		return nil, fmt.Errorf("httpapi: load the OpenAPI document: %w", err)
	}
	for _, op := range h.ops {
		for _, p := range op.params {
			op.checkPath = op.checkPath || (p.in == openapi3.ParameterInPath && p.schema.Pattern != "")
		}
		h.mux.Handle(op.method+" "+op.path, h.serve(op))
	}
	h.mux.HandleFunc("GET "+OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(h.json)
	})
	h.mux.HandleFunc("/", h.notFound)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// OpenAPI returns the handler's OpenAPI 3.1 document, as served at
// OpenAPIPath.
func (h *Handler) OpenAPI() []byte { return bytes.Clone(h.json) }

// Close ends the open alias watch streams; requests after it still work.
// A server calls it when it shuts down (http.Server.RegisterOnShutdown),
// since Shutdown waits for every open stream otherwise.
func (h *Handler) Close() { h.once.Do(func() { close(h.closing) }) }

// operation is one route: what the OpenAPI document says of it and the
// function that serves it.
type operation struct {
	method, path string
	id, summary  string
	description  string
	tag          string
	scope        Scope
	params       []param
	// body is a pointer to the request body's type, nil for none.
	body any
	// ok is the success status and out its body type (nil: no body).
	ok  int
	out any
	// also lists other success statuses with the same body (a
	// get-or-create's 200) or none (304).
	also []int
	// errs lists the error statuses beyond the common ones.
	errs []int
	// etag, link, stream: the response's ETag, Link and SSE stream.
	etag, link, stream bool
	// headers are request headers the operation reads.
	headers []param
	run     func(c *call) error
	route   *routers.Route
	// checkPath is set when a path parameter's schema constrains it
	// (an ObjectID's pattern).
	checkPath bool
}

// param is a path, query or header parameter.
type param struct {
	name, in, desc string
	schema         *openapi3.Schema
	required       bool
}

// call is one request to an operation.
type call struct {
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	op   *operation
	id   *Identity
	body []byte
}

// decode reads the (validated) body into v.
func (c *call) decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body", "the body is not valid JSON for this operation: %v", err)
	}
	return nil
}

// reply writes v as JSON with status.
func (c *call) reply(status int, v any) error {
	return writeJSON(c.w, status, v)
}

// answer replies v with status, or returns err: the end of most
// operations, answer(c, http.StatusOK, store.Get…(…)).
func answer[T any](c *call, status int, v T, err error) error {
	if err != nil {
		return err
	}
	return c.reply(status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// serve is the pipeline every operation runs: limits, authorization,
// validation against the OpenAPI document, the timeout, the operation,
// and errors as problem documents.
func (h *Handler) serve(op *operation) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r, op: op, ctx: r.Context()}
		if err := h.prepare(c); err != nil {
			h.fail(c, err)
			return
		}
		if !op.stream {
			var cancel context.CancelFunc
			c.ctx, cancel = context.WithTimeout(c.ctx, h.opts.Timeout)
			defer cancel()
		}
		if err := op.run(c); err != nil {
			h.fail(c, err)
		}
	})
}

// prepare checks the limits, authorizes, reads the body and validates
// the request against the operation in the OpenAPI document.
func (h *Handler) prepare(c *call) error {
	r := c.r
	if len(r.URL.RawQuery) > h.opts.MaxQueryBytes {
		return newProblem(http.StatusRequestURITooLong, CodeTooLarge, "request", "query", "the query string has %d bytes, more than the %d allowed", len(r.URL.RawQuery), h.opts.MaxQueryBytes)
	}
	id, err := h.authorize(r, c.op.scope)
	if err != nil {
		return err
	}
	c.id = id
	if c.op.body != nil {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			r.Header.Set("Content-Type", "application/json") // every body is JSON; a client may leave that out
		} else if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return newProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "request", "Content-Type",
				"the body must be JSON (application/json), not %q", ct)
		}
		c.body, err = io.ReadAll(http.MaxBytesReader(c.w, r.Body, h.opts.MaxBodyBytes))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newProblem(http.StatusRequestEntityTooLarge, CodeTooLarge, "request", "body", "the body exceeds the %d bytes allowed", mbe.Limit)
		}
		if err != nil {
			return badRequest("body", "reading the body failed: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(c.body))
	}
	if c.op.body == nil && r.URL.RawQuery == "" && !c.op.checkPath {
		return nil // nothing the document constrains: plain path segments, headers the operation parses itself
	}
	return validateRequest(c)
}

// validateRequest checks the request's parameters and body against the
// OpenAPI document: parameters answer 400, a body that breaks its schema
// 422.
func validateRequest(c *call) error {
	params := map[string]string{}
	for _, p := range c.op.params {
		if p.in == openapi3.ParameterInPath {
			params[p.name] = c.r.PathValue(p.name)
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: c.r, PathParams: params, Route: c.op.route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	err := openapi3filter.ValidateRequest(c.ctx, in)
	if c.op.body != nil {
		c.r.Body = io.NopCloser(bytes.NewReader(c.body))
	}
	if err == nil {
		return nil
	}
	return requestProblem(err)
}

// requestProblem turns kin-openapi's validation errors into one problem
// listing every broken rule.
func requestProblem(err error) error {
	var errs []error
	var me openapi3.MultiError
	if errors.As(err, &me) {
		errs = me
	} else {
		errs = []error{err}
	}
	status := http.StatusBadRequest
	var fields []ProblemField
	for _, e := range errs {
		var re *openapi3filter.RequestError
		if !errors.As(e, &re) {
			fields = append(fields, ProblemField{Field: "request", Reason: e.Error()})
			continue
		}
		switch {
		case re.Parameter != nil:
			fields = append(fields, ProblemField{Field: re.Parameter.Name, Reason: reasonOf(re)})
		case re.RequestBody != nil:
			var se *openapi3.SchemaError
			var sme openapi3.MultiError
			switch {
			case errors.As(re.Err, &sme):
				for _, x := range sme {
					if errors.As(x, &se) {
						status = http.StatusUnprocessableEntity
						fields = append(fields, schemaField(se))
					}
				}
			case errors.As(re.Err, &se):
				status = http.StatusUnprocessableEntity
				fields = append(fields, schemaField(se))
			default:
				fields = append(fields, ProblemField{Field: "body", Reason: reasonOf(re)})
			}
		default:
			fields = append(fields, ProblemField{Field: "request", Reason: reasonOf(re)})
		}
	}
	if len(fields) == 0 {
		fields = []ProblemField{{Field: "request", Reason: err.Error()}}
	}
	details := make([]string, len(fields))
	for i, f := range fields {
		details[i] = f.Field + ": " + f.Reason
	}
	entity := "request"
	p := &problemError{status: status, p: Problem{Code: harmonia.CodeInvalid, Entity: entity, Field: fields[0].Field,
		Detail: strings.Join(details, "; "), Errors: fields}}
	return p
}

func reasonOf(re *openapi3filter.RequestError) string {
	if re.Err != nil {
		var se *openapi3.SchemaError
		if errors.As(re.Err, &se) {
			return se.Reason
		}
		var pe *openapi3filter.ParseError
		if errors.As(re.Err, &pe) {
			return pe.Error()
		}
		return re.Err.Error()
	}
	return re.Reason
}

// schemaField names the body field a schema error is about, as a dotted
// path ("hashes.sha256"; "body" for the whole body).
func schemaField(se *openapi3.SchemaError) ProblemField {
	path := se.JSONPointer()
	f := strings.Join(path, ".")
	if f == "" {
		f = "body"
	}
	return ProblemField{Field: f, Reason: se.Reason}
}

// fail answers err as a problem document. Internal errors are logged
// with their cause and answered without it.
func (h *Handler) fail(c *call, err error) {
	if errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() != nil {
		err = newProblem(http.StatusServiceUnavailable, CodeTimeout, "request", "", "the request did not finish within %s", h.opts.Timeout)
	}
	status, p, internal := problemOf(err, c.op != nil && c.op.body != nil)
	if internal {
		h.opts.Logger.Error("httpapi: request failed", "method", c.r.Method, "path", c.r.URL.Path, "err", causeText(err))
	}
	writeProblem(c.w, c.r, status, p)
}

// causeText is err's text with the cause of a harmonia internal error.
func causeText(err error) string {
	var he *harmonia.Error
	if errors.As(err, &he) && he.Err != nil {
		return err.Error() + ": " + he.Err.Error()
	}
	return err.Error()
}

// notFound answers a path no operation serves: 405 naming the allowed
// methods when the path exists with others, 404 otherwise.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := h.mux.Handler(r2); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, r, http.StatusMethodNotAllowed, Problem{Code: CodeNotAllowed, Entity: "request",
			Detail: fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))})
		return
	}
	writeProblem(w, r, http.StatusNotFound, Problem{Code: harmonia.CodeNotFound, Entity: "request",
		Detail: fmt.Sprintf("no operation at %s (the API is described at %s)", r.URL.Path, OpenAPIPath)})
}

// nextLink sets the Link header of a list page whose next cursor is
// next, keeping the request's other query parameters. The target is a
// query-only reference, resolved against the request's URL, so that it
// stays right behind a path prefix (http.StripPrefix).
func nextLink(c *call, name, next string) {
	if next == "" {
		return
	}
	q := c.r.URL.Query()
	q.Set(name, next)
	c.w.Header().Set("Link", fmt.Sprintf("<?%s>; rel=\"next\"", q.Encode()))
}
