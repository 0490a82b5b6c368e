package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// PublishInput is the body of POST /versions. published_by is the
// caller's identity, never the body's.
type PublishInput struct {
	VersionTag           string          `json:"version_tag" validate:"max=100"`
	ArtifactIDs          []bson.ObjectID `json:"artifact_ids,omitempty"`
	DatasetIDs           []bson.ObjectID `json:"dataset_ids,omitempty"`
	Notes                string          `json:"notes,omitempty" validate:"max=10000"`
	RequireCommercialUse bool            `json:"require_commercial_use,omitempty" doc:"refuse unless every license allows commercial use"`
}

// PublishOutput is the answer of POST /versions.
type PublishOutput struct {
	Version *harmonia.InventoryVersion `json:"version"`
	// Created is false when the same tag with the same contents existed.
	Created bool `json:"created"`
	// Path says how the publish ran: "transaction" or "staged".
	Path string `json:"path"`
}

// VersionPage is one page of GET /versions, newest first.
type VersionPage struct {
	Items []*harmonia.InventoryVersion `json:"items"`
	// Next is the cursor of the next page, absent on the last.
	Next string `json:"next,omitempty"`
}

// VersionContents is the answer of GET /versions/{tag}/contents: the
// version and its artifacts, datasets and their licenses as stored now.
type VersionContents struct {
	Version   *harmonia.InventoryVersion `json:"version"`
	Artifacts []*harmonia.ModelArtifact  `json:"artifacts"`
	Datasets  []*harmonia.Dataset        `json:"datasets"`
	Licenses  []*harmonia.License        `json:"licenses"`
}

// ItemChange is an artifact or dataset whose manifest entry differs.
type ItemChange struct {
	// Kind is "model_artifact" or "dataset".
	Kind string                `json:"kind"`
	From harmonia.ManifestItem `json:"from"`
	To   harmonia.ManifestItem `json:"to"`
}

// VersionDiff is the answer of GET /versions/{from}/diff/{to}.
type VersionDiff struct {
	From    string                  `json:"from"`
	To      string                  `json:"to"`
	Added   []harmonia.ManifestItem `json:"added"`
	Removed []harmonia.ManifestItem `json:"removed"`
	Changed []ItemChange            `json:"changed"`
}

// VerifyReport is the answer of GET /versions/{tag}/verify: whether the
// version's contents are still what its digest records.
type VerifyReport struct {
	VersionTag     string                  `json:"version_tag"`
	OK             bool                    `json:"ok"`
	StoredDigest   string                  `json:"stored_digest"`
	ManifestDigest string                  `json:"manifest_digest"`
	CurrentDigest  string                  `json:"current_digest"`
	Changed        []ItemChange            `json:"changed"`
	Missing        []harmonia.ManifestItem `json:"missing"`
}

func changes(in []harmonia.ItemChange) []ItemChange {
	out := make([]ItemChange, len(in))
	for i, c := range in {
		out[i] = ItemChange{Kind: c.Kind, From: c.From, To: c.To}
	}
	return out
}

// cachedVersion is a published version's encoded answer.
type cachedVersion struct {
	etag string
	body []byte
}

// versionETag is the strong entity tag of a published version: its
// content digest.
func versionETag(v *harmonia.InventoryVersion) string {
	if v.Digest == "" {
		return ""
	}
	return `"` + v.Digest + `"`
}

// immutable is the Cache-Control of a published version's answer.
const immutable = "public, max-age=31536000, immutable"

func (h *Handler) versionOperations() []*operation {
	tag := pathParam("tag", "the version's tag")
	return []*operation{
		{method: "GET", path: "/versions", id: "listVersions", tag: "versions", scope: ScopeRead,
			summary: "List published versions, newest first", params: []param{afterParam(), limitParam()},
			ok: http.StatusOK, out: &VersionPage{}, link: true, run: func(c *call) error {
				page, err := h.store.ListVersions(c.ctx, harmonia.VersionFilter{After: queryObjectID(c, "after"), Limit: queryInt(c, "limit")})
				if err != nil {
					return err
				}
				nextLink(c, "after", cursor(page.Next))
				return c.reply(http.StatusOK, &VersionPage{Items: nonNil(page.Items), Next: cursor(page.Next)})
			}},
		{method: "POST", path: "/versions", id: "publishVersion", tag: "versions", scope: ScopePublish,
			summary:     "Publish an immutable version; published_by is the caller",
			description: "201 when published, 200 when the same tag with the same contents existed; 409 when the tag holds other contents.",
			body:        &PublishInput{}, ok: http.StatusCreated, also: []int{http.StatusOK}, out: &PublishOutput{},
			errs: []int{http.StatusConflict}, run: func(c *call) error {
				var in PublishInput
				if err := c.decode(&in); err != nil {
					return err
				}
				res, err := h.store.Publish(c.ctx, harmonia.PublishRequest{VersionTag: in.VersionTag, ArtifactIDs: in.ArtifactIDs,
					DatasetIDs: in.DatasetIDs, PublishedBy: by(c.id), Notes: in.Notes, RequireCommercialUse: in.RequireCommercialUse})
				if err != nil {
					return err
				}
				status := http.StatusCreated
				if !res.Created {
					status = http.StatusOK
				}
				return c.reply(status, &PublishOutput{Version: res.Version, Created: res.Created, Path: string(res.Path)})
			}},
		{method: "GET", path: "/versions/{tag}", id: "getVersion", tag: "versions", scope: ScopeRead,
			summary:     "Get a published version with its manifest",
			description: "A published version never changes: the answer carries its content digest as a strong ETag and may be cached for good; If-None-Match answers 304.",
			params:      []param{tag}, headers: []param{headerParam("If-None-Match", "an ETag the client holds")},
			ok: http.StatusOK, out: &harmonia.InventoryVersion{}, also: []int{http.StatusNotModified}, etag: true,
			errs: []int{http.StatusNotFound}, run: h.getVersion},
		{method: "GET", path: "/versions/{tag}/contents", id: "getVersionContents", tag: "versions", scope: ScopeRead,
			summary: "Get a published version with its artifacts, datasets and licenses as stored now", params: []param{tag},
			ok: http.StatusOK, out: &VersionContents{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				vc, err := h.store.VersionContentsByTag(c.ctx, c.r.PathValue("tag"))
				if err != nil {
					return err
				}
				out := &VersionContents{Version: vc.Version, Artifacts: nonNil(vc.Artifacts), Datasets: nonNil(vc.Datasets), Licenses: []*harmonia.License{}}
				for _, l := range vc.Licenses {
					out.Licenses = append(out.Licenses, l)
				}
				slices.SortFunc(out.Licenses, func(a, b *harmonia.License) int { return strings.Compare(a.SPDXID, b.SPDXID) })
				return c.reply(http.StatusOK, out)
			}},
		{method: "GET", path: "/versions/{tag}/diff/{to}", id: "diffVersions", tag: "versions", scope: ScopeRead,
			summary: "Compare two published versions' manifests", params: []param{tag, pathParam("to", "the other version's tag")},
			ok: http.StatusOK, out: &VersionDiff{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				d, err := h.store.DiffVersionsByTag(c.ctx, c.r.PathValue("tag"), c.r.PathValue("to"))
				if err != nil {
					return err
				}
				return c.reply(http.StatusOK, &VersionDiff{From: d.From, To: d.To, Added: nonNil(d.Added), Removed: nonNil(d.Removed), Changed: changes(d.Changed)})
			}},
		{method: "GET", path: "/versions/{tag}/verify", id: "verifyVersion", tag: "versions", scope: ScopeRead,
			summary: "Recompute a version's digest from what is stored now and report any drift", params: []param{tag},
			ok: http.StatusOK, out: &VerifyReport{}, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				r, err := h.store.VerifyVersion(c.ctx, c.r.PathValue("tag"))
				if err != nil {
					return err
				}
				return c.reply(http.StatusOK, &VerifyReport{VersionTag: r.VersionTag, OK: r.OK(), StoredDigest: r.StoredDigest,
					ManifestDigest: r.ManifestDigest, CurrentDigest: r.CurrentDigest, Changed: changes(r.Changed), Missing: nonNil(r.Missing)})
			}},
	}
}

// getVersion answers GET /versions/{tag} from the cache of published
// versions, reading the Store on a miss.
func (h *Handler) getVersion(c *call) error {
	tag := c.r.PathValue("tag")
	cv, ok := h.versions.Get(tag)
	if !ok {
		v, err := h.store.GetVersionByTag(c.ctx, tag)
		if err != nil {
			return err
		}
		body, err := json.Marshal(v)
		if err != nil {
			return err
		}
		cv = &cachedVersion{etag: versionETag(v), body: append(body, '\n')}
		if cv.etag != "" {
			h.versions.Add(tag, cv)
		}
	}
	if cv.etag != "" {
		c.w.Header().Set("ETag", cv.etag)
		c.w.Header().Set("Cache-Control", immutable)
		if etagMatches(c.r.Header.Get("If-None-Match"), cv.etag) {
			c.w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(cv.body)
	return nil
}

// etagMatches reports whether the If-None-Match or If-Match header value
// names etag: "*", or a list of tags of which one is etag (compared
// weakly: a W/ prefix is ignored).
func etagMatches(header, etag string) bool {
	if header == "" || etag == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
