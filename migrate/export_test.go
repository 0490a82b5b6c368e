package migrate

import "context"

// BuiltinWithTransformHooks returns the built-in migrations with the tags
// transform reading size documents per batch and calling after after each
// batch.
func BuiltinWithTransformHooks(size int, after func(ctx context.Context)) []Migration {
	return builtin(transform{batchSize: size, afterBatch: after})
}
