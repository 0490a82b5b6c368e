package harmonia

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DownloadHandler returns the handler of [JobDownload] jobs
// ([DownloadParams]). It fetches the source (file, http or https only;
// through client, or http.DefaultClient when nil) into a temporary file
// beside the artifact's local path under root, checking size and sha256
// as it streams, and renames it into place only when both match; on any
// failure the temporary file is removed, and an existing file at the
// path is left as it was. A match sets the artifact's verified_at. The
// job's result is a [VerifyResult].
//
// A file:// source is read wherever it is: root confines what is written,
// not what is read.
//
// Errors: [CodeInvalid] when store is nil or root is not a directory.
func DownloadHandler(store *Store, root string, client *http.Client) (Handler, error) {
	root, err := checkHandlerArgs(store, root)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, job *Job, log *JobLogger) (any, error) {
		var p DownloadParams
		a, err := paramsArtifact(ctx, store, job, &p)
		if err != nil {
			return nil, err
		}
		if a.Hashes.SHA256 == "" {
			return nil, Permanent(fmt.Errorf("artifact %s has no sha256: a download could not be checked", a.Key()))
		}
		rel, err := localPath(root, a.Path)
		if err != nil {
			return nil, Permanent(err)
		}
		_ = log.Logf(ctx, LevelInfo, "downloading %s into %s, %d bytes", p.Source, rel, a.SizeBytes)
		src, err := openSource(ctx, client, p.Source, a.SizeBytes)
		if err != nil {
			return nil, err
		}
		defer src.Close()
		res, err := fetchInto(ctx, root, rel, src, a)
		if err != nil {
			_ = log.Log(ctx, LevelError, err.Error())
			return nil, err
		}
		return markVerified(ctx, store, a, log, res, "size and sha256 match; file in place")
	}, nil
}

// openSource opens a download source; want is the expected size.
func openSource(ctx context.Context, client *http.Client, source string, want int64) (io.ReadCloser, error) {
	if msg := sourceProblem(source); msg != "" {
		return nil, Permanent(fmt.Errorf("source %q: %s", source, msg))
	}
	u, err := url.Parse(source)
	if err != nil {
		return nil, Permanent(err)
	}
	if strings.EqualFold(u.Scheme, "file") {
		return os.Open(filepath.FromSlash(u.Path))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return nil, Permanent(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := fmt.Errorf("GET %s: %s", source, resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
			return nil, Permanent(err)
		}
		return nil, err
	}
	if resp.ContentLength >= 0 && resp.ContentLength != want {
		resp.Body.Close()
		return nil, fmt.Errorf("size mismatch: %s has %d bytes, want %d", source, resp.ContentLength, want)
	}
	return resp.Body, nil
}

// fetchInto streams src into a temporary file beside rel under root and
// renames it to rel when its size and sha256 are a's; otherwise it removes
// the temporary file.
func fetchInto(ctx context.Context, root, rel string, src io.Reader, a *ModelArtifact) (_ *VerifyResult, err error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	dir := filepath.Dir(rel)
	if err := r.MkdirAll(dir, 0o755); err != nil {
		return nil, Permanent(fmt.Errorf("cannot create %s under %s: %w", dir, root, err))
	}
	tmp := filepath.Join(dir, "."+filepath.Base(rel)+"."+rand.Text()[:12]+".download")
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			_ = r.Remove(tmp)
		}
	}()
	sum, n, err := hashCopy(ctx, f, io.LimitReader(src, a.SizeBytes+1))
	switch {
	case err != nil:
		return nil, err
	case n != a.SizeBytes:
		return nil, fmt.Errorf("size mismatch: the source has %s bytes, want %d", sizeText(n, a.SizeBytes), a.SizeBytes)
	case sum != a.Hashes.SHA256:
		return nil, fmt.Errorf("sha256 mismatch: the source has %s, want %s", sum, a.Hashes.SHA256)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return nil, err
	}
	if err := r.Rename(tmp, rel); err != nil {
		return nil, err
	}
	return &VerifyResult{Path: rel, SHA256: sum, SizeBytes: n}, nil
}

func sizeText(n, want int64) string {
	if n > want {
		return fmt.Sprintf("more than %d", want)
	}
	return fmt.Sprint(n)
}
