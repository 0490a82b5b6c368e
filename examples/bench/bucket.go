package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "gocloud.dev/blob/fileblob" // the local side of the comparison

	"github.com/harmonia-ml/harmonia/bucket"
	"github.com/harmonia-ml/harmonia/bucket/buckettest"
)

// benchS3Verify verifies the same random bytes as an object on an
// in-process S3 server (gofakes3 on a loopback listener, read through
// s3blob and the AWS SDK) and as a local file (a file:// bucket), three
// times each, and compares the best runs.
func benchS3Verify(ctx context.Context, _ *bench, c config) ([]figure, error) {
	for k, v := range buckettest.Credentials {
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "harmonia-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "weights.bin")
	size := int64(c.s3MiB) << 20
	if err := randomFile(path, size); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	srv, err := buckettest.StartS3("models")
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	if err := srv.Put("models", "weights.bin", data); err != nil {
		return nil, err
	}
	data = nil
	set, err := bucket.New(ctx, &bucket.Options{Allow: []string{srv.BucketURL("models"), "file://" + filepath.ToSlash(dir)}})
	if err != nil {
		return nil, err
	}
	defer set.Close()
	best := func(p string) (time.Duration, error) {
		var min time.Duration
		for i := range 3 {
			t0 := time.Now()
			if _, err := set.Verify(ctx, p, size, digest); err != nil {
				return 0, err
			}
			if d := time.Since(t0); i == 0 || d < min {
				min = d
			}
		}
		return min, nil
	}
	s3, err := best("s3://models/weights.bin")
	if err != nil {
		return nil, err
	}
	local, err := best("file://" + filepath.ToSlash(path))
	if err != nil {
		return nil, err
	}
	mb := float64(size) / 1e6
	return []figure{{"s3_verify_ratio_vs_local", fmt.Sprintf("bucket Verify of %d MiB from an S3 server ÷ from a local file", c.s3MiB),
		s3.Seconds() / local.Seconds(), "%.2f", fmt.Sprintf("%.0f vs %.0f MB/s, best of 3", mb/s3.Seconds(), mb/local.Seconds())}}, nil
}
