package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/httpapi"
)

// benchStore returns a store with a published version "1.0" and the
// alias "production" on it, and the handler over it (reads only).
func benchStore(b *testing.B) (*harmonia.Store, http.Handler) {
	store := harmoniatest.Store(b, nil)
	ctx := b.Context()
	a := &harmonia.ModelArtifact{Name: "a", Version: "1", Path: "a.onnx", SizeBytes: 1, Hashes: harmonia.Hashes{SHA256: sum}}
	lic := &harmonia.License{SPDXID: "MIT"}
	if err := store.CreateLicense(ctx, lic); err != nil {
		b.Fatal(err)
	}
	a.LicenseID = lic.ID
	if err := store.CreateArtifact(ctx, a); err != nil {
		b.Fatal(err)
	}
	if _, err := store.Publish(ctx, harmonia.PublishRequest{VersionTag: "1.0", ArtifactIDs: []bson.ObjectID{a.ID}, PublishedBy: "b"}); err != nil {
		b.Fatal(err)
	}
	if _, err := store.SetAlias(ctx, "production", "1.0", &harmonia.SetAliasOpts{By: "b"}); err != nil {
		b.Fatal(err)
	}
	h, err := httpapi.New(store, nil)
	if err != nil {
		b.Fatal(err)
	}
	return store, h
}

func serveGet(b *testing.B, h http.Handler, path string) {
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkVersionReadHandler reads a published version through the
// handler, in process: after the first, from its cache.
func BenchmarkVersionReadHandler(b *testing.B) {
	_, h := benchStore(b)
	serveGet(b, h, "/versions/1.0")
}

// BenchmarkAliasReadHandler reads an alias through the handler, in process.
func BenchmarkAliasReadHandler(b *testing.B) {
	_, h := benchStore(b)
	serveGet(b, h, "/aliases/production")
}

// BenchmarkAliasReadStore is the Store call BenchmarkAliasReadHandler makes.
func BenchmarkAliasReadStore(b *testing.B) {
	store, _ := benchStore(b)
	for b.Loop() {
		if _, err := store.GetAlias(b.Context(), "production"); err != nil {
			b.Fatal(err)
		}
	}
}
