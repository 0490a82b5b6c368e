package harmonia

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// hashBufSize is the size of the buffers files are streamed through.
const hashBufSize = 1 << 20

// hashBufs holds the streaming buffers, so that hashing a file allocates
// nothing in proportion to its size.
var hashBufs = sync.Pool{New: func() any {
	b := make([]byte, hashBufSize)
	return &b
}}

// HashFile returns the SHA-256 digest (64 lowercase hex characters) and
// the size of the file at path. It streams the file through a pooled
// buffer, so its memory does not grow with the file's size, and stops
// when ctx is cancelled. The validate and download handlers hash with the
// same code.
//
// Errors: the file system's (test them with errors.Is and fs.ErrNotExist,
// for example) and ctx's.
func HashFile(ctx context.Context, path string) (sha256Hex string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return hashCopy(ctx, nil, f)
}

// hashCopy reads src to its end, hashing it with SHA-256 and writing it
// to dst unless dst is nil.
func hashCopy(ctx context.Context, dst io.Writer, src io.Reader) (string, int64, error) {
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	buf := *bp
	h := sha256.New()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", n, err
		}
		m, rerr := src.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			if dst != nil {
				if _, err := dst.Write(buf[:m]); err != nil {
					return "", n, err
				}
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", n, rerr
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// VerifyResult is the result the validate and download handlers record: the
// digest and size of the file they checked, and its path under the root.
type VerifyResult struct {
	// Path is the file's path relative to the handler's root.
	Path string `bson:"path" json:"path"`
	// SHA256 is the file's digest, 64 lowercase hex characters.
	SHA256 string `bson:"sha256" json:"sha256"`
	// SizeBytes is the file's size.
	SizeBytes int64 `bson:"size_bytes" json:"size_bytes"`
}

// verifyFailure is a file that does not match its artifact; the artifact
// records it in verify_error.
type verifyFailure struct {
	msg       string
	permanent bool
}

func (e *verifyFailure) Error() string { return e.msg }

func mismatch(format string, args ...any) error {
	return &verifyFailure{msg: fmt.Sprintf(format, args...), permanent: true}
}

// ValidateHandler returns the handler of [JobValidate] jobs
// ([ValidateParams]). It streams the artifact's local file, its path
// taken under root, and checks its size and sha256. A match sets the
// artifact's verified_at and clears its verify_error; a mismatch, a
// missing file or a path that leaves root (through "..", an absolute path
// elsewhere or a symbolic link) sets verify_error, clears verified_at and
// fails the job, for good unless the file was missing. The job's result is
// a [VerifyResult].
//
// Errors: [CodeInvalid] when store is nil or root is not a directory.
func ValidateHandler(store *Store, root string) (Handler, error) {
	root, err := checkHandlerArgs(store, root)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, job *Job, log *JobLogger) (any, error) {
		var p ValidateParams
		a, err := paramsArtifact(ctx, store, job, &p)
		if err != nil {
			return nil, err
		}
		_ = log.Logf(ctx, LevelInfo, "validating %s: %s, %d bytes", a.Key(), a.Path, a.SizeBytes)
		res, err := checkFile(ctx, root, a)
		var vf *verifyFailure
		if errors.As(err, &vf) {
			_ = log.Log(ctx, LevelError, vf.msg)
			if rerr := store.recordVerification(ctx, a, vf.msg); rerr != nil {
				return nil, rerr
			}
			if vf.permanent {
				return nil, Permanent(err)
			}
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		return markVerified(ctx, store, a, log, res, "size and sha256 match")
	}, nil
}

// markVerified records a's file as verified, logs note and returns res as
// the job's result.
func markVerified(ctx context.Context, store *Store, a *ModelArtifact, log *JobLogger, res *VerifyResult, note string) (any, error) {
	if err := store.recordVerification(ctx, a, ""); err != nil {
		return nil, err
	}
	_ = log.Log(ctx, LevelInfo, note)
	return res, nil
}

// checkFile streams a's local file under root and compares it with a.
func checkFile(ctx context.Context, root string, a *ModelArtifact) (*VerifyResult, error) {
	if a.Hashes.SHA256 == "" {
		return nil, mismatch("artifact %s has no sha256 to check its file against", a.Key())
	}
	rel, err := localPath(root, a.Path)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &verifyFailure{msg: fmt.Sprintf("file %s is missing under %s", rel, root)}
	case err != nil:
		return nil, mismatch("cannot open %s under %s: %v", rel, root, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, mismatch("%s is not a regular file", rel)
	}
	if fi.Size() != a.SizeBytes {
		return nil, mismatch("size mismatch: %s has %d bytes, want %d", rel, fi.Size(), a.SizeBytes)
	}
	sum, n, err := hashCopy(ctx, nil, f)
	if err != nil {
		return nil, err
	}
	if n != a.SizeBytes {
		return nil, &verifyFailure{msg: fmt.Sprintf("size mismatch: %s changed while it was read: %d bytes, want %d", rel, n, a.SizeBytes)}
	}
	if sum != a.Hashes.SHA256 {
		return nil, mismatch("sha256 mismatch: %s has %s, want %s", rel, sum, a.Hashes.SHA256)
	}
	return &VerifyResult{Path: rel, SHA256: sum, SizeBytes: n}, nil
}

// recordVerification sets verified_at (problem "") or verify_error on a,
// provided its path, size and sha256 are still those that were checked.
func (s *Store) recordVerification(ctx context.Context, a *ModelArtifact, problem string) error {
	filter := bson.D{{Key: "_id", Value: a.ID}, {Key: "path", Value: a.Path}, {Key: "size_bytes", Value: a.SizeBytes}}
	if a.Hashes.SHA256 == "" {
		filter = append(filter, bson.E{Key: "hashes.sha256", Value: bson.D{{Key: "$exists", Value: false}}})
	} else {
		filter = append(filter, bson.E{Key: "hashes.sha256", Value: a.Hashes.SHA256})
	}
	now := s.Now()
	set, unset := bson.D{{Key: "verified_at", Value: now}, {Key: "updated_at", Value: now}}, "verify_error"
	if problem != "" {
		set, unset = bson.D{{Key: "verify_error", Value: cut(problem, MaxErrorBytes)}, {Key: "updated_at", Value: now}}, "verified_at"
	}
	res, err := s.cols.artifacts.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: set}, {Key: "$unset", Value: bson.D{{Key: unset, Value: ""}}}})
	if err != nil {
		return wrapErr(EntityArtifact, "record verification", err)
	}
	if res.MatchedCount == 0 {
		return conflictf(EntityArtifact, "path", "artifact %s was changed or deleted while its file was checked", a.ID.Hex())
	}
	return nil
}

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

// InferenceFunc runs an inference with artifact, the model a job names,
// on params.Input. Its result becomes the job's result (a document, or
// nil); a [Permanent] error fails the job without further attempts.
type InferenceFunc func(ctx context.Context, artifact *ModelArtifact, params InferenceParams, log *JobLogger) (any, error)

// InferenceHandler returns the handler of [JobInference] jobs
// ([InferenceParams]): it decodes the params, loads the artifact, refuses
// one whose verification failed (verify_error set), and calls fn. The
// worker around it does the rest of the job's lifecycle: lease,
// heartbeats, result, retries.
//
// Errors: [CodeInvalid] when store or fn is nil.
func InferenceHandler(store *Store, fn InferenceFunc) (Handler, error) {
	if store == nil {
		return nil, invalidf(EntityWorker, "store", "a *Store is required (from harmonia.Open)")
	}
	if fn == nil {
		return nil, invalidf(EntityWorker, "fn", "an InferenceFunc is required")
	}
	return func(ctx context.Context, job *Job, log *JobLogger) (any, error) {
		var p InferenceParams
		a, err := paramsArtifact(ctx, store, job, &p)
		if err != nil {
			return nil, err
		}
		if a.VerifyError != "" {
			return nil, Permanent(fmt.Errorf("artifact %s failed verification: %s", a.Key(), a.VerifyError))
		}
		_ = log.Logf(ctx, LevelInfo, "running inference with %s", a.Key())
		return fn(ctx, a, p, log)
	}, nil
}

// artifactParams are the built-in params types, which all name an
// artifact.
type artifactParams interface {
	Validate() error
	artifactID() bson.ObjectID
}

func (p *ValidateParams) artifactID() bson.ObjectID  { return p.ArtifactID }
func (p *DownloadParams) artifactID() bson.ObjectID  { return p.ArtifactID }
func (p *InferenceParams) artifactID() bson.ObjectID { return p.ArtifactID }

// paramsArtifact decodes job's params into p and loads the artifact they
// name. Bad params and a missing artifact are permanent failures.
func paramsArtifact(ctx context.Context, store *Store, job *Job, p artifactParams) (*ModelArtifact, error) {
	if err := job.DecodeParams(p); err != nil {
		return nil, Permanent(err)
	}
	if err := p.Validate(); err != nil {
		return nil, Permanent(err)
	}
	a, err := store.GetArtifact(ctx, p.artifactID())
	if errors.Is(err, ErrNotFound) {
		return nil, Permanent(err)
	}
	return a, err
}

// checkHandlerArgs checks a built-in handler's store and root and returns
// root made absolute.
func checkHandlerArgs(store *Store, root string) (string, error) {
	if store == nil {
		return "", invalidf(EntityWorker, "store", "a *Store is required (from harmonia.Open)")
	}
	if root == "" {
		return "", invalidf(EntityWorker, "root", "a root directory is required: artifact paths are taken under it")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", invalidf(EntityWorker, "root", "%v", err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return "", invalidf(EntityWorker, "root", "%s must be an existing directory", abs)
	}
	return abs, nil
}

// localPath returns p, an artifact's local path or file:// URI, as a path
// relative to root. A relative path is taken under root; an absolute one
// must lie under it. Any path that leaves root lexically fails here;
// os.Root refuses the ones that leave it through symbolic links.
func localPath(root, p string) (string, error) {
	if scheme, ok := uriScheme(p); ok {
		if scheme != "file" {
			return "", mismatch("path %s is not a local file (scheme %s)", p, scheme)
		}
		u, err := url.Parse(p)
		if err != nil {
			return "", mismatch("path %s: %v", p, err)
		}
		p = u.Path
	}
	rel := filepath.FromSlash(p)
	if filepath.IsAbs(rel) {
		var err error
		if rel, err = filepath.Rel(root, rel); err != nil {
			return "", mismatch("path %s escapes the root %s", p, root)
		}
	}
	if !filepath.IsLocal(rel) {
		return "", mismatch("path %s escapes the root %s", p, root)
	}
	return rel, nil
}
