package harmonia_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/bench"
	"github.com/harmonia-ml/harmonia/worker"
)

// BenchmarkClaimAndFinish runs 500 no-op jobs (HARMONIA_BENCH_JOBS)
// through 4 workers, then through 4 goroutines of a plain driver loop
// doing the same findOneAndUpdate claim and updateOne finish on the same
// server, and reports both throughputs and their ratio (aim: 0.7 or
// more). Rounds alternate which goes first; run an even number of them,
// alone: go test -run '^$' -bench ClaimAndFinish -benchtime 2x.
func BenchmarkClaimAndFinish(b *testing.B) {
	n := harmoniatest.EnvInt(b, "HARMONIA_BENCH_JOBS", 500)
	db := harmoniatest.Database(b)
	var h, d time.Duration
	runs := 0
	for b.Loop() {
		r, err := bench.ClaimAndFinish(b.Context(), db, n, 4, runs)
		require.NoError(b, err)
		h, d, runs = h+r.Harmonia, d+r.Driver, runs+1
	}
	b.ReportMetric(float64(n*runs)/h.Seconds(), "harmonia_jobs/s")
	b.ReportMetric(float64(n*runs)/d.Seconds(), "driver_jobs/s")
	b.ReportMetric(d.Seconds()/h.Seconds(), "ratio")
}

// BenchmarkValidateHash hashes a 256 MiB file (HARMONIA_BENCH_HASH_MIB):
// HashFile alone, with its throughput and allocations, and against
// `openssl dgst -sha256` on the same file, as a ratio (aim: 0.9 or more).
// The second skips when openssl is missing.
func BenchmarkValidateHash(b *testing.B) {
	size := harmoniatest.EnvInt(b, "HARMONIA_BENCH_HASH_MIB", 256) << 20
	path := filepath.Join(b.TempDir(), "model.bin")
	f, err := os.Create(path)
	require.NoError(b, err)
	chunk := randomBytes(1<<20, 5)
	for written := 0; written < size; written += len(chunk) {
		chunk[0]++ // no two chunks alike
		_, err := f.Write(chunk)
		require.NoError(b, err)
	}
	require.NoError(b, f.Close())
	_, _, err = worker.HashFile(b.Context(), path) // into the page cache
	require.NoError(b, err)

	b.Run("HashFile", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := worker.HashFile(b.Context(), path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("VsOpenSSL", func(b *testing.B) {
		var h, o time.Duration
		for b.Loop() {
			r, err := bench.HashVsOpenSSL(b.Context(), path)
			if errors.Is(err, bench.ErrNoOpenSSL) {
				b.Skip("no openssl command on the PATH")
			}
			require.NoError(b, err)
			h, o = h+r.Harmonia, o+r.OpenSSL
		}
		b.ReportMetric(o.Seconds()/h.Seconds(), "ratio")
	})
}
