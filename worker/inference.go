package worker

import (
	"context"
	"fmt"
	"github.com/harmonia-ml/harmonia"
)

// InferenceFunc runs an inference with artifact, the model a job names,
// on params.Input. Its result becomes the job's result (a document, or
// nil); a [harmonia.Permanent] error fails the job without further attempts.
type InferenceFunc func(ctx context.Context, artifact *harmonia.ModelArtifact, params harmonia.InferenceParams, log *JobLogger) (any, error)

// InferenceHandler returns the handler of [JobInference] jobs
// ([InferenceParams]): it decodes the params, loads the artifact, refuses
// one whose verification failed (verify_error set), and calls fn. The
// worker around it does the rest of the job's lifecycle: lease,
// heartbeats, result, retries.
//
// Errors: [harmonia.CodeInvalid] when store or fn is nil.
func InferenceHandler(store *harmonia.Store, fn InferenceFunc) (Handler, error) {
	if store == nil {
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "store", "a *Store is required (from harmonia.Open)")
	}
	if fn == nil {
		return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "fn", "an InferenceFunc is required")
	}
	return func(ctx context.Context, job *harmonia.Job, log *JobLogger) (any, error) {
		var p harmonia.InferenceParams
		a, err := paramsArtifact(ctx, store, job, &p, &p.ArtifactID)
		if err != nil {
			return nil, err
		}
		if a.VerifyError != "" {
			return nil, harmonia.Permanent(fmt.Errorf("artifact %s failed verification: %s", a.Key(), a.VerifyError))
		}
		_ = log.Logf(ctx, harmonia.LevelInfo, "running inference with %s", a.Key())
		return fn(ctx, a, p, log)
	}, nil
}
