package worker

import (
	"context"
	"io"
	"os"

	"github.com/harmonia-ml/harmonia/internal/hashio"
)

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
	return hashio.Copy(ctx, dst, src)
}
