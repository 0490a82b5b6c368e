package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	hbench "github.com/harmonia-ml/harmonia/internal/bench"
)

// benchClaim runs the claim-and-finish comparison twice, once with each
// side first (the second run is faster on the embedded server), and adds
// up both sides.
func benchClaim(ctx context.Context, b *bench, c config) ([]figure, error) {
	var harmonia, driver time.Duration
	for round := range 2 {
		db, done := b.db(ctx, "claim")
		r, err := hbench.ClaimAndFinish(ctx, db, c.jobs, c.workers, round)
		done()
		if err != nil {
			return nil, err
		}
		harmonia += r.Harmonia
		driver += r.Driver
	}
	jobs := float64(2 * c.jobs)
	return []figure{{"claim_ratio_vs_raw", fmt.Sprintf("claim+finish throughput, %d workers, ÷ plain driver loop", c.workers),
		driver.Seconds() / harmonia.Seconds(), "%.2f",
		fmt.Sprintf("%.0f vs %.0f jobs/s", jobs/harmonia.Seconds(), jobs/driver.Seconds())}}, nil
}

// benchJobCommands counts the server commands per job of workers that
// run jobs logging two lines each.
func benchJobCommands(ctx context.Context, b *bench, c config) ([]figure, error) {
	db, counter, done := b.countingDB(ctx, "jobcmds")
	defer done()
	r, err := hbench.JobCommands(ctx, db, counter.Total, c.jobs, c.workers, c.concurrency)
	if err != nil {
		return nil, err
	}
	return []figure{{"commands_per_job", fmt.Sprintf("server commands per job logging 2 lines, %d workers × %d", c.workers, c.concurrency),
		r.PerJob(), "%.2f", fmt.Sprintf("%d commands for %d jobs in %.1fs", r.Commands, r.Jobs, r.Elapsed.Seconds())}}, nil
}

// benchSHA256 hashes a file of random bytes with worker.HashFile and
// with openssl, three times each, and compares the best runs.
func benchSHA256(ctx context.Context, _ *bench, c config) ([]figure, error) {
	dir, err := os.MkdirTemp("", "harmonia-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "weights.bin")
	if err := randomFile(path, int64(c.hashMiB)<<20); err != nil {
		return nil, err
	}
	var best hbench.HashResult
	for i := range 3 {
		r, err := hbench.HashVsOpenSSL(ctx, path)
		if errors.Is(err, hbench.ErrNoOpenSSL) {
			return nil, fmt.Errorf("%w (apt-get install openssl)", err)
		}
		if err != nil {
			return nil, err
		}
		if i == 0 || r.Harmonia < best.Harmonia {
			best.Harmonia = r.Harmonia
		}
		if i == 0 || r.OpenSSL < best.OpenSSL {
			best.OpenSSL = r.OpenSSL
		}
		best.Bytes = r.Bytes
	}
	mb := float64(best.Bytes) / 1e6
	return []figure{{"sha256_ratio_vs_openssl", fmt.Sprintf("validate hashing of %d MiB ÷ openssl dgst -sha256", c.hashMiB),
		best.Ratio(), "%.2f", fmt.Sprintf("%.0f vs %.0f MB/s, best of 3", mb/best.Harmonia.Seconds(), mb/best.OpenSSL.Seconds())}}, nil
}

// randomFile writes size pseudo-random bytes to path and leaves them in
// the page cache.
func randomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.NewChaCha8([32]byte{})
	if _, err := io.CopyN(w, r, size); err != nil {
		return errors.Join(err, f.Close())
	}
	return errors.Join(w.Flush(), f.Close())
}
