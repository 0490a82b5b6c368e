package harmonia

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// SetPublishStepHook installs a hook that runs before each step of a
// publish ("insert_pending", "mark_artifacts", "mark_datasets", "flip");
// an error it returns fails that step. A hook that calls runtime.Goexit
// stops the publish as a crashed process would: nothing more runs, no
// rollback. For harmonia's own tests.
func SetPublishStepHook(s *Store, hook func(ctx context.Context, step string) error) {
	s.hooks.publishStep = hook
}

// PublishSteps are the staged publish's steps in order.
var PublishSteps = []string{stepInsertPending, stepMarkArtifacts, stepMarkDatasets, stepFlip}

// SetAliasStepHook installs a hook that runs before each step of an alias
// move: "alias_pending", "alias_record", "alias_apply" (inside the
// transaction on deployments with transactions). An error it returns
// fails that step; a hook that calls runtime.Goexit stops the move as a
// crashed process would. For harmonia's own tests.
func SetAliasStepHook(s *Store, hook func(ctx context.Context, step string) error) {
	s.hooks.aliasStep = hook
}

// SetPruneHook installs a hook that runs in each round of PruneJobs
// between the read of a batch's ids and its deletes. For harmonia's own
// tests.
func SetPruneHook(s *Store, hook func(ctx context.Context, ids []bson.ObjectID)) {
	s.hooks.pruneRead = hook
}
