package bucket

import (
	"context"
	"fmt"
	"io"

	"gocloud.dev/blob"

	"github.com/harmonia-ml/harmonia/internal/hashio"
)

// Write streams src into the object at path, hashing it in flight, and
// commits the object only when src gave exactly size bytes whose sha256
// is sha. It reads at most one byte more than size from src. On any
// failure (a mismatch, an error of src or of the store, ctx done) it
// cancels the upload, so no object appears at path and an object already
// there is left as it was. The errors name no size or digest of what src
// gave: whoever chose src learns nothing from them.
//
// Errors: an [*Error] whose Kind is [ErrInvalid], [ErrNotAllowed],
// [ErrDenied], [ErrSizeMismatch] or [ErrSHA256Mismatch] (both transient:
// the source may be fixed), or nil with the error of src, of the store
// or of ctx as Err.
func (s *Set) Write(ctx context.Context, path string, src io.Reader, size int64, sha string) (*Result, error) {
	const op = "write"
	b, key, err := s.locate(op, path)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return nil, failure(op, path, err)
	}
	dst := &trackingWriter{w: w}
	sum, n, err := hashio.Copy(ctx, dst, io.LimitReader(src, size+1))
	var fail *Error
	switch {
	case dst.err != nil:
		fail = failure(op, path, dst.err)
	case err != nil:
		fail = &Error{Op: op, Path: Redact(path), Transient: true, Reason: "reading the source", Err: redactErr(err)}
	case n != size:
		fail = &Error{Op: op, Path: Redact(path), Kind: ErrSizeMismatch, Transient: true,
			Reason: fmt.Sprintf("size mismatch: the source does not have the expected %d bytes", size)}
	case sum != sha:
		fail = &Error{Op: op, Path: Redact(path), Kind: ErrSHA256Mismatch, Transient: true,
			Reason: fmt.Sprintf("sha256 mismatch: the source's content does not have the sha256 %s", sha)}
	}
	if fail != nil {
		cancel()
		_ = w.Close()
		return nil, fail
	}
	if err := w.Close(); err != nil {
		return nil, failure(op, path, err)
	}
	return &Result{Path: path, SHA256: sum, SizeBytes: n}, nil
}

// trackingWriter remembers the first error of its writer, so a failure
// of the store is told from one of the source.
type trackingWriter struct {
	w   io.Writer
	err error
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}
