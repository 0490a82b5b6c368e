package bucket

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/harmonia-ml/harmonia/internal/hashio"
)

// Result is what [Set.Verify] and [Set.Write] found: the object's digest
// and size.
type Result struct {
	// Path is the object's path, as given.
	Path string
	// SHA256 is the object's digest, 64 lowercase hex characters.
	SHA256 string
	// SizeBytes is the object's size.
	SizeBytes int64
}

// Verify checks that the object at path has size bytes and the sha256
// digest sha (64 lowercase hex characters). It first compares size with
// the size in the object's attributes (one metadata request) and reads no
// byte of a mismatching object; it then streams the object once, hashing
// it as it comes, and compares the attributes after the read with those
// before, so an object replaced or deleted meanwhile is reported as
// changed rather than as a mismatch.
//
// Errors: an [*Error] whose Kind is [ErrInvalid], [ErrNotAllowed],
// [ErrNotFound], [ErrDenied], [ErrChanged], [ErrSizeMismatch],
// [ErrSHA256Mismatch], or nil with the store's or the network's error
// (ctx's included) as Err.
func (s *Set) Verify(ctx context.Context, path string, size int64, sha string) (*Result, error) {
	const op = "verify"
	r, err := s.open(ctx, op, path, size, func(has int64) (string, bool) {
		return fmt.Sprintf("size mismatch: the object has %d bytes, want %d", has, size), false
	})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	sum, n, err := hashio.Copy(ctx, nil, r)
	var be *Error
	switch {
	case errors.As(err, &be):
		return nil, be
	case err != nil:
		return nil, failure(op, path, err)
	}
	if sum != sha {
		return nil, &Error{Op: op, Path: Redact(path), Kind: ErrSHA256Mismatch,
			Reason: fmt.Sprintf("sha256 mismatch: the object has %s, want %s", sum, sha)}
	}
	return &Result{Path: path, SHA256: sum, SizeBytes: n}, nil
}

// unchanged checks, after n bytes were read, that the object key of b
// still has the attributes before.
func unchanged(ctx context.Context, b *blob.Bucket, key string, before *blob.Attributes, n int64) error {
	if n != before.Size {
		return changed(fmt.Sprintf("%d bytes were read where its metadata announced %d", n, before.Size))
	}
	after, err := b.Attributes(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return changed("it was deleted")
	}
	if err != nil {
		return err
	}
	if after.Size != before.Size || after.ETag != before.ETag || !after.ModTime.Equal(before.ModTime) {
		return changed("its size, ETag or modification time changed")
	}
	return nil
}

// changed returns the error of an object that changed while it was read.
func changed(why string) error { return &changedError{why: why} }

// changedError is an object changed while it was read.
type changedError struct{ why string }

func (e *changedError) Error() string { return "the object changed while it was read: " + e.why }

// sameTime reports whether a reader's modification time t agrees with
// attrs; a store that reports none on either side agrees.
func sameTime(t time.Time, attrs *blob.Attributes) bool {
	return t.IsZero() || attrs.ModTime.IsZero() || t.Equal(attrs.ModTime)
}
