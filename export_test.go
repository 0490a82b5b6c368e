package harmonia

import "context"

// SetPublishStepHook installs a hook that runs before each step of a
// publish ("insert_pending", "mark_artifacts", "mark_datasets", "flip");
// an error it returns fails that step. For harmonia's own tests.
func SetPublishStepHook(s *Store, hook func(ctx context.Context, step string) error) {
	s.hooks.publishStep = hook
}

// PublishSteps are the staged publish's steps in order.
var PublishSteps = []string{stepInsertPending, stepMarkArtifacts, stepMarkDatasets, stepFlip}

// ErrSimulatedCrash, returned from a publish step hook, stops the publish
// as a crash would: no rollback runs.
var ErrSimulatedCrash = errSimulatedCrash
