package worker_test

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
		got := requireOutcome(t, b, j, arts[i].ID, c.name, c.want, c.problem, srv.URL)
		if c.want == harmonia.JobSuccess {
			var res worker.VerifyResult
			require.NoError(t, bson.Unmarshal(j.Result, &res))
			require.Equal(t, worker.VerifyResult{Path: c.path, SHA256: sha(content), SizeBytes: int64(len(content))}, res)
			require.Empty(t, got.VerifyError)
			continue
		}
		require.Contains(t, got.VerifyError, c.problem, c.name)
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

// TestDownloadFromS3 downloads artifacts whose source is an object on an
// S3 server, read through the handler's buckets, into the local root and
// into another bucket path; each failure is told apart and a download
// cancelled midway leaves nothing at the artifact's path.
func TestDownloadFromS3(t *testing.T) {
	srv := buckettest.NewS3(t, "models", "incoming", "other")
	set, err := bucket.New(t.Context(), &bucket.Options{Allow: []string{srv.BucketURL("models"), srv.BucketURL("incoming")}})
	require.NoError(t, err)
	t.Cleanup(func() { set.Close() })
	b := setup(t)
	root := t.TempDir()
	content := randomBytes(300_000, 11)
	for key, data := range map[string][]byte{"ok.bin": content, "short.bin": content[:1000], "changing.bin": content, "denied/ok.bin": content} {
		require.NoError(t, srv.Put("incoming", key, data))
	}
	require.NoError(t, srv.Put("other", "ok.bin", content))
	// Each phase has a store of its own: a retry of an earlier phase's
	// job cannot run in a later one.
	handlers := func(b *bundle) map[harmonia.JobType]worker.Handler {
		h, err := worker.DownloadHandler(b.store, root, &worker.DownloadOptions{Buckets: set})
		require.NoError(t, err)
		return map[harmonia.JobType]worker.Handler{harmonia.JobDownload: h}
	}

	cases := []struct {
		name, path, source string
		want               harmonia.JobStatus
		problem            string
	}{
		{"to-root", "m/ok.bin", "s3://incoming/ok.bin", harmonia.JobSuccess, ""},
		{"to-bucket", "s3://models/dl/ok.bin", "s3://incoming/ok.bin", harmonia.JobSuccess, ""},
		{"not-allowed", "m/other.bin", "s3://other/ok.bin", harmonia.JobFailed, "not among the download handler's allowed buckets"},
		{"missing", "m/missing.bin", "s3://incoming/absent.bin", harmonia.JobPending, "object not found"},
		{"size", "s3://models/dl/short.bin", "s3://incoming/short.bin", harmonia.JobPending, "size mismatch"},
		{"changed", "m/changing.bin", "s3://incoming/changing.bin", harmonia.JobPending, "changed while it was read"},
	}
	srv.ReplaceWhileReading("incoming", "changing.bin", randomBytes(len(content), 12))
	ids := make([]bson.ObjectID, len(cases))
	arts := make([]*harmonia.ModelArtifact, len(cases))
	for i, c := range cases {
		arts[i] = b.fileArtifact(t, c.name, c.path, content)
		ids[i] = b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: arts[i].ID, Source: c.source})
	}
	jobs := runJobs(t, b, handlers(b), ids...)
	for i, c := range cases {
		requireOutcome(t, b, jobs[ids[i]], arts[i].ID, c.name, c.want, c.problem, srv.URL)
	}
	local, err := os.ReadFile(filepath.Join(root, "m/ok.bin"))
	require.NoError(t, err)
	require.Equal(t, sha(content), sha(local))
	inBucket, err := srv.Get("models", "dl/ok.bin")
	require.NoError(t, err)
	require.Equal(t, sha(content), sha(inBucket))
	require.Zero(t, srv.Requests(http.MethodGet, "incoming", "short.bin"), "a size mismatch reads no byte of the source")
	require.Positive(t, srv.Requests(http.MethodHead, "incoming", "short.bin"))
	require.Zero(t, srv.Requests(http.MethodHead, "other", "ok.bin")+srv.Requests(http.MethodGet, "other", "ok.bin"), "a bucket not allowed is not asked")
	requireOnly(t, root, "m/ok.bin")

	// A denied read fails for good.
	srv.Deny("incoming", "denied/")
	b = setup(t)
	denied := b.fileArtifact(t, "denied", "m/denied.bin", content)
	id := b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: denied.ID, Source: "s3://incoming/denied/ok.bin"})
	j := runJobs(t, b, handlers(b), id)[id]
	require.Equal(t, harmonia.JobFailed, j.Status, j.Error)
	require.Equal(t, 1, j.Attempt, "a denied read is not retried")
	require.Contains(t, j.Error, "access denied")

	// Cancelled midway: the worker stops while the source stalls after
	// its first 6 of 9 MiB, into the root and into a bucket alike. The
	// worker gives up waiting for its handler after 1ms: the checks wait
	// for the handler itself to return.
	big := randomBytes(9<<20, 13)
	require.NoError(t, srv.Put("incoming", "big.bin", big))
	for _, dest := range []string{"m/stalled.bin", "s3://models/dl/stalled.bin"} {
		sent := make(chan struct{})
		srv.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.Method != http.MethodGet || r.URL.Path != "/incoming/big.bin" {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(&stallAfter{ResponseWriter: w, left: 6 << 20, sent: sent, done: r.Context().Done()}, r)
		})
		b := setup(t)
		stalled := b.fileArtifact(t, "stalled", dest, big)
		b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: stalled.ID, Source: "s3://incoming/big.bin"})
		h := handlers(b)[harmonia.JobDownload]
		returned := make(chan error, 1)
		wrapped := func(ctx context.Context, j *harmonia.Job, log *worker.JobLogger) (any, error) {
			res, err := h(ctx, j, log)
			returned <- err
			return res, err
		}
		_, stop := startWorker(t, b, worker.Options{Handlers: map[harmonia.JobType]worker.Handler{harmonia.JobDownload: wrapped},
			PollInterval: 20 * time.Millisecond, ShutdownTimeout: time.Millisecond})
		<-sent
		stop()
		require.ErrorIs(t, <-returned, context.Canceled, dest)
		a, err := b.store.GetArtifact(b.ctx, stalled.ID)
		require.NoError(t, err)
		require.Nil(t, a.VerifiedAt, dest)
	}
	requireOnly(t, root, "m/ok.bin")
	keys, err := srv.Keys("models")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"dl/ok.bin"}, keys, "only the whole download is in the bucket")
}

// requireOutcome requires that job j, on the artifact id, ended its
// first attempt in status want: a success verified the artifact; a
// failure did not, says problem without naming the endpoint, and is
// not retried when it is permanent. It returns the artifact.
func requireOutcome(t *testing.T, b *bundle, j *harmonia.Job, id bson.ObjectID, name string, want harmonia.JobStatus, problem, endpoint string) *harmonia.ModelArtifact {
	t.Helper()
	require.Equal(t, want, j.Status, "%s: %s", name, j.Error)
	got, err := b.store.GetArtifact(b.ctx, id)
	require.NoError(t, err)
	if want == harmonia.JobSuccess {
		require.NotNil(t, got.VerifiedAt, name)
		return got
	}
	require.Nil(t, got.VerifiedAt, name)
	require.Contains(t, j.Error, problem, name)
	require.NotContains(t, j.Error, endpoint, "%s: the job's error names no endpoint", name)
	if want == harmonia.JobFailed {
		require.Equal(t, 1, j.Attempt, "%s: a permanent failure is not retried", name)
	}
	return got
}

// requireOnly requires that the only regular file under root is rel.
func requireOnly(t *testing.T, root, rel string) {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			r, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(r))
		}
		return err
	}))
	require.Equal(t, []string{rel}, files)
}

// stallAfter passes on the first left bytes of a response, then closes
// sent and blocks until done: a server that stops sending midway.
type stallAfter struct {
	http.ResponseWriter
	left int
	sent chan struct{}
	done <-chan struct{}
}

func (s *stallAfter) Write(p []byte) (int, error) {
	if s.left <= 0 {
		<-s.done
		return 0, http.ErrAbortHandler
	}
	n, err := s.ResponseWriter.Write(p[:min(len(p), s.left)])
	s.left -= n
	if err != nil || s.left > 0 {
		return n, err
	}
	s.ResponseWriter.(http.Flusher).Flush()
	close(s.sent)
	<-s.done
	return n, http.ErrAbortHandler
}
