package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"

	"gocloud.dev/blob"
)

// Reader streams an object of a [Set], opened by [Set.Open]. At the end
// of the object it checks that the object did not change while it was
// read: its Read returns an [*Error] of Kind [ErrChanged] in place of
// io.EOF when it did. Every error of its Read is an [*Error]. A Reader
// is not safe for concurrent use; close it when done.
type Reader struct {
	ctx    context.Context // the Open call's: the blob.Reader keeps it too
	op     string
	path   string
	b      *blob.Bucket
	key    string
	r      *blob.Reader
	lim    io.Reader
	before *blob.Attributes
	n      int64
	err    error
}

// Open opens the object at path for reading, provided its bucket is in
// s and the size in its attributes is size. It compares the sizes with
// one metadata request and sends no request for the object's bytes when
// they differ. The Reader gives at most size+1 bytes and reports an
// object replaced, deleted, shortened or lengthened while it was read as
// [ErrChanged]. The Reader keeps ctx: once ctx is done, its Read fails.
//
// Errors: an [*Error] whose Kind is [ErrInvalid], [ErrNotAllowed],
// [ErrDenied] (permanent), [ErrNotFound], [ErrChanged] or
// [ErrSizeMismatch] (transient: the object may yet be replaced by the
// right one), or nil with the store's or the network's error as Err.
// The size mismatch names only the expected size, not the object's: a
// caller who chose path learns nothing from it.
func (s *Set) Open(ctx context.Context, path string, size int64) (*Reader, error) {
	return s.open(ctx, "read", path, size, func(int64) (string, bool) {
		return fmt.Sprintf("size mismatch: the object does not have the expected %d bytes", size), true
	})
}

// open opens the object at path as [Set.Open] does; sizeMismatch, given
// the object's size, returns the reason and transience of a mismatch.
func (s *Set) open(ctx context.Context, op, path string, size int64, sizeMismatch func(has int64) (string, bool)) (*Reader, error) {
	b, key, err := s.locate(op, path)
	if err != nil {
		return nil, err
	}
	before, err := b.Attributes(ctx, key)
	if err != nil {
		return nil, failure(op, path, err)
	}
	if before.Size != size {
		reason, transient := sizeMismatch(before.Size)
		return nil, &Error{Op: op, Path: Redact(path), Kind: ErrSizeMismatch, Transient: transient, Reason: reason}
	}
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, failure(op, path, err)
	}
	if r.Size() != before.Size || !sameTime(r.ModTime(), before) {
		r.Close()
		return nil, failure(op, path, changed("its reader reports other attributes than its metadata"))
	}
	return &Reader{ctx: ctx, op: op, path: path, b: b, key: key, r: r,
		lim: io.LimitReader(r, before.Size+1), before: before}, nil
}

// Size returns the object's size, from its attributes.
func (r *Reader) Size() int64 { return r.before.Size }

// Read reads the object; see [Reader].
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	m, err := r.lim.Read(p)
	r.n += int64(m)
	switch {
	case errors.Is(err, io.EOF):
		if cerr := unchanged(r.ctx, r.b, r.key, r.before, r.n); cerr != nil {
			err = failure(r.op, r.path, cerr)
		}
	case err != nil:
		err = failure(r.op, r.path, err)
	}
	r.err = err
	return m, err
}

// Close closes the object's reader.
func (r *Reader) Close() error {
	if err := r.r.Close(); err != nil {
		return failure(r.op, r.path, err)
	}
	return nil
}
