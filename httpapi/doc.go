// Package httpapi is harmonia's HTTP API: an http.Handler over a
// [harmonia.Store] that a Go service mounts, and that `harmonia serve`
// runs, so that programs in any language (training pipelines in Python,
// deploy jobs in shell) register artifacts, publish versions, follow
// aliases and queue jobs.
//
//	h, err := httpapi.New(store, &httpapi.Options{Authorizer: auth})
//	mux.Handle("/inventory/", http.StripPrefix("/inventory", h))
//	srv.RegisterOnShutdown(h.Close) // ends alias watch streams on Shutdown
//
// # Routes
//
// Licenses, artifacts and datasets: GET and POST /licenses, /artifacts,
// /datasets (lists take the Store's filters and a cursor); GET and PATCH
// /{kind}/{id}; GET and PUT (get-or-create: 201 created, 200 unchanged,
// 409 naming the field that differs) /artifacts/{name}/{version},
// /datasets/{name}/{version} and /licenses/spdx/{spdx_id}.
// Versions: GET /versions (newest first), POST /versions (publish),
// GET /versions/{tag}, /versions/{tag}/contents, /versions/{tag}/verify,
// /versions/{tag}/diff/{to}. Aliases: GET /aliases, GET, PUT and DELETE
// /aliases/{name}, GET /aliases/{name}/history and /aliases/{name}/watch
// (Server-Sent Events). Jobs: GET and POST /jobs, GET /jobs/{id},
// POST /jobs/{id}/cancel, GET /jobs/{id}/log. The inventory check
// ([harmonia.Store.Check]): GET /check reports the problems found, POST
// /check/repair repairs what it can; both answer 200 with a
// [CheckResult] that lists at most limit problems and counts the rest.
// The OpenAPI document is at [OpenAPIPath]; it is also checked in as
// httpapi/openapi.json.
//
// # The OpenAPI document, and why kin-openapi
//
// The document is OpenAPI 3.1, generated when the handler is built from
// the same Go types the handler encodes and decodes (harmonia's entities
// and this package's inputs and pages), with
// github.com/getkin/kin-openapi's openapi3gen; a schema customizer
// carries what the types say into it: ObjectIDs are 24-hex strings,
// fields without omitempty are required, no unknown field is allowed,
// validate tags' max and gte become maxLength, maxItems and minimum.
// Every request is checked against it with kin-openapi's openapi3filter
// (JSON Schema 2020-12 for a 3.1 document) before the Store sees it, and
// the tests check every response against the document the handler
// serves. kin-openapi was chosen over github.com/danielgtaylor/huma/v2,
// which the issue suggested: kin-openapi v0.153.0 emits and validates
// OpenAPI 3.1, is an approved release on this project's module proxy
// (huma v2.37.2 is served from an earlier, unapproved copy), and leaves
// the routing, the problem documents and the streaming to net/http, which
// this package needs to control (ETags, 304, 412, SSE) anyway.
//
// # Errors
//
// Every error is an RFC 9457 problem document (application/problem+json,
// [Problem]) carrying harmonia's code, entity and field, and every broken
// rule of an invalid input: 400 for a bad parameter, header or a body
// that is not JSON; 422 for a body that breaks its schema or the Store's
// rules; 404 not found; 409 conflict (a duplicate, a change to published
// content, a finished job); 412 for a failed compare-and-set; 401, 403,
// 405, 413, 414, 415; 503 when a request runs past [Options.Timeout];
// 500 for internal errors, whose cause is logged and not answered.
//
// # HTTP semantics
//
// A published version never changes: GET /versions/{tag} answers with its
// content digest as a strong ETag and Cache-Control "immutable", and the
// handler keeps the encoded answers of recent versions in memory
// ([Options.VersionCache]). An alias's ETag is its move's sequence number:
// If-None-Match answers 304, and a move (PUT, DELETE) with If-Match is a
// compare-and-set: the handler compares the tag, then moves the alias only
// if its move number is still the one read with it (the Store's own
// compare-and-set, [harmonia.SetAliasOpts].ExpectSeq), so a move in
// between, even one away and back, also fails with 412. If-None-Match:
// * creates an alias only if it does not exist. Lists answer
// {"items": […], "next": "<cursor>"} and a Link header (rel="next", a
// query-only reference, so it works behind a prefix). Bodies, query strings
// and the server-side work of each request have limits ([Options]).
//
// The watch sends a "current" event (the alias's last move), then a
// "move" event per move, each once and in order, with the move's
// sequence number as the event id; a client that reconnects with
// Last-Event-ID gets exactly the moves after it. It polls the Store
// ([harmonia.Store.WatchAlias]) and sends comments while idle.
//
// # Who may do what
//
// An [Authorizer] says who sends a request; [TokenAuthorizer] is the
// built-in one over bearer tokens with scopes: read (every GET), write
// (create and update licenses, artifacts, datasets; enqueue jobs),
// publish (publish versions, move and delete aliases) and admin (every
// scope; cancel jobs, repair the inventory). Tokens are kept as SHA-256
// digests, compared in constant time and never logged. Without an
// authorizer the handler serves reads only: every write answers 401 with
// a problem document (the routes stay in the document). created_by, published_by and an
// alias move's by are the identity's name, never the body's: the
// document refuses those fields in a body.
package httpapi
