package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
)

// CollectionAudit is the service's own collection: one record per publish,
// written in the same transaction as the version where the deployment has
// transactions.
const CollectionAudit = "service_audit"

// Service is the HTTP JSON API over a harmonia Store.
type Service struct {
	store *harmonia.Store
	audit *mongo.Collection
	log   *slog.Logger
}

// NewService returns the service over store, logging to log.
func NewService(store *harmonia.Store, log *slog.Logger) *Service {
	return &Service{store: store, audit: store.Database().Collection(CollectionAudit), log: log}
}

// Handler routes the service's endpoints with the standard library's router.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /artifacts", s.listArtifacts)
	mux.HandleFunc("GET /versions", s.listVersions)
	mux.HandleFunc("GET /versions/{tag}", s.showVersion)
	mux.HandleFunc("POST /versions", s.publish)
	mux.HandleFunc("POST /artifacts/{id}/validate", s.validate)
	mux.HandleFunc("GET /jobs/{id}", s.getJob)
	return mux
}

// listArtifacts answers GET /artifacts?tag=vision&name_prefix=res&limit=50&after=<id>.
func (s *Service) listArtifacts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := harmonia.ArtifactFilter{TagsAny: q["tag"], NamePrefix: q.Get("name_prefix")}
	var err error
	if f.Limit, f.After, err = pageParams(q); err != nil {
		s.fail(w, err)
		return
	}
	page, err := s.store.ListArtifacts(r.Context(), f)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"artifacts": page.Items, "next": nextCursor(page.Next)})
}

// listVersions answers GET /versions?limit=20&after=<id>, newest first.
func (s *Service) listVersions(w http.ResponseWriter, r *http.Request) {
	var f harmonia.VersionFilter
	var err error
	if f.Limit, f.After, err = pageParams(r.URL.Query()); err != nil {
		s.fail(w, err)
		return
	}
	page, err := s.store.ListVersions(r.Context(), f)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": page.Items, "next": nextCursor(page.Next)})
}

// pageParams reads a list's limit and after (the cursor) parameters.
func pageParams(q url.Values) (int, bson.ObjectID, error) {
	limit, err := intParam(q.Get("limit"))
	if err != nil {
		return 0, bson.NilObjectID, err
	}
	after, err := idParam("after", q.Get("after"), true)
	return limit, after, err
}

// showVersion answers GET /versions/{tag}: the version and its contents.
func (s *Service) showVersion(w http.ResponseWriter, r *http.Request) {
	c, err := s.store.VersionContentsByTag(r.Context(), r.PathValue("tag"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": c.Version, "artifacts": c.Artifacts, "datasets": c.Datasets})
}

// publishRequest is the body of POST /versions.
type publishRequest struct {
	VersionTag  string          `json:"version_tag"`
	Artifacts   []bson.ObjectID `json:"artifacts"`
	Datasets    []bson.ObjectID `json:"datasets"`
	PublishedBy string          `json:"published_by"`
	Notes       string          `json:"notes"`
}

// publish answers POST /versions: it publishes the version and writes the
// service's audit record in one transaction. On a deployment without
// transactions Publish stays atomic on its own (staged), and the audit
// record follows it.
func (s *Service) publish(w http.ResponseWriter, r *http.Request) {
	var body publishRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		s.fail(w, &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "request", Field: "body", Reason: err.Error()})
		return
	}
	req := harmonia.PublishRequest{VersionTag: body.VersionTag, ArtifactIDs: body.Artifacts, DatasetIDs: body.Datasets,
		PublishedBy: body.PublishedBy, Notes: body.Notes}
	var res *harmonia.PublishResult
	unit := func(ctx context.Context) error {
		var err error
		if res, err = s.store.Publish(ctx, req); err != nil {
			return err
		}
		if !res.Created {
			return nil // published before, and audited then
		}
		_, err = s.audit.InsertOne(ctx, bson.D{{Key: "action", Value: "publish"}, {Key: "version_id", Value: res.Version.ID},
			{Key: "version_tag", Value: res.Version.VersionTag}, {Key: "by", Value: req.PublishedBy}, {Key: "at", Value: time.Now()}})
		return err
	}
	var err error
	if s.store.Capabilities().Transactions {
		err = s.store.InTransaction(r.Context(), unit)
	} else {
		err = unit(r.Context())
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	status := http.StatusCreated
	if !res.Created {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string]any{"version": res.Version, "created": res.Created, "path": res.Path})
}

// validate answers POST /artifacts/{id}/validate: it enqueues a validate
// job for the artifact, which the service's worker runs.
func (s *Service) validate(w http.ResponseWriter, r *http.Request) {
	id, err := idParam("id", r.PathValue("id"), false)
	if err != nil {
		s.fail(w, err)
		return
	}
	if _, err := s.store.GetArtifact(r.Context(), id); err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.store.Queue().Enqueue(r.Context(), harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: id},
		&harmonia.EnqueueOpts{UniqueKey: "validate:" + id.Hex()})
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"job": res.Job, "duplicate": res.Duplicate})
}

// getJob answers GET /jobs/{id}.
func (s *Service) getJob(w http.ResponseWriter, r *http.Request) {
	id, err := idParam("id", r.PathValue("id"), false)
	if err != nil {
		s.fail(w, err)
		return
	}
	job, err := s.store.Queue().GetJob(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"job": job})
}

// errorBody is the JSON of a failed request: harmonia's error code, the
// entity, field and reason, and every broken rule of an invalid input.
type errorBody struct {
	Code   harmonia.Code         `json:"code"`
	Entity string                `json:"entity,omitempty"`
	Field  string                `json:"field,omitempty"`
	Reason string                `json:"reason"`
	Fields []harmonia.FieldError `json:"fields,omitempty"`
}

// statusOf maps harmonia's error codes to HTTP status codes.
var statusOf = map[harmonia.Code]int{
	harmonia.CodeInvalid:  http.StatusBadRequest,
	harmonia.CodeNotFound: http.StatusNotFound,
	harmonia.CodeConflict: http.StatusConflict,
}

// fail writes err as a JSON error. Internal errors are logged and answered
// without their details.
func (s *Service) fail(w http.ResponseWriter, err error) {
	code := harmonia.ErrorCode(err)
	status, ok := statusOf[code]
	body := errorBody{Code: code, Reason: "internal error"}
	var he *harmonia.Error
	if ok && errors.As(err, &he) {
		body = errorBody{Code: code, Entity: he.Entity, Field: he.Field, Reason: he.Reason, Fields: he.Fields}
	} else {
		status = http.StatusInternalServerError
		s.log.Error("request failed", "err", err)
	}
	writeJSON(w, status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// intParam parses an optional integer query parameter.
func intParam(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "request", Field: "limit", Reason: "must be a whole number"}
	}
	return n, nil
}

// idParam parses an ObjectID path or query parameter.
func idParam(name, s string, optional bool) (bson.ObjectID, error) {
	if s == "" && optional {
		return bson.NilObjectID, nil
	}
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		return id, &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "request", Field: name, Reason: "must be a 24-digit hex ObjectID"}
	}
	return id, nil
}

func nextCursor(id bson.ObjectID) string {
	if id.IsZero() {
		return ""
	}
	return id.Hex()
}
