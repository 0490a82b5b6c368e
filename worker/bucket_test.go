package worker_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/bucket"
	"github.com/harmonia-ml/harmonia/bucket/buckettest"
	"github.com/harmonia-ml/harmonia/worker"
)

// s3Set starts an S3 server on a loopback listener with bucket "models"
// and returns it with a Set that allows that bucket only, through s3blob.
// It sets the fake credentials with t.Setenv: no t.Parallel.
func s3Set(t *testing.T) (*buckettest.S3, *bucket.Set) {
	t.Helper()
	srv := buckettest.NewS3(t, "models", "other")
	set, err := bucket.New(t.Context(), &bucket.Options{Allow: []string{srv.BucketURL("models")}})
	require.NoError(t, err)
	t.Cleanup(func() { set.Close() })
	return srv, set
}

// TestValidateS3 validates artifacts whose paths are objects on an S3
// server: each outcome is told apart in verify_error and the job's
// status, and a size mismatch is found without reading the object.
func TestValidateS3(t *testing.T) {
	srv, set := s3Set(t)
	b := setup(t)
	content := randomBytes(300_000, 7)
	for key, data := range map[string][]byte{"ok.bin": content, "short.bin": content[:1000], "flipped.bin": randomBytes(len(content), 8), "changing.bin": content} {
		require.NoError(t, srv.Put("models", "m/"+key, data))
	}
	require.NoError(t, srv.Put("other", "m/ok.bin", content))
	srv.ReplaceWhileReading("models", "m/changing.bin", randomBytes(len(content), 9))

	cases := []struct {
		name, path string
		want       harmonia.JobStatus
		problem    string
	}{
		{"ok", "s3://models/m/ok.bin", harmonia.JobSuccess, ""},
		{"size", "s3://models/m/short.bin", harmonia.JobFailed, "size mismatch"},
		{"sha", "s3://models/m/flipped.bin", harmonia.JobFailed, "sha256 mismatch"},
		{"missing", "s3://models/m/absent.bin", harmonia.JobPending, "object not found"},
		{"changed", "s3://models/m/changing.bin", harmonia.JobPending, "changed while it was read"},
		{"not-allowed", "s3://other/m/ok.bin", harmonia.JobFailed, "not among the allowed buckets"},
	}
	h, err := worker.ValidateHandlerWith(b.store, t.TempDir(), &worker.ValidateOptions{Buckets: set})
	require.NoError(t, err)
	ids := make([]bson.ObjectID, len(cases))
	arts := make([]*harmonia.ModelArtifact, len(cases))
	for i, c := range cases {
		arts[i] = b.fileArtifact(t, c.name, c.path, content)
		ids[i] = b.enqueueFor(t, harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: arts[i].ID})
	}
	jobs := runJobs(t, b, map[harmonia.JobType]worker.Handler{harmonia.JobValidate: h}, ids...)
	for i, c := range cases {
		j := jobs[ids[i]]
		require.Equal(t, c.want, j.Status, "%s: %s", c.name, j.Error)
		got, err := b.store.GetArtifact(b.ctx, arts[i].ID)
		require.NoError(t, err)
		if c.want == harmonia.JobSuccess {
			var res worker.VerifyResult
			require.NoError(t, bson.Unmarshal(j.Result, &res))
			require.Equal(t, worker.VerifyResult{Path: c.path, SHA256: sha(content), SizeBytes: int64(len(content))}, res)
			require.NotNil(t, got.VerifiedAt)
			require.Empty(t, got.VerifyError)
			continue
		}
		require.Nil(t, got.VerifiedAt, c.name)
		require.Contains(t, got.VerifyError, c.problem, c.name)
		require.Contains(t, j.Error, c.problem, c.name)
		require.NotContains(t, j.Error, srv.URL, "%s: the job's error names no endpoint", c.name)
		if c.want == harmonia.JobFailed {
			require.Equal(t, 1, j.Attempt, "%s: a permanent failure is not retried", c.name)
		}
	}
	require.Zero(t, srv.Requests(http.MethodGet, "models", "m/short.bin"), "a size mismatch reads no byte of the object")
	require.Positive(t, srv.Requests(http.MethodHead, "models", "m/short.bin"))
	require.Zero(t, srv.Requests(http.MethodHead, "other", "m/ok.bin"), "a bucket not allowed is not asked")
}

// TestDownloadToS3 downloads into an object on an S3 server: a match
// commits the object; a mismatch and a download cancelled midway leave
// no object at the artifact's path.
func TestDownloadToS3(t *testing.T) {
	srv, set := s3Set(t)
	b := setup(t)
	content := randomBytes(9<<20, 10)
	sent := make(chan struct{})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good":
			_, _ = w.Write(content)
		case "/flipped":
			bad := bytes.Clone(content)
			bad[len(bad)/2] ^= 1
			_, _ = w.Write(bad)
		case "/stalls":
			w.Header().Set("Content-Length", "9437184")
			_, _ = w.Write(content[:6<<20])
			w.(http.Flusher).Flush()
			close(sent)
			<-r.Context().Done()
		}
	}))
	t.Cleanup(src.Close)
	h, err := worker.DownloadHandler(b.store, t.TempDir(), &worker.DownloadOptions{
		Client: src.Client(), AllowedHosts: []string{src.Listener.Addr().String()}, Buckets: set})
	require.NoError(t, err)
	hs := map[harmonia.JobType]worker.Handler{harmonia.JobDownload: h}

	good := b.fileArtifact(t, "good", "s3://models/dl/good.bin", content)
	flipped := b.fileArtifact(t, "flipped", "s3://models/dl/flipped.bin", content)
	ids := []bson.ObjectID{
		b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: good.ID, Source: src.URL + "/good"}),
		b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: flipped.ID, Source: src.URL + "/flipped"}),
	}
	jobs := runJobs(t, b, hs, ids...)
	require.Equal(t, harmonia.JobSuccess, jobs[ids[0]].Status, jobs[ids[0]].Error)
	got, err := srv.Get("models", "dl/good.bin")
	require.NoError(t, err)
	require.Equal(t, sha(content), sha(got))
	a, err := b.store.GetArtifact(b.ctx, good.ID)
	require.NoError(t, err)
	require.NotNil(t, a.VerifiedAt)
	require.Equal(t, harmonia.JobPending, jobs[ids[1]].Status, "a source's mismatch is retried")
	require.Contains(t, jobs[ids[1]].Error, "sha256 mismatch")

	// Cancelled midway: the worker stops while the source stalls after
	// 6 of its 9 MiB; the handler's context ends and no object appears.
	stalled := b.fileArtifact(t, "stalled", "s3://models/dl/stalled.bin", content)
	b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: stalled.ID, Source: src.URL + "/stalls"})
	_, stop := startWorker(t, b, worker.Options{Handlers: hs, PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Millisecond})
	<-sent
	stop()
	keys, err := srv.Keys("models")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"dl/good.bin"}, keys, "only the whole download is in the bucket")
	require.Positive(t, srv.Requests(http.MethodGet, "models", "dl/good.bin")+srv.Requests(http.MethodPut, "models", "dl/good.bin"))
}
