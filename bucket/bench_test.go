package bucket_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/harmonia-ml/harmonia/bucket"
	"github.com/harmonia-ml/harmonia/bucket/buckettest"
)

// BenchmarkVerify verifies the same 32 MiB from an S3 server on a
// loopback listener (through s3blob and the AWS SDK) and from a local
// file (a file:// bucket); MB/s compares the streaming hash of both.
func BenchmarkVerify(b *testing.B) {
	const size = 32 << 20
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{}).Read(data)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	srv := buckettest.NewS3(b, "models")
	if err := srv.Put("models", "w.bin", data); err != nil {
		b.Fatal(err)
	}
	set, err := bucket.New(b.Context(), &bucket.Options{Allow: []string{srv.BucketURL("models"), "file://" + filepath.ToSlash(dir)}})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	sum := digest(data)
	for name, p := range map[string]string{"s3": "s3://models/w.bin", "local": "file://" + filepath.ToSlash(filepath.Join(dir, "w.bin"))} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if _, err := set.Verify(b.Context(), p, size, sum); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
