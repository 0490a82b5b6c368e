package migrate

import "context"

// SimulateCrash makes r stop as a crashed process would when a run is
// interrupted: it records nothing more and leaves the lock to expire.
func SimulateCrash(r *Runner) { r.crashOnInterrupt = true }

// SetTransformHooks shrinks the tags transform's batches to size and
// calls after after each batch, until the returned function restores the
// defaults. Tests that use it must not run in parallel.
func SetTransformHooks(size int, after func(ctx context.Context)) (restore func()) {
	hooks.batchSize, hooks.afterBatch = size, after
	return func() { hooks.batchSize, hooks.afterBatch = TransformBatchSize, nil }
}
