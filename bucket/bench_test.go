package bucket_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/harmonia-ml/harmonia/bucket"
	"github.com/harmonia-ml/harmonia/bucket/buckettest"
	"github.com/harmonia-ml/harmonia/internal/hashio"
)

// BenchmarkVerify verifies the same 32 MiB from an S3 server on a
// loopback listener (through s3blob and the AWS SDK) and from a local
// file (a file:// bucket), and hashes the file without the bucket layer
// (hash); MB/s compares the three.
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
	b.Run("hash", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Open(filepath.Join(dir, "w.bin"))
			if err != nil {
				b.Fatal(err)
			}
			got, _, err := hashio.Copy(b.Context(), nil, f)
			f.Close()
			if err != nil || got != sum {
				b.Fatal(err, got)
			}
		}
	})
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
