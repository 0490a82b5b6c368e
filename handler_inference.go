package harmonia

import (
	"context"
	"fmt"
)

// InferenceFunc runs an inference with artifact, the model a job names,
// on params.Input. Its result becomes the job's result (a document, or
// nil); a [Permanent] error fails the job without further attempts.
type InferenceFunc func(ctx context.Context, artifact *ModelArtifact, params InferenceParams, log *JobLogger) (any, error)

// InferenceHandler returns the handler of [JobInference] jobs
// ([InferenceParams]): it decodes the params, loads the artifact, refuses
// one whose verification failed (verify_error set), and calls fn. The
// worker around it does the rest of the job's lifecycle: lease,
// heartbeats, result, retries.
//
// Errors: [CodeInvalid] when store or fn is nil.
func InferenceHandler(store *Store, fn InferenceFunc) (Handler, error) {
	if store == nil {
		return nil, invalidf(EntityWorker, "store", "a *Store is required (from harmonia.Open)")
	}
	if fn == nil {
		return nil, invalidf(EntityWorker, "fn", "an InferenceFunc is required")
	}
	return func(ctx context.Context, job *Job, log *JobLogger) (any, error) {
		var p InferenceParams
		a, err := paramsArtifact(ctx, store, job, &p)
		if err != nil {
			return nil, err
		}
		if a.VerifyError != "" {
			return nil, Permanent(fmt.Errorf("artifact %s failed verification: %s", a.Key(), a.VerifyError))
		}
		_ = log.Logf(ctx, LevelInfo, "running inference with %s", a.Key())
		return fn(ctx, a, p, log)
	}, nil
}
