package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sync"
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
