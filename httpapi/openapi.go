package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/getkin/kin-openapi/routers"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// APIVersion is the version of the HTTP API in the OpenAPI document's
// info; it changes when a route or a type changes incompatibly.
const APIVersion = "1.0.0"

var (
	objectIDType = reflect.TypeFor[bson.ObjectID]()
	rawJSONType  = reflect.TypeFor[json.RawMessage]()
	timeType     = reflect.TypeFor[time.Time]()
)

// enums lists the values of the string types that have a fixed set.
var enums = map[reflect.Type][]any{
	reflect.TypeFor[harmonia.VersionState](): {string(harmonia.VersionPending), string(harmonia.VersionPublished)},
	reflect.TypeFor[harmonia.JobStatus](): {string(harmonia.JobPending), string(harmonia.JobRunning), string(harmonia.JobSuccess),
		string(harmonia.JobFailed), string(harmonia.JobCancelled)},
	reflect.TypeFor[harmonia.LogLevel](): {string(harmonia.LevelDebug), string(harmonia.LevelInfo), string(harmonia.LevelWarn), string(harmonia.LevelError)},
	reflect.TypeFor[harmonia.Outcome]():  {string(harmonia.Created), string(harmonia.Unchanged)},
	reflect.TypeFor[harmonia.ProblemKind](): {string(harmonia.ProblemUnmarked), string(harmonia.ProblemDanglingMark),
		string(harmonia.ProblemDigest), string(harmonia.ProblemManifest), string(harmonia.ProblemMissingReference),
		string(harmonia.ProblemStalePublish), string(harmonia.ProblemStaleLease), string(harmonia.ProblemSchemaVersion)},
}

// objectIDSchema is how an ObjectID travels: 24 lowercase hex digits.
func objectIDSchema() *openapi3.Schema {
	return &openapi3.Schema{Type: &openapi3.Types{"string"}, Pattern: "^[0-9a-f]{24}$", Description: "an ObjectID, 24 hex digits"}
}

// customize completes the schemas openapi3gen derives from the Go
// types, so that the document says what the JSON encoding does and what
// the validate tags demand:
//   - ObjectIDs are hex strings, time.Time RFC 3339 strings, json.RawMessage
//     any JSON value;
//   - a struct's properties are required unless their json tag says
//     omitempty or omitzero or they are pointers, and no others are
//     allowed (a body cannot smuggle created_by);
//   - a slice or map without omitempty may be null (Go encodes a nil one
//     so); a pointer may be null;
//   - validate's max=N bounds a string's length or a slice's items and
//     gte=N a number (the Store checks every rule again);
//   - string types with a fixed set of values list them.
func customize(name string, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
	switch {
	case t == objectIDType:
		*s = *objectIDSchema()
		return nil // an id's form is fixed: the field's rules bound the slice holding it
	case t == rawJSONType:
		*s = openapi3.Schema{Description: "any JSON value"}
		return nil
	}
	if e, ok := enums[t]; ok {
		s.Enum = e
	}
	if t.Kind() == reflect.Struct && t != timeType && s.Properties != nil {
		s.Required = requiredFields(t)
		s.AdditionalProperties = openapi3.AdditionalProperties{Has: new(false)}
	}
	jsonTag := tag.Get("json")
	if (t.Kind() == reflect.Slice || t.Kind() == reflect.Map) && t != rawJSONType && name != "_root" &&
		!strings.Contains(jsonTag, "omitempty") && !strings.Contains(jsonTag, "omitzero") {
		s.Nullable = true
	}
	if s.Nullable && s.Type != nil {
		s.Type = &openapi3.Types{(*s.Type)[0], "null"}
	}
	s.Nullable = false
	applyRules(tag.Get("validate"), s)
	if d := tag.Get("doc"); d != "" {
		s.Description = d
	}
	return nil
}

// requiredFields lists the json names of t's fields that are always
// present in its encoding.
func requiredFields(t reflect.Type) []string {
	var out []string
	for _, f := range reflect.VisibleFields(t) {
		tag, ok := f.Tag.Lookup("json")
		if !ok || tag == "-" || !f.IsExported() || f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") || f.Type.Kind() == reflect.Pointer {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// applyRules carries the validate tag's bounds into the schema: the
// rules before "dive" apply to the field itself.
func applyRules(rules string, s *openapi3.Schema) {
	rules, _, _ = strings.Cut(rules, ",dive")
	if s.Type == nil {
		return
	}
	for _, r := range strings.Split(rules, ",") {
		key, val, _ := strings.Cut(r, "=")
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			continue
		}
		switch {
		case key == "max" && s.Type.Includes("string"):
			s.MaxLength = &n
		case key == "max" && s.Type.Includes("array"):
			s.MaxItems = &n
		case key == "gte" && (s.Type.Includes("integer") || s.Type.Includes("number")):
			f := float64(n)
			s.Min = &f
		}
	}
}

// buildDocument generates the OpenAPI 3.1 document of the operations
// from their Go types, and binds each operation to its route in it for
// request validation.
func buildDocument(ops []*operation) (*openapi3.T, error) {
	doc := &openapi3.T{
		OpenAPI: "3.1.0",
		Info: &openapi3.Info{Title: "harmonia", Version: APIVersion,
			Description: "The HTTP API of a harmonia model inventory: licenses, artifacts, datasets, immutable published " +
				"versions, aliases and the job queue. Errors are RFC 9457 problem documents (application/problem+json) " +
				"carrying harmonia's code, entity and field.",
			License: &openapi3.License{Name: "harmonia's license"}},
		JSONSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
		Paths:             openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas:   openapi3.Schemas{},
			Responses: openapi3.ResponseBodies{},
			SecuritySchemes: openapi3.SecuritySchemes{"bearer": &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
				Type: "http", Scheme: "bearer",
				Description: "A bearer token; its scopes (read, write, publish, admin) decide what it may do. " +
					"Without an authorizer configured the server serves reads only and answers every write 401."}}},
		},
	}
	gen := openapi3gen.NewGenerator(openapi3gen.SchemaCustomizer(customize),
		openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{ExportComponentSchemas: true, ExportTopLevelSchema: true}))
	schema := func(v any) (*openapi3.SchemaRef, error) {
		return gen.NewSchemaRefForValue(v, doc.Components.Schemas)
	}
	problem, err := schema(&Problem{})
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		o := &openapi3.Operation{OperationID: op.id, Summary: op.summary, Description: op.description, Tags: []string{op.tag},
			Responses: openapi3.NewResponses(), Extensions: map[string]any{"x-harmonia-scope": string(op.scope)}}
		if op.scope != ScopeRead {
			o.Security = &openapi3.SecurityRequirements{{"bearer": {string(op.scope)}}}
		} else {
			o.Security = &openapi3.SecurityRequirements{{}, {"bearer": {string(op.scope)}}}
		}
		for _, p := range append(slices.Clone(op.params), op.headers...) {
			o.Parameters = append(o.Parameters, &openapi3.ParameterRef{Value: &openapi3.Parameter{
				Name: p.name, In: p.in, Description: p.desc, Required: p.required || p.in == openapi3.ParameterInPath,
				Schema: p.schema.NewRef()}})
		}
		if op.body != nil {
			ref, err := schema(op.body)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op.id, err)
			}
			o.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
		}
		var ok *openapi3.Response
		switch {
		case op.stream:
			ok = openapi3.NewResponse().WithDescription("A Server-Sent Events stream").
				WithContent(openapi3.NewContentWithSchema(openapi3.NewStringSchema(), []string{"text/event-stream"}))
		case op.out != nil:
			ref, err := schema(op.out)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op.id, err)
			}
			ok = openapi3.NewResponse().WithDescription(http.StatusText(op.ok)).WithJSONSchemaRef(ref)
		default:
			ok = openapi3.NewResponse().WithDescription(http.StatusText(op.ok))
		}
		if op.etag {
			ok.Headers = openapi3.Headers{"ETag": &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
				Description: "The representation's strong entity tag", Schema: openapi3.NewStringSchema().NewRef()}}}}
		}
		if op.link {
			ok.Headers = openapi3.Headers{"Link": &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
				Description: `The next page, rel="next", when there is one`, Schema: openapi3.NewStringSchema().NewRef()}}}}
		}
		o.Responses.Set(strconv.Itoa(op.ok), &openapi3.ResponseRef{Value: ok})
		for _, st := range op.also {
			if st == http.StatusNotModified {
				o.Responses.Set("304", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("Not Modified: the If-None-Match tag is current")})
				continue
			}
			o.Responses.Set(strconv.Itoa(st), &openapi3.ResponseRef{Value: ok})
		}
		errs := []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestURITooLong,
			http.StatusInternalServerError, http.StatusServiceUnavailable}
		if op.body != nil {
			errs = append(errs, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity)
		}
		for _, st := range append(errs, op.errs...) {
			name := "Problem" + strconv.Itoa(st)
			if _, ok := doc.Components.Responses[name]; !ok {
				doc.Components.Responses[name] = &openapi3.ResponseRef{Value: openapi3.NewResponse().
					WithDescription(http.StatusText(st) + ": a problem document").
					WithContent(openapi3.NewContentWithSchemaRef(problem, []string{"application/problem+json"}))}
			}
			o.Responses.Set(strconv.Itoa(st), &openapi3.ResponseRef{Ref: "#/components/responses/" + name, Value: doc.Components.Responses[name].Value})
		}
		item := doc.Paths.Value(op.path)
		if item == nil {
			item = &openapi3.PathItem{}
			doc.Paths.Set(op.path, item)
		}
		item.SetOperation(op.method, o)
	}
	return doc, nil
}

// bindRoutes loads the encoded document back, with every reference
// resolved, and binds each operation to its route in it: requests are
// validated against exactly the document served.
func bindRoutes(raw []byte, ops []*operation) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		item := doc.Paths.Value(op.path)
		if item == nil || item.GetOperation(op.method) == nil {
			return nil, fmt.Errorf("%s %s is not in the document", op.method, op.path)
		}
		op.route = &routers.Route{Spec: doc, Path: op.path, PathItem: item, Method: op.method, Operation: item.GetOperation(op.method)}
	}
	return doc, nil
}

// Parameter schemas.
func stringParam(name, in, desc string) param {
	return param{name: name, in: in, desc: desc, schema: openapi3.NewStringSchema()}
}

func idParam(name, desc string) param {
	return param{name: name, in: openapi3.ParameterInPath, desc: desc, schema: objectIDSchema()}
}

func pathParam(name, desc string) param { return stringParam(name, openapi3.ParameterInPath, desc) }

func queryString(name, desc string) param { return stringParam(name, openapi3.ParameterInQuery, desc) }

func queryID(name, desc string) param {
	return param{name: name, in: openapi3.ParameterInQuery, desc: desc, schema: objectIDSchema()}
}

func queryBool(name, desc string) param {
	return param{name: name, in: openapi3.ParameterInQuery, desc: desc, schema: openapi3.NewBoolSchema()}
}

func queryTime(name, desc string) param {
	return param{name: name, in: openapi3.ParameterInQuery, desc: desc, schema: openapi3.NewDateTimeSchema()}
}

func queryStrings(name, desc string) param {
	return param{name: name, in: openapi3.ParameterInQuery, desc: desc, schema: openapi3.NewArraySchema().WithItems(openapi3.NewStringSchema())}
}

func limitParam() param {
	return param{name: "limit", in: openapi3.ParameterInQuery, desc: fmt.Sprintf("page size, 1 to %d (default %d)", harmonia.ListLimitMax, harmonia.ListLimitDefault),
		schema: openapi3.NewIntegerSchema().WithMin(1).WithMax(harmonia.ListLimitMax)}
}

func afterParam() param { return queryID("after", "the cursor: the next value of the previous page") }

func headerParam(name, desc string) param { return stringParam(name, openapi3.ParameterInHeader, desc) }
