package worker

import (
	"context"
	"errors"
	"fmt"
	"github.com/harmonia-ml/harmonia"
	"io/fs"
	"os"
)

// VerifyResult is the result the validate and download handlers record: the
// digest and size of the file they checked, and its path under the root.
type VerifyResult struct {
	// Path is the file's path relative to the handler's root, or the
	// object's URL for an artifact in a bucket.
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
func ValidateHandler(store *harmonia.Store, root string) (Handler, error) {
	return ValidateHandlerWith(store, root, nil)
}

// ValidateHandlerWith is [ValidateHandler] with options: an artifact
// whose path names an object in one of opts.Buckets (s3://models/x.onnx)
// is checked there, its size against the object's attributes before any
// byte is read. A missing object, a denied read, an object changed while
// it was read and a mismatch each set verify_error with their own words;
// the job is retried after a missing or changed object and fails for
// good after the others. A nil opts is the zero value.
//
// Errors: [CodeInvalid] when store is nil or root is not a directory.
func ValidateHandlerWith(store *harmonia.Store, root string, opts *ValidateOptions) (Handler, error) {
	var o ValidateOptions
	if opts != nil {
		o = *opts
	}
	root, err := checkHandlerArgs(store, root)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, job *harmonia.Job, log *JobLogger) (any, error) {
		var p harmonia.ValidateParams
		a, err := paramsArtifact(ctx, store, job, &p, &p.ArtifactID)
		if err != nil {
			return nil, err
		}
		_ = log.Logf(ctx, harmonia.LevelInfo, "validating %s: %s, %d bytes", a.Key(), a.Path, a.SizeBytes)
		res, err := checkArtifact(ctx, root, o.Buckets, a)
		var vf *verifyFailure
		if errors.As(err, &vf) {
			_ = log.Log(ctx, harmonia.LevelError, vf.msg)
			if rerr := store.RecordVerification(ctx, a, vf.msg); rerr != nil {
				return nil, rerr
			}
			if vf.permanent {
				return nil, harmonia.Permanent(err)
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
func markVerified(ctx context.Context, store *harmonia.Store, a *harmonia.ModelArtifact, log *JobLogger, res *VerifyResult, note string) (any, error) {
	if err := store.RecordVerification(ctx, a, ""); err != nil {
		return nil, err
	}
	_ = log.Log(ctx, harmonia.LevelInfo, note)
	return res, nil
}

// checkFile streams a's local file under root and compares it with a.
func checkFile(ctx context.Context, root string, a *harmonia.ModelArtifact) (*VerifyResult, error) {
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
