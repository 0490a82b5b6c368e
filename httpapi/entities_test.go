package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/httpapi"
)

const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// license registers a license through the API and returns it.
func (b *bundle) license(spdx string) *harmonia.License {
	b.t.Helper()
	r := b.do(writeToken, "POST", "/licenses", map[string]any{"spdx_id": spdx, "commercial_use": true})
	require.Equal(b.t, http.StatusCreated, r.status, string(r.body))
	var l harmonia.License
	r.decode(b.t, &l)
	return &l
}

// artifact registers an artifact through the API and returns it.
func (b *bundle) artifact(name, version string, lic *harmonia.License) *harmonia.ModelArtifact {
	b.t.Helper()
	r := b.do(writeToken, "POST", "/artifacts", map[string]any{"name": name, "version": version, "path": "models/" + name + ".onnx",
		"size_bytes": 100, "hashes": map[string]any{"sha256": sum}, "license_id": lic.ID.Hex(), "tags": []string{"vision"}})
	require.Equal(b.t, http.StatusCreated, r.status, string(r.body))
	var a harmonia.ModelArtifact
	r.decode(b.t, &a)
	return &a
}

func TestLicenses(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	mit := b.license("mit")
	require.Equal(t, "MIT", mit.SPDXID)

	r := b.do(readToken, "GET", "/licenses/"+mit.ID.Hex(), nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(readToken, "GET", "/licenses/spdx/"+url.PathEscape("Mit"), nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(readToken, "GET", "/licenses/spdx/Apache-2.0", nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, harmonia.CodeNotFound, r.problem(t).Code)

	// A duplicate is a conflict; an unknown SPDX id breaks a rule of the entity (422).
	r = b.do(writeToken, "POST", "/licenses", map[string]any{"spdx_id": "MIT", "commercial_use": true})
	require.Equal(t, http.StatusConflict, r.status)
	r = b.do(writeToken, "POST", "/licenses", map[string]any{"spdx_id": "no-such-license", "commercial_use": true})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	p := r.problem(t)
	require.Equal(t, harmonia.CodeInvalid, p.Code)
	require.Equal(t, harmonia.EntityLicense, p.Entity)
	require.Equal(t, "spdx_id", p.Field)

	// Get-or-create: 201, then 200 unchanged, then 409 naming the field that differs.
	r = b.do(writeToken, "PUT", "/licenses/spdx/Apache-2.0", map[string]any{"commercial_use": true})
	require.Equal(t, http.StatusCreated, r.status)
	r = b.do(writeToken, "PUT", "/licenses/spdx/apache-2.0", map[string]any{"commercial_use": true})
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(writeToken, "PUT", "/licenses/spdx/Apache-2.0", map[string]any{"commercial_use": false})
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "commercial_use", r.problem(t).Field)

	r = b.do(writeToken, "PATCH", "/licenses/"+mit.ID.Hex(), map[string]any{"notes": "permissive"})
	require.Equal(t, http.StatusOK, r.status)
	var l harmonia.License
	r.decode(t, &l)
	require.Equal(t, "permissive", l.Notes)
	r = b.do(writeToken, "PATCH", "/licenses/"+strings.Repeat("0", 24), map[string]any{"notes": "x"})
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(readToken, "GET", "/licenses?commercial_use=true&limit=1", nil)
	require.Equal(t, http.StatusOK, r.status)
	var page httpapi.LicensePage
	r.decode(t, &page)
	require.Len(t, page.Items, 1)
	require.NotEmpty(t, page.Next)
	require.Equal(t, `<?after=`+page.Next+`&commercial_use=true&limit=1>; rel="next"`, r.header.Get("Link"))
	seen := len(page.Items)
	for page.Next != "" { // Next may be set on the last full page; the page after it is empty
		r = b.do(readToken, "GET", "/licenses?commercial_use=true&limit=1&after="+page.Next, nil)
		page = httpapi.LicensePage{}
		r.decode(t, &page)
		seen += len(page.Items)
		require.Equal(t, page.Next != "", r.header.Get("Link") != "")
	}
	require.Equal(t, 2, seen)

	// Parameters that break the document answer 400 naming the parameter.
	r = b.do(readToken, "GET", "/licenses?limit=0", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "limit", r.problem(t).Field)
	r = b.do(readToken, "GET", "/licenses/not-an-id", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "id", r.problem(t).Field)
}

func TestArtifacts(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	lic := b.license("MIT")
	a := b.artifact("resnet50", "1.2.0", lic)
	require.Equal(t, "writer", a.CreatedBy, "created_by is the caller's identity")

	// created_by in the body is refused by the document, and nothing is written.
	r := b.do(writeToken, "POST", "/artifacts", map[string]any{"name": "x", "version": "1", "path": "x.onnx", "size_bytes": 1, "created_by": "mallory"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, r.problem(t).Detail, "created_by")
	_, err := b.store.GetArtifactByKey(t.Context(), "x", "1")
	require.ErrorIs(t, err, harmonia.ErrNotFound)

	// The body's schema: a missing field, a bad sha256 (the Store's rule), a bad id.
	r = b.do(writeToken, "POST", "/artifacts", map[string]any{"name": "x", "version": "1", "size_bytes": 1})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "request", r.problem(t).Entity)
	r = b.do(writeToken, "POST", "/artifacts", map[string]any{"name": "x", "version": "1", "path": "x.onnx", "size_bytes": 1, "hashes": map[string]any{"sha256": "nope"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	p := r.problem(t)
	require.Equal(t, harmonia.EntityArtifact, p.Entity)
	require.Equal(t, "hashes.sha256", p.Field)
	r = b.do(writeToken, "POST", "/artifacts", []byte(`{"name": `))
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "body", r.problem(t).Field)
	r = b.do(writeToken, "POST", "/artifacts", map[string]any{"name": "resnet50", "version": "1.2.0", "path": "y.onnx", "size_bytes": 1})
	require.Equal(t, http.StatusConflict, r.status)

	r = b.do(readToken, "GET", "/artifacts/"+a.ID.Hex(), nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(readToken, "GET", "/artifacts/"+strings.Repeat("a", 24), nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = b.do(readToken, "GET", "/artifacts/resnet50/1.2.0", nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(readToken, "GET", "/artifacts/resnet50/9", nil)
	require.Equal(t, http.StatusNotFound, r.status)

	// A name with a slash travels escaped.
	b.artifact("org/model", "1", lic)
	r = b.do(readToken, "GET", "/artifacts/"+url.PathEscape("org/model")+"/1", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	// Get-or-create by natural key.
	content := map[string]any{"path": "models/bert.onnx", "size_bytes": 5, "hashes": map[string]any{"sha256": sum}}
	r = b.do(writeToken, "PUT", "/artifacts/bert/1", content)
	require.Equal(t, http.StatusCreated, r.status)
	r = b.do(writeToken, "PUT", "/artifacts/bert/1", content)
	require.Equal(t, http.StatusOK, r.status)
	content["size_bytes"] = 6
	r = b.do(writeToken, "PUT", "/artifacts/bert/1", content)
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "size_bytes", r.problem(t).Field)

	r = b.do(writeToken, "PATCH", "/artifacts/"+a.ID.Hex(), map[string]any{"tags": []string{"nlp"}})
	require.Equal(t, http.StatusOK, r.status)
	var got harmonia.ModelArtifact
	r.decode(t, &got)
	require.Equal(t, []string{"nlp"}, got.Tags)

	r = b.do(readToken, "GET", "/artifacts?tag=nlp", nil)
	require.Equal(t, http.StatusOK, r.status)
	var page httpapi.ArtifactPage
	r.decode(t, &page)
	require.Len(t, page.Items, 1)
	r = b.do(readToken, "GET", "/artifacts?published=false&limit=2", nil)
	r.decode(t, &page)
	require.Len(t, page.Items, 2)
	require.NotEmpty(t, page.Next)
	r = b.do(readToken, "GET", "/artifacts?published=maybe", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "published", r.problem(t).Field)
}

func TestDatasets(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	lic := b.license("CC-BY-4.0")
	body := map[string]any{"name": "coco", "version": "2024.1", "path": "s3://bucket/coco.tar", "size_bytes": 10,
		"hashes": map[string]any{"sha256": sum}, "license_id": lic.ID.Hex()}
	r := b.do(writeToken, "POST", "/datasets", body)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	var d harmonia.Dataset
	r.decode(t, &d)
	require.Equal(t, "writer", d.CreatedBy)
	r = b.do(writeToken, "POST", "/datasets", body)
	require.Equal(t, http.StatusConflict, r.status)
	body["license_id"] = strings.Repeat("1", 24)
	body["version"] = "2"
	r = b.do(writeToken, "POST", "/datasets", body)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "a license that does not exist")
	require.Equal(t, "license_id", r.problem(t).Field)

	r = b.do(readToken, "GET", "/datasets/"+d.ID.Hex(), nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(readToken, "GET", "/datasets/coco/2024.1", nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(readToken, "GET", "/datasets/coco/0", nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = b.do(writeToken, "PUT", "/datasets/coco/2024.1", map[string]any{"path": "s3://bucket/coco.tar", "size_bytes": 10,
		"hashes": map[string]any{"sha256": sum}, "license_id": lic.ID.Hex()})
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(writeToken, "PUT", "/datasets/coco/2024.2", map[string]any{"path": "s3://bucket/coco2.tar", "size_bytes": 10})
	require.Equal(t, http.StatusCreated, r.status)
	r = b.do(writeToken, "PATCH", "/datasets/"+d.ID.Hex(), map[string]any{"notes": "subset"})
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(writeToken, "PATCH", "/datasets/"+d.ID.Hex(), map[string]any{"size_bytes": -1})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "size_bytes", r.problem(t).Field)
	r = b.do(readToken, "GET", "/datasets?name=coco", nil)
	var page httpapi.DatasetPage
	r.decode(t, &page)
	require.Len(t, page.Items, 2)
}
