package bucket_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/harmonia-ml/harmonia/bucket"
)

// Verifying artifacts whose paths are objects in a bucket. The bucket
// here is in memory; a program reading S3 imports the opener and allows
// the bucket by its URL instead:
//
//	import _ "gocloud.dev/blob/s3blob" // or github.com/harmonia-ml/harmonia/bucket/all
//
//	set, err := bucket.New(ctx, &bucket.Options{Allow: []string{
//		"s3://models?region=eu-west-1",
//		// MinIO or another S3-compatible server:
//		"s3://staging?endpoint=http://minio:9000&use_path_style=true&disable_https=true&region=us-east-1",
//	}})
//
// with credentials from the environment (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, or AWS_PROFILE). The validate and download
// handlers take such a Set (worker.ValidateOptions.Buckets,
// worker.DownloadOptions.Buckets), and so does the harmonia command
// (--allow-bucket s3://models).
func Example() {
	ctx := context.Background()
	mem := memblob.OpenBucket(nil)
	defer mem.Close()
	model := []byte("resnet50 weights")
	_ = mem.WriteAll(ctx, "resnet50/1.2.0.onnx", model, nil)
	sum := sha256.Sum256(model)
	digest := hex.EncodeToString(sum[:])

	set, err := bucket.New(ctx, &bucket.Options{Buckets: map[string]*blob.Bucket{"mem://models": mem}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer set.Close()

	res, err := set.Verify(ctx, "mem://models/resnet50/1.2.0.onnx", int64(len(model)), digest)
	fmt.Println(res.SizeBytes, res.SHA256 == digest, err)

	// The size is compared with the object's metadata before any byte
	// is read.
	_, err = set.Verify(ctx, "mem://models/resnet50/1.2.0.onnx", 1000, digest)
	fmt.Println(errors.Is(err, bucket.ErrSizeMismatch), bucket.IsTransient(err))

	// A missing object may yet arrive: transient, retried.
	_, err = set.Verify(ctx, "mem://models/bert/1.0.0.onnx", 10, digest)
	fmt.Println(errors.Is(err, bucket.ErrNotFound), bucket.IsTransient(err))

	// Only the allowed buckets are read.
	_, err = set.Verify(ctx, "s3://elsewhere/resnet50/1.2.0.onnx", 10, digest)
	fmt.Println(err)
	// Output:
	// 16 true <nil>
	// true false
	// true true
	// bucket: verify s3://elsewhere/resnet50/1.2.0.onnx: the bucket is not among the allowed buckets
}
