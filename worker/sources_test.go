package worker_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/worker"
)

// fileURL is the file:// URL of the absolute path p.
func fileURL(p string) string { return "file://" + filepath.ToSlash(p) }

// downloadCase is one download job of a test: where it fetches from and
// how it ends.
type downloadCase struct {
	name, source string
	ok           bool
}

// runDownloads enqueues one download job per case, each for its own
// artifact with content, runs them with h and checks each job's outcome:
// success puts the file in place; refusal fails the job for good at its
// first attempt with [worker.ErrSourceNotAllowed]'s error and writes
// nothing. It returns the error text of each refused job by case name.
func runDownloads(t *testing.T, b *bundle, root string, h worker.Handler, content []byte, cases []downloadCase) map[string]string {
	t.Helper()
	ids := make([]bson.ObjectID, len(cases))
	for i, c := range cases {
		a := b.fileArtifact(t, c.name, "out/"+c.name+".bin", content)
		ids[i] = b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: a.ID, Source: c.source})
	}
	jobs := runJobs(t, b, map[harmonia.JobType]worker.Handler{harmonia.JobDownload: h}, ids...)
	refusals := map[string]string{}
	for i, c := range cases {
		j := jobs[ids[i]]
		dest := filepath.Join(root, "out", c.name+".bin")
		if c.ok {
			require.Equal(t, harmonia.JobSuccess, j.Status, "%s: %s", c.name, j.Error)
			data, err := os.ReadFile(dest)
			require.NoError(t, err)
			require.Equal(t, content, data, c.name)
			continue
		}
		require.Equal(t, harmonia.JobFailed, j.Status, "%s is refused for good", c.name)
		require.Equal(t, 1, j.Attempt, "%s is not retried", c.name)
		require.Contains(t, j.Error, "params.source", c.name)
		require.Contains(t, j.Error, "allowed", c.name)
		_, err := os.Stat(dest)
		require.ErrorIs(t, err, os.ErrNotExist, "%s writes nothing", c.name)
		refusals[c.name] = j.Error
	}
	noTempFiles(t, filepath.Join(root, "out"))
	return refusals
}

func TestDownloadSourcesConfined(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root, allowed, outside := t.TempDir(), t.TempDir(), t.TempDir()
	content := randomBytes(50_000, 7)
	writeFile(t, filepath.Join(allowed, "src.bin"), content)
	writeFile(t, filepath.Join(allowed, "sub", "deep.bin"), content)
	writeFile(t, filepath.Join(outside, "secret.bin"), content)
	relOut, err := filepath.Rel(allowed, filepath.Join(outside, "secret.bin"))
	require.NoError(t, err)
	for link, target := range map[string]string{
		"abs-link":      filepath.Join(outside, "secret.bin"),
		"rel-link":      relOut,
		"dangling-link": filepath.Join("..", filepath.Base(outside), "absent.bin"),
		"inner-link":    "sub/deep.bin",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(allowed, link)))
	}

	var strayHits atomic.Int64
	stray := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		strayHits.Add(1)
		_, _ = w.Write(content)
	}))
	t.Cleanup(stray.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good":
			_, _ = w.Write(content)
		case "/redirect-in":
			http.Redirect(w, r, "/good", http.StatusFound)
		case "/redirect-out":
			http.Redirect(w, r, stray.URL+"/good", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	h, err := worker.DownloadHandler(b.store, root, &worker.DownloadOptions{
		AllowedDirs:  []string{allowed},
		AllowedHosts: []string{"127.0.0.1:" + port},
	})
	require.NoError(t, err)
	refusals := runDownloads(t, b, root, h, content, []downloadCase{
		{"file", fileURL(filepath.Join(allowed, "src.bin")), true},
		{"file-deep", fileURL(filepath.Join(allowed, "sub", "deep.bin")), true},
		{"inner-link", fileURL(filepath.Join(allowed, "inner-link")), true},
		{"http", srv.URL + "/good", true},
		{"redirect-in", srv.URL + "/redirect-in", true},

		{"outside", fileURL(filepath.Join(outside, "secret.bin")), false},
		{"outside-absent", fileURL(filepath.Join(outside, "absent.bin")), false},
		{"abs-link", fileURL(filepath.Join(allowed, "abs-link")), false},
		{"rel-link", fileURL(filepath.Join(allowed, "rel-link")), false},
		{"dangling-link", fileURL(filepath.Join(allowed, "dangling-link")), false},
		{"system-file", "file:///etc/hostname", false},
		{"dir", fileURL(allowed), false},
		{"other-port", stray.URL + "/good", false},
		{"other-name", "http://localhost:" + port + "/good", false},
		{"redirect-out", srv.URL + "/redirect-out", false},
	})
	require.Zero(t, strayHits.Load(), "no request reaches a host that is not allowed, not even through a redirect")

	// A file outside, absent, or behind a link out of the directory: the
	// same words, which tell nothing of the target.
	outsideText := refusals["outside"]
	for _, name := range []string{"outside-absent", "abs-link", "rel-link", "dangling-link", "system-file"} {
		require.Equal(t, outsideText, refusals[name], name)
	}
	for name, text := range refusals {
		require.NotContains(t, text, outside, name)
		require.NotContains(t, text, "secret", name)
		require.NotContains(t, text, strconv.Itoa(len(content)), name)
		require.NotContains(t, text, stray.URL, name)
	}
	require.Contains(t, refusals["redirect-out"], "redirect")
}

func TestDownloadNothingAllowedByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root, dir := t.TempDir(), t.TempDir()
	content := []byte("weights")
	writeFile(t, filepath.Join(dir, "m.bin"), content)
	writeFile(t, filepath.Join(root, "in-root.bin"), content)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(content)
	}))
	t.Cleanup(srv.Close)
	for i, opts := range []*worker.DownloadOptions{nil, {Client: srv.Client()}} {
		h, err := worker.DownloadHandler(b.store, root, opts)
		require.NoError(t, err)
		round := strconv.Itoa(i)
		runDownloads(t, b, root, h, content, []downloadCase{
			{"file" + round, fileURL(filepath.Join(dir, "m.bin")), false},
			{"root" + round, fileURL(filepath.Join(root, "in-root.bin")), false},
			{"http" + round, srv.URL + "/m.bin", false},
		})
	}
	require.Zero(t, hits.Load(), "nothing is fetched")
}

// TestDownloadReadsNoMoreThanTheArtifact: a source that never ends is
// read up to one byte past the artifact's size, and the error names no
// size of what was read.
func TestDownloadReadsNoMoreThanTheArtifact(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := t.TempDir()
	content := randomBytes(1000, 9)
	const endless = 1 << 30
	sent := make(chan int64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		copy(chunk, content)
		var n int64
		for n < endless {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		sent <- n
	}))
	t.Cleanup(srv.Close)
	h, err := worker.DownloadHandler(b.store, root, &worker.DownloadOptions{AllowedHosts: []string{srv.Listener.Addr().String()}})
	require.NoError(t, err)
	a := b.fileArtifact(t, "endless", "endless.bin", content)
	id := b.enqueueFor(t, harmonia.JobDownload, harmonia.DownloadParams{ArtifactID: a.ID, Source: srv.URL + "/endless"})
	j := runJobs(t, b, map[harmonia.JobType]worker.Handler{harmonia.JobDownload: h}, id)[id]
	require.Equal(t, harmonia.JobPending, j.Status, "a size mismatch may be retried")
	require.Equal(t, "size mismatch: the source goes on past the artifact's 1000 bytes", j.Error)
	n := <-sent
	t.Logf("the server wrote %d bytes", n)
	// The handler stopped reading at 1001 bytes and hung up; what the
	// server wrote beyond that sat in socket buffers (a few MB at most).
	require.Less(t, n, int64(endless/8), "the server could write %d bytes", n)
	_, err = os.Stat(filepath.Join(root, "endless.bin"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestDownloadOptionsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	root := t.TempDir()
	for _, tc := range []struct {
		opts  worker.DownloadOptions
		field string
	}{
		{worker.DownloadOptions{AllowedDirs: []string{filepath.Join(root, "absent")}}, "allowed_dirs"},
		{worker.DownloadOptions{AllowedDirs: []string{""}}, "allowed_dirs"},
		{worker.DownloadOptions{AllowedHosts: []string{""}}, "allowed_hosts"},
		{worker.DownloadOptions{AllowedHosts: []string{"http://example.com"}}, "allowed_hosts"},
		{worker.DownloadOptions{AllowedHosts: []string{"example.com/models"}}, "allowed_hosts"},
		{worker.DownloadOptions{AllowedHosts: []string{"user@example.com"}}, "allowed_hosts"},
		{worker.DownloadOptions{AllowedHosts: []string{"example.com:http"}}, "allowed_hosts"},
	} {
		_, err := worker.DownloadHandler(b.store, root, &tc.opts)
		requireInvalid(t, err, worker.EntityWorker, tc.field)
	}
	_, err := worker.DownloadHandler(b.store, root, &worker.DownloadOptions{
		AllowedDirs: []string{root}, AllowedHosts: []string{"example.com", "Example.com:8443", "[::1]:8080", "10.0.0.1"}})
	require.NoError(t, err)
}
