package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/harmonia-ml/harmonia"
)

// ProblemTypeBase prefixes the type URI of every problem document the
// handler writes; the code follows it ("urn:harmonia:problem:not_found").
const ProblemTypeBase = "urn:harmonia:problem:"

// Problem codes the handler adds to harmonia's own ([harmonia.Code]) for
// what only HTTP can get wrong.
const (
	// CodeUnauthorized: the request carries no credentials, or credentials
	// the authorizer refused, or it writes and no authorizer is
	// configured. Status 401.
	CodeUnauthorized harmonia.Code = "unauthorized"
	// CodeForbidden: the identity lacks the scope the operation needs, or
	// the handler is read-only. Status 403.
	CodeForbidden harmonia.Code = "forbidden"
	// CodePreconditionFailed: an If-Match or If-None-Match precondition
	// does not hold; for an alias, someone else moved it first. Status 412.
	CodePreconditionFailed harmonia.Code = "precondition_failed"
	// CodeTooLarge: the body or the query string exceeds its limit.
	// Status 413 (body) or 414 (query string).
	CodeTooLarge harmonia.Code = "too_large"
	// CodeTimeout: the server-side call did not finish within the
	// request timeout. Status 503.
	CodeTimeout harmonia.Code = "timeout"
	// CodeUnsupportedMedia: the body is not JSON. Status 415.
	CodeUnsupportedMedia harmonia.Code = "unsupported_media_type"
	// CodeNotAllowed: the path exists but not with this method.
	// Status 405.
	CodeNotAllowed harmonia.Code = "method_not_allowed"
)

// Problem is an RFC 9457 problem document ("application/problem+json")
// extended with harmonia's error code and the entity and field it names.
// Every error response of the handler is one.
type Problem struct {
	// Type is a URI naming the kind of problem: ProblemTypeBase and Code.
	Type string `json:"type"`
	// Title is a short, fixed summary of the kind of problem.
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence: harmonia's error text.
	Detail string `json:"detail,omitempty"`
	// Instance is the request path the problem occurred on.
	Instance string `json:"instance,omitempty"`
	// Code is harmonia's error code ("invalid", "not_found", "conflict",
	// "internal") or one of the handler's (CodeUnauthorized, …).
	Code harmonia.Code `json:"code"`
	// Entity names the kind of entity concerned ("model_artifact",
	// "alias", "request", …), when one is.
	Entity string `json:"entity,omitempty"`
	// Field names the field concerned, as stored ("hashes.sha256"), or
	// the request part ("body", "limit", "If-Match").
	Field string `json:"field,omitempty"`
	// Errors lists every broken rule of an invalid input.
	Errors []ProblemField `json:"errors,omitempty"`
}

// ProblemField is one broken rule of an invalid input.
type ProblemField struct {
	// Field is the field's document path or the request part.
	Field string `json:"field"`
	// Reason says why it was refused.
	Reason string `json:"reason"`
}

// problemError is an error the handler itself raises, with its status.
type problemError struct {
	status int
	p      Problem
}

func (e *problemError) Error() string { return e.p.Detail }

// newProblem returns a problem error with the status, code, field and
// formatted detail.
func newProblem(status int, code harmonia.Code, entity, field, format string, args ...any) *problemError {
	return &problemError{status: status, p: Problem{Code: code, Entity: entity, Field: field, Detail: fmt.Sprintf(format, args...)}}
}

// badRequest is a 400 problem about a request part (a path or query
// parameter, a header, a body that is not JSON).
func badRequest(field, format string, args ...any) *problemError {
	e := newProblem(http.StatusBadRequest, harmonia.CodeInvalid, "request", field, format, args...)
	e.p.Errors = []ProblemField{{Field: field, Reason: e.p.Detail}}
	return e
}

// problemOf maps err to its status and problem document. hasBody says
// whether the request carried an entity: harmonia's invalid errors are
// then 422 (the entity breaks a rule), else 400 (a parameter does).
func problemOf(err error, hasBody bool) (int, Problem, bool) {
	var pe *problemError
	if errors.As(err, &pe) {
		return pe.status, pe.p, false
	}
	var he *harmonia.Error
	if !errors.As(err, &he) || he.Code == harmonia.CodeInternal || he.Code == "" {
		return http.StatusInternalServerError, Problem{Code: harmonia.CodeInternal, Detail: "internal error"}, true
	}
	p := Problem{Code: he.Code, Entity: he.Entity, Field: he.Field, Detail: he.Error()}
	for _, f := range he.Fields {
		p.Errors = append(p.Errors, ProblemField{Field: f.Field, Reason: f.Reason})
	}
	switch {
	case errors.Is(err, harmonia.ErrAliasMoved):
		p.Code = CodePreconditionFailed
		return http.StatusPreconditionFailed, p, false
	case he.Code == harmonia.CodeNotFound:
		return http.StatusNotFound, p, false
	case he.Code == harmonia.CodeConflict:
		return http.StatusConflict, p, false
	case hasBody:
		return http.StatusUnprocessableEntity, p, false
	}
	return http.StatusBadRequest, p, false
}

// writeProblem writes p with status as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, p Problem) {
	p.Status = status
	p.Type = ProblemTypeBase + string(p.Code)
	p.Title = http.StatusText(status)
	p.Instance = r.URL.Path
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="harmonia"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}
