package httpapi

import (
	"net/http"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// DatasetContent is what a client says of a dataset: the body of
// PUT /datasets/{name}/{version}, and with the name and version, of
// POST /datasets. created_by is the caller's identity.
type DatasetContent struct {
	Path      string          `json:"path" validate:"max=4096"`
	SizeBytes int64           `json:"size_bytes" validate:"gte=0"`
	Hashes    harmonia.Hashes `json:"hashes,omitzero"`
	LicenseID bson.ObjectID   `json:"license_id,omitzero"`
	Tags      []string        `json:"tags,omitempty" validate:"max=64"`
	Notes     string          `json:"notes,omitempty" validate:"max=10000"`
}

// DatasetInput is the body of POST /datasets.
type DatasetInput struct {
	Name    string `json:"name" validate:"max=200"`
	Version string `json:"version" validate:"max=100"`
	DatasetContent
}

func (c *DatasetContent) dataset(name, version string) *harmonia.Dataset {
	return &harmonia.Dataset{Name: name, Version: version, Path: c.Path, SizeBytes: c.SizeBytes, Hashes: c.Hashes,
		LicenseID: c.LicenseID, Tags: c.Tags, Notes: c.Notes}
}

// DatasetPatch is the body of PATCH /datasets/{id}: absent fields stay as
// they are; path, size_bytes and sha256 are refused once published.
type DatasetPatch struct {
	Path      *string        `json:"path,omitempty" validate:"max=4096"`
	SizeBytes *int64         `json:"size_bytes,omitempty" validate:"gte=0"`
	SHA256    *string        `json:"sha256,omitempty"`
	LicenseID *bson.ObjectID `json:"license_id,omitempty"`
	Tags      *[]string      `json:"tags,omitempty"`
	Notes     *string        `json:"notes,omitempty" validate:"max=10000"`
}

// DatasetPage is one page of GET /datasets.
type DatasetPage struct {
	Items []*harmonia.Dataset `json:"items"`
	// Next is the cursor of the next page, absent on the last.
	Next string `json:"next,omitempty"`
}

func (h *Handler) datasetOperations() []*operation {
	return []*operation{
		{method: "GET", path: "/datasets", id: "listDatasets", tag: "datasets", scope: ScopeRead,
			summary: "List datasets, in id order, one page at a time", params: entityFilterParams(),
			ok: http.StatusOK, out: &DatasetPage{}, link: true, run: func(c *call) error {
				page, err := h.store.ListDatasets(c.ctx, harmonia.DatasetFilter(entityFilter(c)))
				if err != nil {
					return err
				}
				nextLink(c, "after", cursor(page.Next))
				return c.reply(http.StatusOK, &DatasetPage{Items: nonNil(page.Items), Next: cursor(page.Next)})
			}},
		{method: "POST", path: "/datasets", id: "createDataset", tag: "datasets", scope: ScopeWrite,
			summary: "Register a dataset; created_by is the caller", body: &DatasetInput{},
			ok: http.StatusCreated, out: &harmonia.Dataset{}, errs: []int{http.StatusConflict}, run: func(c *call) error {
				var in DatasetInput
				if err := c.decode(&in); err != nil {
					return err
				}
				d := in.dataset(in.Name, in.Version)
				d.CreatedBy = by(c.id)
				if err := h.store.CreateDataset(c.ctx, d); err != nil {
					return err
				}
				return c.reply(http.StatusCreated, d)
			}},
		{method: "GET", path: "/datasets/{id}", id: "getDataset", tag: "datasets", scope: ScopeRead,
			summary: "Get a dataset by id", params: []param{idParam("id", "the dataset's id")},
			ok: http.StatusOK, out: &harmonia.Dataset{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				d, err := h.store.GetDataset(c.ctx, pathID(c, "id"))
				return answer(c, http.StatusOK, d, err)
			}},
		{method: "PATCH", path: "/datasets/{id}", id: "updateDataset", tag: "datasets", scope: ScopeWrite,
			summary: "Change a dataset's fields; content fields only while unpublished", params: []param{idParam("id", "the dataset's id")},
			body: &DatasetPatch{}, ok: http.StatusOK, out: &harmonia.Dataset{}, errs: []int{http.StatusNotFound, http.StatusConflict},
			run: func(c *call) error {
				var p DatasetPatch
				if err := c.decode(&p); err != nil {
					return err
				}
				d, err := h.store.UpdateDataset(c.ctx, pathID(c, "id"), harmonia.DatasetUpdate{Path: p.Path, SizeBytes: p.SizeBytes,
					SHA256: p.SHA256, LicenseID: p.LicenseID, Tags: p.Tags, Notes: p.Notes})
				if err != nil {
					return err
				}
				return c.reply(http.StatusOK, d)
			}},
		{method: "GET", path: "/datasets/{name}/{version}", id: "getDatasetByKey", tag: "datasets", scope: ScopeRead,
			summary: "Get a dataset by its natural key", params: keyParams("dataset"),
			ok: http.StatusOK, out: &harmonia.Dataset{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				d, err := h.store.GetDatasetByKey(c.ctx, c.r.PathValue("name"), c.r.PathValue("version"))
				return answer(c, http.StatusOK, d, err)
			}},
		{method: "PUT", path: "/datasets/{name}/{version}", id: "ensureDataset", tag: "datasets", scope: ScopeWrite,
			summary:     "Get or create a dataset by its natural key",
			description: "201 when it was created, 200 when it existed with the same content; 409 naming the first field that differs otherwise.",
			params:      keyParams("dataset"), body: &DatasetContent{}, ok: http.StatusCreated, also: []int{http.StatusOK},
			out: &harmonia.Dataset{}, errs: []int{http.StatusConflict}, run: func(c *call) error {
				var in DatasetContent
				if err := c.decode(&in); err != nil {
					return err
				}
				d := in.dataset(c.r.PathValue("name"), c.r.PathValue("version"))
				d.CreatedBy = by(c.id)
				outcome, err := h.store.GetOrCreateDataset(c.ctx, d)
				if err != nil {
					return err
				}
				return c.reply(outcomeStatus(outcome), d)
			}},
	}
}
