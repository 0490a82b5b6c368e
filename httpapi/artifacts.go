package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// ArtifactContent is what a client says of an artifact: the body of
// PUT /artifacts/{name}/{version}, and with the name and version, of
// POST /artifacts. created_by is the caller's identity, never the body's.
type ArtifactContent struct {
	Path       string          `json:"path" validate:"max=4096" doc:"where the file lives: s3://bucket/key, another allowed URI, or a clean local path"`
	SizeBytes  int64           `json:"size_bytes" validate:"gte=0"`
	Hashes     harmonia.Hashes `json:"hashes,omitzero"`
	LicenseID  bson.ObjectID   `json:"license_id,omitzero"`
	DatasetIDs []bson.ObjectID `json:"dataset_ids,omitempty" validate:"max=1000"`
	Tags       []string        `json:"tags,omitempty" validate:"max=64"`
	Notes      string          `json:"notes,omitempty" validate:"max=10000"`
}

// ArtifactInput is the body of POST /artifacts: the artifact's natural
// key and its content.
type ArtifactInput struct {
	Name    string `json:"name" validate:"max=200"`
	Version string `json:"version" validate:"max=100"`
	ArtifactContent
}

func (c *ArtifactContent) artifact(name, version string) *harmonia.ModelArtifact {
	return &harmonia.ModelArtifact{Name: name, Version: version, Path: c.Path, SizeBytes: c.SizeBytes, Hashes: c.Hashes,
		LicenseID: c.LicenseID, DatasetIDs: c.DatasetIDs, Tags: c.Tags, Notes: c.Notes}
}

// ArtifactPatch is the body of PATCH /artifacts/{id}: absent fields stay
// as they are. path, size_bytes and sha256 are refused (409) once the
// artifact is published.
type ArtifactPatch struct {
	Path       *string          `json:"path,omitempty" validate:"max=4096"`
	SizeBytes  *int64           `json:"size_bytes,omitempty" validate:"gte=0"`
	SHA256     *string          `json:"sha256,omitempty"`
	LicenseID  *bson.ObjectID   `json:"license_id,omitempty"`
	DatasetIDs *[]bson.ObjectID `json:"dataset_ids,omitempty"`
	Tags       *[]string        `json:"tags,omitempty"`
	Notes      *string          `json:"notes,omitempty" validate:"max=10000"`
}

// ArtifactPage is one page of GET /artifacts.
type ArtifactPage struct {
	Items []*harmonia.ModelArtifact `json:"items"`
	// Next is the cursor of the next page (the after parameter), absent
	// on the last page.
	Next string `json:"next,omitempty"`
}

// entityFilterParams are the query parameters of the artifact and
// dataset lists.
func entityFilterParams() []param {
	return []param{
		queryString("name_prefix", "entries whose name starts with it"),
		queryString("name", "entries with exactly this name"),
		queryStrings("tag", "entries with at least one of these tags (repeatable)"),
		queryStrings("tag_all", "entries with every one of these tags (repeatable)"),
		queryID("license_id", "entries under this license"),
		queryBool("published", "published (true) or unpublished (false) entries"),
		queryTime("created_from", "created at or after (RFC 3339)"),
		queryTime("created_before", "created before (RFC 3339)"),
		afterParam(), limitParam(),
	}
}

// entityFilter reads the (validated) query of an artifact or dataset list.
func entityFilter(c *call) harmonia.ArtifactFilter {
	q := c.r.URL.Query()
	f := harmonia.ArtifactFilter{NamePrefix: q.Get("name_prefix"), Name: q.Get("name"), TagsAny: q["tag"], TagsAll: q["tag_all"],
		After: queryObjectID(c, "after"), Limit: queryInt(c, "limit")}
	if id := queryObjectID(c, "license_id"); !id.IsZero() {
		f.LicenseID = &id
	}
	if v := q.Get("published"); v != "" {
		b, _ := strconv.ParseBool(v)
		f.Published = &b
	}
	f.CreatedFrom, f.CreatedBefore = queryTimePtr(c, "created_from"), queryTimePtr(c, "created_before")
	return f
}

// Query readers for parameters the OpenAPI validation has checked.
func queryObjectID(c *call, name string) bson.ObjectID {
	id, _ := bson.ObjectIDFromHex(c.r.URL.Query().Get(name))
	return id
}

func queryInt(c *call, name string) int {
	n, _ := strconv.Atoi(c.r.URL.Query().Get(name))
	return n
}

func queryTimePtr(c *call, name string) *time.Time {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil
	}
	return &t
}

func pathID(c *call, name string) bson.ObjectID {
	id, _ := bson.ObjectIDFromHex(c.r.PathValue(name))
	return id
}

func cursor(id bson.ObjectID) string {
	if id.IsZero() {
		return ""
	}
	return id.Hex()
}

func (h *Handler) artifactOperations() []*operation {
	return []*operation{
		{method: "GET", path: "/artifacts", id: "listArtifacts", tag: "artifacts", scope: ScopeRead,
			summary: "List artifacts, in id order, one page at a time", params: entityFilterParams(),
			ok: http.StatusOK, out: &ArtifactPage{}, link: true, run: func(c *call) error {
				page, err := h.store.ListArtifacts(c.ctx, entityFilter(c))
				if err != nil {
					return err
				}
				nextLink(c, "after", cursor(page.Next))
				return c.reply(http.StatusOK, &ArtifactPage{Items: nonNil(page.Items), Next: cursor(page.Next)})
			}},
		{method: "POST", path: "/artifacts", id: "createArtifact", tag: "artifacts", scope: ScopeWrite,
			summary: "Register an artifact; created_by is the caller", body: &ArtifactInput{},
			ok: http.StatusCreated, out: &harmonia.ModelArtifact{}, errs: []int{http.StatusConflict}, run: func(c *call) error {
				var in ArtifactInput
				if err := c.decode(&in); err != nil {
					return err
				}
				a := in.ArtifactContent.artifact(in.Name, in.Version)
				a.CreatedBy = by(c.id)
				if err := h.store.CreateArtifact(c.ctx, a); err != nil {
					return err
				}
				return c.reply(http.StatusCreated, a)
			}},
		{method: "GET", path: "/artifacts/{id}", id: "getArtifact", tag: "artifacts", scope: ScopeRead,
			summary: "Get an artifact by id", params: []param{idParam("id", "the artifact's id")},
			ok: http.StatusOK, out: &harmonia.ModelArtifact{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				a, err := h.store.GetArtifact(c.ctx, pathID(c, "id"))
				return answer(c, http.StatusOK, a, err)
			}},
		{method: "PATCH", path: "/artifacts/{id}", id: "updateArtifact", tag: "artifacts", scope: ScopeWrite,
			summary: "Change an artifact's fields; content fields only while unpublished", params: []param{idParam("id", "the artifact's id")},
			body: &ArtifactPatch{}, ok: http.StatusOK, out: &harmonia.ModelArtifact{}, errs: []int{http.StatusNotFound, http.StatusConflict},
			run: func(c *call) error {
				var p ArtifactPatch
				if err := c.decode(&p); err != nil {
					return err
				}
				a, err := h.store.UpdateArtifact(c.ctx, pathID(c, "id"), harmonia.ArtifactUpdate{Path: p.Path, SizeBytes: p.SizeBytes,
					SHA256: p.SHA256, LicenseID: p.LicenseID, DatasetIDs: p.DatasetIDs, Tags: p.Tags, Notes: p.Notes})
				if err != nil {
					return err
				}
				return c.reply(http.StatusOK, a)
			}},
		{method: "GET", path: "/artifacts/{name}/{version}", id: "getArtifactByKey", tag: "artifacts", scope: ScopeRead,
			summary: "Get an artifact by its natural key", params: keyParams("artifact"),
			ok: http.StatusOK, out: &harmonia.ModelArtifact{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				a, err := h.store.GetArtifactByKey(c.ctx, c.r.PathValue("name"), c.r.PathValue("version"))
				return answer(c, http.StatusOK, a, err)
			}},
		{method: "PUT", path: "/artifacts/{name}/{version}", id: "ensureArtifact", tag: "artifacts", scope: ScopeWrite,
			summary:     "Get or create an artifact by its natural key",
			description: "201 when it was created, 200 when it existed with the same content (sha256, size, path, license, datasets); 409 naming the first field that differs otherwise.",
			params:      keyParams("artifact"), body: &ArtifactContent{}, ok: http.StatusCreated, also: []int{http.StatusOK},
			out: &harmonia.ModelArtifact{}, errs: []int{http.StatusConflict}, run: func(c *call) error {
				var in ArtifactContent
				if err := c.decode(&in); err != nil {
					return err
				}
				a := in.artifact(c.r.PathValue("name"), c.r.PathValue("version"))
				a.CreatedBy = by(c.id)
				outcome, err := h.store.GetOrCreateArtifact(c.ctx, a)
				if err != nil {
					return err
				}
				return c.reply(outcomeStatus(outcome), a)
			}},
	}
}

// keyParams are the path parameters of a natural key.
func keyParams(what string) []param {
	return []param{pathParam("name", "the "+what+"'s name"), pathParam("version", "the "+what+"'s version")}
}

// outcomeStatus is the status of a get-or-create: 201 created, 200
// unchanged.
func outcomeStatus(o harmonia.Outcome) int {
	if o == harmonia.Created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// nonNil returns s, or an empty slice for nil, so lists encode as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
