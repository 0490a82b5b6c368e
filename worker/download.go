package worker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/harmonia-ml/harmonia"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/harmonia-ml/harmonia/bucket"
)

// DownloadOptions says where [DownloadHandler] may fetch from. A nil
// *DownloadOptions, like the zero value, admits no source at all: every
// download is refused until directories, hosts or buckets are allowed.
type DownloadOptions struct {
	// Client fetches http and https sources. The handler works on a copy
	// whose redirects are checked against AllowedHosts before the
	// client's own CheckRedirect runs. Defaults to http.DefaultClient.
	Client *http.Client
	// AllowedDirs are the directories whose files a file:// source may
	// name, at any depth. A file is read through [os.Root], so a
	// symbolic link that leaves its directory is refused, and only
	// regular files are read. Relative directories are taken from the
	// working directory when the handler is made; each must exist.
	// Defaults to none: no file of the local file system is read.
	AllowedDirs []string
	// AllowedHosts are the hosts an http or https source, and every
	// redirect it answers with, may name: "host" admits the host on any
	// port, "host:port" on that port only (80 for http and 443 for https
	// when the URL names none). Names are compared as written, without
	// resolving them: allow names whose addresses you trust. Defaults to
	// none: nothing is fetched over the network.
	AllowedHosts []string
	// Buckets are the buckets a download may read from and write to.
	// A source in object storage (s3://models/resnet.onnx, gs://…,
	// az://…, mem://…) is read only from these: its size is compared
	// with the artifact's from its attributes before any byte is read,
	// and an object replaced while it is read fails the attempt (retried).
	// An artifact's path in object storage is written only into these:
	// the download streams into the object, hashing in flight, and
	// commits it only when its size and sha256 match; a failed or
	// cancelled download leaves no object there. See package [bucket].
	// Defaults to none: a bucket source is refused as not allowed, and a
	// download into object storage fails as not allowed.
	Buckets *bucket.Set
}

// ErrSourceNotAllowed is the cause of the error a download job fails with
// when its source is outside the handler's DownloadOptions: a file
// outside AllowedDirs (or reached through a symbolic link that leaves
// them), a host outside AllowedHosts or a redirect to one, or an object
// in a bucket outside Buckets. The job fails for good ([Permanent]) with
// code [CodeInvalid] and field "params.source". The error says nothing
// about the target: not whether it exists, nor its size, nor where a
// link points. Test for it with
//
//	errors.Is(err, worker.ErrSourceNotAllowed)
var ErrSourceNotAllowed = errors.New("download source not allowed")

// DownloadHandler returns the handler of [JobDownload] jobs
// ([DownloadParams]). It fetches the source, if opts admits it, into a
// temporary file beside the artifact's local path under root, checking
// size and sha256 as it streams, and renames it into place only when
// both match; on any failure the temporary file is removed, and an
// existing file at the path is left as it was. It reads at most one byte
// more than the artifact's size from any source. A source in object
// storage (s3://models/resnet.onnx) is read from opts.Buckets: the
// object's size is checked against the artifact's from its attributes
// before any byte is read, a missing object and one changed while it is
// read fail the attempt for a retry, a denied read fails for good. An
// artifact whose path names an object in opts.Buckets
// (s3://models/x.onnx) is streamed into that object instead, hashing in
// flight, and the object is committed only whole: a failed or cancelled
// download leaves none. A match sets the artifact's verified_at. The
// job's result is a [VerifyResult].
//
// Whoever may enqueue jobs chooses the source, so opts confines it: a
// source outside opts fails with [ErrSourceNotAllowed], and the errors of
// admitted sources name no sizes or digests of what was read.
//
// Errors: [CodeInvalid] when store is nil, root is not a directory, an
// allowed directory is not one, or an allowed host is not a host name
// with an optional port.
func DownloadHandler(store *harmonia.Store, root string, opts *DownloadOptions) (Handler, error) {
	root, err := checkHandlerArgs(store, root)
	if err != nil {
		return nil, err
	}
	src, err := newSources(opts)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, job *harmonia.Job, log *JobLogger) (any, error) {
		var p harmonia.DownloadParams
		a, err := paramsArtifact(ctx, store, job, &p, &p.ArtifactID)
		if err != nil {
			return nil, err
		}
		if a.Hashes.SHA256 == "" {
			return nil, harmonia.Permanent(fmt.Errorf("artifact %s has no sha256: a download could not be checked", a.Key()))
		}
		toBucket, rel := inBucket(src.buckets, a.Path), a.Path
		if !toBucket {
			if rel, err = localPath(root, a.Path); err != nil {
				return nil, harmonia.Permanent(err)
			}
		}
		_ = log.Logf(ctx, harmonia.LevelInfo, "downloading %s into %s, %d bytes", bucket.Redact(p.Source), rel, a.SizeBytes)
		body, err := src.open(ctx, p.Source, a.SizeBytes)
		if err != nil {
			_ = log.Log(ctx, harmonia.LevelError, err.Error())
			return nil, err
		}
		defer body.Close()
		var res *VerifyResult
		if toBucket {
			res, err = writeArtifact(ctx, src.buckets, body, a)
		} else {
			res, err = fetchInto(ctx, root, rel, body, a)
			// A read of a bucket source fails with its bucket's verdict.
			err = bucketErr(err)
		}
		if err != nil {
			_ = log.Log(ctx, harmonia.LevelError, err.Error())
			return nil, err
		}
		return markVerified(ctx, store, a, log, res, "size and sha256 match; file in place")
	}, nil
}

// fetchInto streams src into a temporary file beside rel under root and
// renames it to rel when its size and sha256 are a's; otherwise it removes
// the temporary file.
func fetchInto(ctx context.Context, root, rel string, src io.Reader, a *harmonia.ModelArtifact) (_ *VerifyResult, err error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	dir := filepath.Dir(rel)
	if err := r.MkdirAll(dir, 0o755); err != nil {
		return nil, harmonia.Permanent(fmt.Errorf("cannot create %s under %s: %w", dir, root, err))
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
	case n < a.SizeBytes:
		return nil, fmt.Errorf("size mismatch: the source ended before the artifact's %d bytes", a.SizeBytes)
	case n > a.SizeBytes:
		return nil, fmt.Errorf("size mismatch: the source goes on past the artifact's %d bytes", a.SizeBytes)
	case sum != a.Hashes.SHA256:
		return nil, fmt.Errorf("sha256 mismatch: the source's content does not have the artifact's sha256 %s", a.Hashes.SHA256)
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
