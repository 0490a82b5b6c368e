// Package hashio streams data while hashing it with SHA-256: the one
// copy loop the validate and download handlers and the bucket package
// share.
package hashio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"
)

// bufSize is the size of the buffers data is streamed through.
const bufSize = 1 << 20

// bufs holds the streaming buffers, so that hashing allocates nothing in
// proportion to the size of what is hashed.
var bufs = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

// Copy reads src to its end, hashing it with SHA-256 and writing it to
// dst unless dst is nil. It returns the digest as 64 lowercase hex
// characters and the number of bytes read, and stops with ctx's error
// when ctx is done.
func Copy(ctx context.Context, dst io.Writer, src io.Reader) (string, int64, error) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
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
