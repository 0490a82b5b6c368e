package worker

import (
	"context"
	"errors"
	"io"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/bucket"
)

// ValidateOptions are the options of [ValidateHandlerWith].
type ValidateOptions struct {
	// Buckets are the buckets an artifact's path may name in object
	// storage (s3://, gs://, az://, mem://, or file:// under an allowed
	// directory); see package [bucket] for the allow-list and the
	// openers. An object's size is compared with its attributes before
	// any byte is read. Defaults to none: an artifact whose path is in
	// object storage fails its validation as not allowed.
	Buckets *bucket.Set
}

// inBucket reports whether path is read and written through buckets
// rather than under the handler's root: a URL other than file://, or a
// file:// URL that buckets admits.
func inBucket(buckets *bucket.Set, path string) bool {
	return bucket.IsBucketPath(path) || buckets.Admits(path)
}

// checkArtifact checks a's file, in a bucket or under root.
func checkArtifact(ctx context.Context, root string, buckets *bucket.Set, a *harmonia.ModelArtifact) (*VerifyResult, error) {
	if !inBucket(buckets, a.Path) {
		return checkFile(ctx, root, a)
	}
	if a.Hashes.SHA256 == "" {
		return nil, mismatch("artifact %s has no sha256 to check its object against", a.Key())
	}
	res, err := buckets.Verify(ctx, a.Path, a.SizeBytes, a.Hashes.SHA256)
	var be *bucket.Error
	switch {
	case errors.As(err, &be) && be.Kind != nil:
		// A verdict on the object: recorded in the artifact's
		// verify_error.
		return nil, &verifyFailure{msg: err.Error(), permanent: !be.Transient}
	case err != nil:
		return nil, bucketErr(err)
	}
	return &VerifyResult{Path: res.Path, SHA256: res.SHA256, SizeBytes: res.SizeBytes}, nil
}

// writeArtifact streams src into a's object in buckets, committing it
// only when its size and sha256 are a's.
func writeArtifact(ctx context.Context, buckets *bucket.Set, src io.Reader, a *harmonia.ModelArtifact) (*VerifyResult, error) {
	res, err := buckets.Write(ctx, a.Path, src, a.SizeBytes, a.Hashes.SHA256)
	if err != nil {
		return nil, bucketErr(err)
	}
	return &VerifyResult{Path: res.Path, SHA256: res.SHA256, SizeBytes: res.SizeBytes}, nil
}

// bucketErr makes a bucket error the job's: a permanent one fails the
// job for good, a transient one is retried. Any other error, nil
// included, is returned as it is.
func bucketErr(err error) error {
	if bucket.IsTransient(err) {
		return err
	}
	return harmonia.Permanent(err)
}
