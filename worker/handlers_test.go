package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/testenv"
	"github.com/harmonia-ml/harmonia/worker"
)

// randomBytes returns n repeatable pseudo-random bytes.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = seed
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func writeFile(t *testing.T, path string, content []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, content, 0o644))
}

// fileArtifact creates an artifact at path whose size and sha256 are
// content's.
func (b *bundle) fileArtifact(t *testing.T, name, path string, content []byte) *harmonia.ModelArtifact {
	t.Helper()
	a := &harmonia.ModelArtifact{Name: name, Version: "1", Path: path, SizeBytes: int64(len(content)),
		Hashes: harmonia.Hashes{SHA256: sha(content)}}
	require.NoError(t, b.store.CreateArtifact(b.ctx, a))
	return a
}

// runJobs runs a worker with hs until every job of ids has had an attempt
// recorded, and returns the jobs.
func runJobs(t *testing.T, b *bundle, hs map[harmonia.JobType]worker.Handler, ids ...bson.ObjectID) map[bson.ObjectID]*harmonia.Job {
	t.Helper()
	w, stop := startWorker(t, b, worker.Options{Handlers: hs, PollInterval: 20 * time.Millisecond})
	waitFor(t, "the jobs' attempts", func() bool { s := w.Stats(); return s.Succeeded+s.Failed == int64(len(ids)) })
	stop()
	return testenv.AllJobs(t, b.db)
}

func (b *bundle) enqueueFor(t *testing.T, typ harmonia.JobType, params any) bson.ObjectID {
	t.Helper()
	return b.enqueue(t, typ, params, &harmonia.EnqueueOpts{MaxAttempts: 2}).ID
}

func TestValidateHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root, outside := t.TempDir(), t.TempDir()
	content := randomBytes(300_000, 1)

	writeFile(t, filepath.Join(root, "models/good.bin"), content)
	good := b.fileArtifact(t, "good", "models/good.bin", content)
	_, err := b.db.Collection(harmonia.CollectionArtifacts).UpdateOne(b.ctx, bson.D{{Key: "_id", Value: good.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "published", Value: true}, {Key: "verify_error", Value: "old failure"}}}})
	require.NoError(t, err)

	absGood := b.fileArtifact(t, "abs-good", "file://"+filepath.Join(root, "models/good.bin"), content)

	corrupt := append([]byte(nil), content...)
	corrupt[123_456] ^= 0xff
	writeFile(t, filepath.Join(root, "models/corrupt.bin"), corrupt)
	corrupted := b.fileArtifact(t, "corrupted", "models/corrupt.bin", content)

	writeFile(t, filepath.Join(root, "models/short.bin"), content[:1000])
	truncated := b.fileArtifact(t, "truncated", "models/short.bin", content)

	writeFile(t, filepath.Join(outside, "secret.bin"), content)
	escaping := b.fileArtifact(t, "escaping", filepath.Join(outside, "secret.bin"), content)
	rel, err := filepath.Rel(filepath.Join(root, "models"), filepath.Join(outside, "secret.bin"))
	require.NoError(t, err)
	require.NoError(t, os.Symlink(rel, filepath.Join(root, "models/link.bin")))
	linked := b.fileArtifact(t, "linked", "models/link.bin", content)

	missing := b.fileArtifact(t, "missing", "models/absent.bin", content)
	remote := b.fileArtifact(t, "remote", "s3://bucket/models/good.bin", content)

	h, err := worker.ValidateHandler(b.store, root)
	require.NoError(t, err)
	arts := []*harmonia.ModelArtifact{good, absGood, corrupted, truncated, escaping, linked, missing, remote}
	jobIDs := make([]bson.ObjectID, len(arts))
	for i, a := range arts {
		jobIDs[i] = b.enqueueFor(t, harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: a.ID})
	}
	jobs := runJobs(t, b, map[harmonia.JobType]worker.Handler{harmonia.JobValidate: h}, jobIDs...)

	for i, a := range arts[:2] {
		j := jobs[jobIDs[i]]
		require.Equal(t, harmonia.JobSuccess, j.Status, "%s: %s", a.Name, j.Error)
		var res worker.VerifyResult
		require.NoError(t, bson.Unmarshal(j.Result, &res))
		require.Equal(t, worker.VerifyResult{Path: filepath.FromSlash("models/good.bin"), SHA256: sha(content), SizeBytes: int64(len(content))}, res)
		got, err := b.store.GetArtifact(b.ctx, a.ID)
		require.NoError(t, err)
		require.NotNil(t, got.VerifiedAt)
		require.Equal(t, b.clock.Now(), *got.VerifiedAt)
		require.Empty(t, got.VerifyError)
	}
	for i, want := range map[int]string{2: "sha256 mismatch", 3: "size mismatch", 4: "escapes the root", 5: "escapes", 6: "missing", 7: "not among the allowed buckets"} {
		a, j := arts[i], jobs[jobIDs[i]]
		got, err := b.store.GetArtifact(b.ctx, a.ID)
		require.NoError(t, err)
		require.Contains(t, got.VerifyError, want, a.Name)
		require.Nil(t, got.VerifiedAt, a.Name)
		require.Contains(t, j.Error, want, a.Name)
		if a == missing {
			require.Equal(t, harmonia.JobPending, j.Status, "a missing file may yet arrive: the job retries")
		} else {
			require.Equal(t, harmonia.JobFailed, j.Status, "%s: a mismatch is not retried", a.Name)
			require.Equal(t, 1, j.Attempt, a.Name)
		}
	}
	log, err := b.store.Queue().JobLog(b.ctx, jobIDs[2])
	require.NoError(t, err)
	require.Len(t, log, 2)
	require.Equal(t, harmonia.LevelError, log[1].Level)

	_, err = worker.ValidateHandler(b.store, filepath.Join(root, "nope"))
	requireInvalid(t, err, worker.EntityWorker, "root")
}

// TestValidateClearsVerifiedAtOnCorruption: a file that verified once and
// was corrupted since loses its verified_at.
func TestValidateClearsVerifiedAtOnCorruption(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := t.TempDir()
	content := randomBytes(4096, 2)
	writeFile(t, filepath.Join(root, "m.bin"), content)
	a := b.fileArtifact(t, "m", "m.bin", content)
	h, err := worker.ValidateHandler(b.store, root)
	require.NoError(t, err)
	hs := map[harmonia.JobType]worker.Handler{harmonia.JobValidate: h}

	first := b.enqueueFor(t, harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: a.ID})
	require.Equal(t, harmonia.JobSuccess, runJobs(t, b, hs, first)[first].Status)
	content[0] ^= 1
	writeFile(t, filepath.Join(root, "m.bin"), content)
	second := b.enqueueFor(t, harmonia.JobValidate, harmonia.ValidateParams{ArtifactID: a.ID})
	require.Equal(t, harmonia.JobFailed, runJobs(t, b, hs, second)[second].Status)
	got, err := b.store.GetArtifact(b.ctx, a.ID)
	require.NoError(t, err)
	require.Nil(t, got.VerifiedAt)
	require.Contains(t, got.VerifyError, "sha256 mismatch")
}

// TestValidateHashMemoryIsConstant: hashing a 32 MiB file allocates far
// less than the file's size. Not parallel: it reads the process's
// allocation counter.
func TestValidateHashMemoryIsConstant(t *testing.T) {
	content := randomBytes(32<<20, 3)
	path := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, path, content)
	sum, n, err := worker.HashFile(t.Context(), path)
	require.NoError(t, err)
	require.Equal(t, sha(content), sum)
	require.EqualValues(t, len(content), n)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const calls = 4
	for range calls {
		_, _, err := worker.HashFile(t.Context(), path)
		require.NoError(t, err)
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / calls
	t.Logf("HashFile of 32 MiB: %d bytes allocated per call", perCall)
	// At most the 1 MiB buffer, when the pool had none to give (the race
	// detector makes sync.Pool drop some of what it is given); reading the
	// file into memory would take 32 MiB.
	require.Less(t, perCall, uint64(2<<20), "memory must not grow with the file's size")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err = worker.HashFile(ctx, path)
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = worker.HashFile(t.Context(), filepath.Join(t.TempDir(), "absent"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// noTempFiles fails t when dir holds a leftover download.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return
	}
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasSuffix(e.Name(), ".download"), "leftover %s", e.Name())
	}
}

func TestDownloadHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root, elsewhere := t.TempDir(), t.TempDir()
	content := randomBytes(200_000, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good":
			_, _ = w.Write(content)
		case "/flipped":
			bad := append([]byte(nil), content...)
			bad[len(bad)-1] ^= 1
			_, _ = w.Write(bad)
		case "/long":
			w.Header().Set("Transfer-Encoding", "chunked")
			_, _ = w.Write(append(content, 'x'))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	writeFile(t, filepath.Join(elsewhere, "src.bin"), content)

	cases := []struct {
		name, path, source string
		want               harmonia.JobStatus
		errText            string
	}{
		{"http", "models/http.bin", srv.URL + "/good", harmonia.JobSuccess, ""},
		{"file", "models/file.bin", "file://" + filepath.ToSlash(filepath.Join(elsewhere, "src.bin")), harmonia.JobSuccess, ""},
		{"flipped", "models/flipped.bin", srv.URL + "/flipped", harmonia.JobPending, "sha256 mismatch"},
		{"long", "models/long.bin", srv.URL + "/long", harmonia.JobPending, "size mismatch"},
		{"notfound", "models/nf.bin", srv.URL + "/absent", harmonia.JobFailed, "404"},
		{"escaping", filepath.Join(elsewhere, "out.bin"), srv.URL + "/good", harmonia.JobFailed, "escapes the root"},
	}
	writeFile(t, filepath.Join(root, "models/flipped.bin"), []byte("previous"))
	h, err := worker.DownloadHandler(b.store, root, &worker.DownloadOptions{
		Client: srv.Client(), AllowedDirs: []string{elsewhere}, AllowedHosts: []string{srv.Listener.Addr().String()}})
	require.NoError(t, err)
	var ids []bson.ObjectID
	arts := map[string]*harmonia.ModelArtifact{}
	for _, c := range cases {
		arts[c.name] = b.fileArtifact(t, c.name, c.path, content)
		ids = append(ids, b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: arts[c.name].ID, Source: c.source}))
	}
	jobs := runJobs(t, b, map[harmonia.JobType]worker.Handler{harmonia.JobDownload: h}, ids...)
	for i, c := range cases {
		j := jobs[ids[i]]
		require.Equal(t, c.want, j.Status, "%s: %s", c.name, j.Error)
		require.Contains(t, j.Error, c.errText, c.name)
		got, err := b.store.GetArtifact(b.ctx, arts[c.name].ID)
		require.NoError(t, err)
		dest := filepath.Join(root, c.path)
		if c.want == harmonia.JobSuccess {
			require.NotNil(t, got.VerifiedAt, c.name)
			data, err := os.ReadFile(dest)
			require.NoError(t, err)
			require.Equal(t, sha(content), sha(data), c.name)
		} else {
			require.Nil(t, got.VerifiedAt, c.name)
		}
		noTempFiles(t, filepath.Join(root, "models"))
	}
	prev, err := os.ReadFile(filepath.Join(root, "models/flipped.bin"))
	require.NoError(t, err)
	require.Equal(t, "previous", string(prev), "a failed download leaves the existing file alone")
	for _, name := range []string{"long.bin", "nf.bin"} {
		_, err := os.Stat(filepath.Join(root, "models", name))
		require.ErrorIs(t, err, os.ErrNotExist, "a failed download leaves nothing behind")
	}
	_, err = os.Stat(filepath.Join(elsewhere, "out.bin"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestDownloadRefusesBadScheme: Enqueue refuses a source outside the
// allowlist, and a bucket URL that carries endpoint options, credentials
// or no object key; so does the handler for a job written by other
// means. Bucket URLs of the object itself are accepted: whether their
// bucket is allowed is the handler's decision.
func TestDownloadRefusesBadScheme(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := t.TempDir()
	content := []byte("model")
	a := b.fileArtifact(t, "m", "m.bin", content)
	for _, src := range []string{"ftp://host/m.bin", "gopher://host/m", "/plain/path", "file://remote/m.bin",
		"s3://bucket/m.bin?endpoint=http://evil:9000", "s3://key:secret@bucket/m.bin", "gs://bucket/m.bin#frag",
		"az://container", "mem://scratch/", "s3:///m.bin", "s3:bucket/m.bin", "gcs://bucket/m.bin"} {
		_, err := b.store.Queue().Enqueue(b.ctx, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: a.ID, Source: src}, nil)
		requireInvalid(t, err, harmonia.EntityJob, "params.source")
	}
	for _, src := range []string{"s3://bucket/m.bin", "S3://bucket/dir/m.bin", "gs://bucket/m.bin", "az://container/m.bin", "mem://scratch/m.bin"} {
		_, err := b.store.Queue().Enqueue(b.ctx, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: a.ID, Source: src}, nil)
		require.NoError(t, err, src)
	}
	h, err := worker.DownloadHandler(b.store, root, nil)
	require.NoError(t, err)
	params, err := bson.Marshal(harmonia.DownloadParams{ArtifactID: a.ID, Source: "ftp://host/m.bin"})
	require.NoError(t, err)
	_, err = h(b.ctx, &harmonia.Job{Type: harmonia.JobDownload, Params: params}, nil)
	require.ErrorContains(t, err, `scheme "ftp" is not allowed`)
	j, err := b.store.Queue().Enqueue(b.ctx, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: a.ID, Source: "s3://bucket/m.bin"}, nil)
	require.NoError(t, err)
	_, err = h(b.ctx, j.Job, worker.NewJobLogger(b.store, j.Job))
	require.ErrorIs(t, err, worker.ErrSourceNotAllowed, "no bucket is allowed by default")
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestInferenceHandlerJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ok := b.fileArtifact(t, "ok", "ok.onnx", []byte("model"))
	bad := b.fileArtifact(t, "bad", "bad.onnx", []byte("model"))
	_, err := b.db.Collection(harmonia.CollectionArtifacts).UpdateOne(b.ctx, bson.D{{Key: "_id", Value: bad.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "verify_error", Value: "sha256 mismatch"}}}})
	require.NoError(t, err)

	var calls []string
	fn := func(ctx context.Context, a *harmonia.ModelArtifact, p harmonia.InferenceParams, log *worker.JobLogger) (any, error) {
		calls = append(calls, a.Name)
		return bson.D{{Key: "label", Value: "cat"}, {Key: "echo", Value: p.Input.Lookup("image").StringValue()}}, log.Log(ctx, harmonia.LevelInfo, "scored")
	}
	h, err := worker.InferenceHandler(b.store, fn)
	require.NoError(t, err)
	input := bson.D{{Key: "image", Value: "img-1"}}
	okJob := b.enqueueFor(t, harmonia.JobInference, bson.D{{Key: "artifact_id", Value: ok.ID}, {Key: "input", Value: input}})
	badJob := b.enqueueFor(t, harmonia.JobInference, harmonia.InferenceParams{ArtifactID: bad.ID})
	goneJob := b.enqueueFor(t, harmonia.JobInference, bson.D{{Key: "artifact_id", Value: bson.NewObjectID()}})
	hs := map[harmonia.JobType]worker.Handler{harmonia.JobInference: h}
	w, stop := startWorker(t, b, worker.Options{Handlers: hs, Concurrency: 1, PollInterval: 20 * time.Millisecond})
	waitFor(t, "three attempts", func() bool { s := w.Stats(); return s.Succeeded+s.Failed == 3 })
	stop()

	require.Equal(t, []string{"ok"}, calls)
	j := b.job(t, okJob)
	require.Equal(t, harmonia.JobSuccess, j.Status)
	require.Equal(t, "cat", j.Result.Lookup("label").StringValue())
	require.Equal(t, "img-1", j.Result.Lookup("echo").StringValue())
	require.Len(t, j.LogTail, 2)
	for id, want := range map[bson.ObjectID]string{badJob: "failed verification", goneJob: "no model_artifact"} {
		j := b.job(t, id)
		require.Equal(t, harmonia.JobFailed, j.Status, "not retried")
		require.Contains(t, j.Error, want)
	}
	_, err = worker.InferenceHandler(b.store, nil)
	requireInvalid(t, err, worker.EntityWorker, "fn")
}
