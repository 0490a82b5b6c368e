package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/examples/inventory"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/worker"
)

func TestMain(m *testing.M) { harmoniatest.Main(m) }

// fixture is a service over a fresh database with the sample inventory
// imported, served by httptest.
type fixture struct {
	store *harmonia.Store
	root  string
	url   string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	db := harmoniatest.Database(t)
	store, err := harmonia.Open(t.Context(), db, nil)
	require.NoError(t, err)
	require.NoError(t, store.EnsureIndexes(t.Context()))
	root := t.TempDir()
	require.NoError(t, sampleInventory(t.Context(), store, root, true))
	srv := httptest.NewServer(NewService(store, slog.New(slog.DiscardHandler)).Handler())
	t.Cleanup(srv.Close)
	return &fixture{store: store, root: root, url: srv.URL}
}

// call sends a request and decodes the JSON reply into out (when not nil),
// returning the status code.
func (f *fixture) call(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.url+path, rd)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

type errorReply struct {
	Error errorBody `json:"error"`
}

func TestServiceListAndShow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var versions struct {
		Versions []harmonia.InventoryVersion `json:"versions"`
	}
	require.Equal(t, http.StatusOK, f.call(t, "GET", "/versions", nil, &versions))
	require.Len(t, versions.Versions, 2)
	tag := versions.Versions[0].VersionTag

	var shown struct {
		Version   harmonia.InventoryVersion `json:"version"`
		Artifacts []harmonia.ModelArtifact  `json:"artifacts"`
	}
	require.Equal(t, http.StatusOK, f.call(t, "GET", "/versions/"+tag, nil, &shown))
	assert.Equal(t, tag, shown.Version.VersionTag)
	assert.Len(t, shown.Artifacts, len(shown.Version.ArtifactIDs))

	var arts struct {
		Artifacts []harmonia.ModelArtifact `json:"artifacts"`
		Next      string                   `json:"next"`
	}
	require.Equal(t, http.StatusOK, f.call(t, "GET", "/artifacts?tag=nlp&limit=1", nil, &arts))
	require.Len(t, arts.Artifacts, 1)
	assert.Contains(t, arts.Artifacts[0].Tags, "nlp")
	assert.NotEmpty(t, arts.Next)

	var e errorReply
	require.Equal(t, http.StatusNotFound, f.call(t, "GET", "/versions/no-such-tag", nil, &e))
	assert.Equal(t, errorBody{Code: harmonia.CodeNotFound, Entity: harmonia.EntityVersion, Reason: e.Error.Reason}, e.Error)
	require.Equal(t, http.StatusBadRequest, f.call(t, "GET", "/artifacts?limit=many", nil, &e))
	assert.Equal(t, "limit", e.Error.Field)
}

// TestServicePublishWithAudit: a publish writes the version and the
// service's audit record together; the same request again is idempotent,
// other contents under the tag a conflict, a bad request invalid.
func TestServicePublishWithAudit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	page, err := f.store.ListArtifacts(t.Context(), harmonia.ArtifactFilter{})
	require.NoError(t, err)
	ids := []bson.ObjectID{page.Items[0].ID, page.Items[1].ID}
	audit := f.store.Database().Collection(CollectionAudit)

	req := map[string]any{"version_tag": "svc-1", "artifacts": ids, "published_by": "service-test"}
	var res struct {
		Version harmonia.InventoryVersion `json:"version"`
		Created bool                      `json:"created"`
		Path    harmonia.PublishPath      `json:"path"`
	}
	require.Equal(t, http.StatusCreated, f.call(t, "POST", "/versions", req, &res))
	assert.True(t, res.Created)
	assert.Equal(t, f.store.Capabilities().Transactions, res.Path == harmonia.PublishTransaction)
	n, err := audit.CountDocuments(t.Context(), bson.D{{Key: "version_id", Value: res.Version.ID}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)

	require.Equal(t, http.StatusOK, f.call(t, "POST", "/versions", req, &res))
	assert.False(t, res.Created)
	n, err = audit.CountDocuments(t.Context(), bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "an idempotent publish writes no second audit record")

	var e errorReply
	req["artifacts"] = ids[:1]
	require.Equal(t, http.StatusConflict, f.call(t, "POST", "/versions", req, &e))
	assert.Equal(t, harmonia.CodeConflict, e.Error.Code)
	assert.Equal(t, "version_tag", e.Error.Field)

	require.Equal(t, http.StatusBadRequest, f.call(t, "POST", "/versions", map[string]any{"version_tag": "svc-2", "artifacts": ids}, &e))
	assert.Equal(t, harmonia.CodeInvalid, e.Error.Code)
	assert.Equal(t, "published_by", e.Error.Field)
	require.Equal(t, http.StatusBadRequest, f.call(t, "POST", "/versions", map[string]any{"version_tag": "svc-3",
		"artifacts": []bson.ObjectID{bson.NewObjectID()}, "published_by": "x"}, &e))
	assert.Equal(t, harmonia.CodeInvalid, e.Error.Code)
	n, err = audit.CountDocuments(t.Context(), bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "failed publishes write no audit record")
}

// TestServiceValidate: a validate request enqueues a job that a worker in
// the same process runs; the job's outcome is readable.
func TestServiceValidate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	page, err := f.store.ListArtifacts(t.Context(), harmonia.ArtifactFilter{NamePrefix: "resnet50"})
	require.NoError(t, err)
	id := page.Items[0].ID

	validate, err := worker.ValidateHandler(f.store, f.root)
	require.NoError(t, err)
	w, err := worker.New(f.store, &worker.Options{
		Handlers: map[harmonia.JobType]worker.Handler{harmonia.JobValidate: validate}, PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	var enq struct {
		Job harmonia.Job `json:"job"`
	}
	require.Equal(t, http.StatusAccepted, f.call(t, "POST", "/artifacts/"+id.Hex()+"/validate", nil, &enq))
	var got struct {
		Job harmonia.Job `json:"job"`
	}
	require.Eventually(t, func() bool {
		f.call(t, "GET", "/jobs/"+enq.Job.ID.Hex(), nil, &got)
		return got.Job.Status == harmonia.JobSuccess || got.Job.Status == harmonia.JobFailed
	}, time.Minute, 100*time.Millisecond)
	assert.Equal(t, harmonia.JobSuccess, got.Job.Status, "errors: %v", got.Job.Errors)

	var e errorReply
	require.Equal(t, http.StatusNotFound, f.call(t, "POST", "/artifacts/"+bson.NewObjectID().Hex()+"/validate", nil, &e))
	require.Equal(t, http.StatusBadRequest, f.call(t, "POST", "/artifacts/xyz/validate", nil, &e))
	assert.Equal(t, "id", e.Error.Field)
}

// TestServiceShutdown runs the whole program against the test server and
// stops it as SIGINT would: it answers, then returns without an error.
func TestServiceShutdown(t *testing.T) {
	t.Parallel()
	uri := harmoniatest.CurrentLane(t).URI
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, inventory.FS))
	go func() { done <- run(ctx, slog.New(slog.DiscardHandler), "127.0.0.1:0", uri, root, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("the service stopped: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/versions")
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "versions")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the service did not stop")
	}
	_, err = os.Stat(filepath.Join(root, inventory.FileName))
	require.NoError(t, err, "a given -root is left as it was")
}
