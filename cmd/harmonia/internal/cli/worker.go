package cli

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/bucket"
	"github.com/harmonia-ml/harmonia/worker"
)

// handlers returns the built-in handlers that need no code of the
// caller's (validate and download), rooted at root; dl says which
// sources downloads may read, and its Buckets which buckets both may use.
func handlers(store *harmonia.Store, root string, dl *worker.DownloadOptions) (map[harmonia.JobType]worker.Handler, error) {
	validate, err := worker.ValidateHandlerWith(store, root, &worker.ValidateOptions{Buckets: dl.Buckets})
	if err != nil {
		return nil, err
	}
	download, err := worker.DownloadHandler(store, root, dl)
	if err != nil {
		return nil, err
	}
	return map[harmonia.JobType]worker.Handler{harmonia.JobValidate: validate, harmonia.JobDownload: download}, nil
}

func (a *app) workerCommand() *cobra.Command {
	var root, id string
	var types []string
	var o worker.Options
	var dl worker.DownloadOptions
	var allowBuckets []string
	cmd := &cobra.Command{
		Use:   "worker --root DIR",
		Short: "Run jobs (validate, download) until interrupted",
		Long: `worker claims and runs jobs from the queue until it receives SIGINT or
SIGTERM, then shuts down gracefully: it stops claiming, lets the running
handlers finish (up to --shutdown-timeout) and gives the others back to
the queue. It runs the built-in job types that need no code: validate
(check an artifact's local file under --root against its size and sha256)
and download (fetch an artifact's file into --root, checking both).
Downloads read only from the directories given with --allow-dir (file://
sources), the hosts given with --allow-host (http and https sources) and
the buckets given with --allow-bucket (s3://, gs://, az:// and mem://
sources, such as s3://incoming/resnet.onnx, whose size is checked before
any byte is read); with none, every download job fails as not allowed:
whoever may enqueue a job chooses its source. Artifacts whose path is in
object storage (s3://models/resnet.onnx, az://…, file:// and mem:// too)
are validated and downloaded into only in the buckets given with
--allow-bucket, each as its opener's URL (s3://models?region=eu-west-1,
or with endpoint=…&use_path_style=true for MinIO and other S3-compatible
servers); credentials come from each cloud's usual environment and
profile (AWS_ACCESS_KEY_ID / AWS_PROFILE, AZURE_STORAGE_ACCOUNT …) and are
never printed.
Inference jobs need a program of your own (worker.InferenceHandler).
Many workers, on one machine or many, may share a queue.

Note: with the embedded server (no --uri), the worker holds the data
directory while it runs; run 'harmonia devdb' and point both the worker
and other commands at it with --uri to use them side by side.`,
		Example: `  harmonia worker --root /srv/models
  harmonia worker --root /srv/models --types validate --concurrency 8
  harmonia worker --root /srv/models --allow-host models.example.com --allow-dir /mnt/staging
  harmonia worker --root /srv/models --allow-bucket s3://models --allow-bucket 's3://staging?region=eu-west-1'`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.storeWithRoot(ctx, root)
			if err != nil {
				return err
			}
			if dl.Buckets, err = a.openBuckets(ctx, allowBuckets); err != nil {
				return err
			}
			defer dl.Buckets.Close()
			a.announceServer()
			hs, err := handlers(store, root, &dl)
			if err != nil {
				return err
			}
			opts := o
			opts.ID, opts.Handlers = id, hs
			for _, t := range splitList(types) {
				opts.Types = append(opts.Types, harmonia.JobType(t))
			}
			opts.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			w, err := worker.New(store, &opts)
			if err != nil {
				return err
			}
			eff := w.Options()
			names := make([]string, len(eff.Types))
			for i, t := range eff.Types {
				names[i] = string(t)
			}
			slices.Sort(names)
			fmt.Fprintf(a.stderr, "worker %s: running %s jobs under %s, %d at a time, %s leases on the %s clock; stop with Ctrl-C\n",
				w.ID(), strings.Join(names, ", "), root, eff.Concurrency, eff.LeaseDuration, store.Queue().LeaseClock())
			if err := w.Run(ctx); err != nil {
				return err
			}
			st := w.Stats()
			if a.json {
				return a.printJSON(map[string]any{"worker_id": w.ID(), "claimed": st.Claimed, "succeeded": st.Succeeded,
					"failed": st.Failed, "released": st.Released, "lease_lost": st.LeaseLost, "panics": st.Panics})
			}
			fmt.Fprintf(a.stdout, "worker %s stopped: %d claimed, %d succeeded, %d failed, %d released\n",
				w.ID(), st.Claimed, st.Succeeded, st.Failed, st.Released)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&root, "root", "", "directory the artifacts' local paths are relative to (required)")
	fl.StringArrayVar(&types, "types", nil, "job types to run, comma-separated or repeated (default: validate,download)")
	fl.StringArrayVar(&dl.AllowedDirs, "allow-dir", nil, "a directory whose files download jobs may read (file:// sources; repeatable)")
	fl.StringArrayVar(&allowBuckets, "allow-bucket", nil, "a bucket URL whose objects artifacts' paths and download sources may name (s3://models, az://container; repeatable)")
	fl.StringArrayVar(&dl.AllowedHosts, "allow-host", nil, "a host, or host:port, download jobs may fetch from (http and https sources; repeatable)")
	fl.StringVar(&id, "id", "", "worker id recorded in the jobs it claims (default: host, pid and a random suffix)")
	fl.IntVar(&o.Concurrency, "concurrency", worker.ConcurrencyDefault, "jobs run at once")
	fl.DurationVar(&o.PollInterval, "poll", worker.PollIntervalDefault, "how often an idle worker looks for jobs")
	fl.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", worker.ShutdownTimeoutDefault, "how long a stopping worker waits for running handlers")
	fl.DurationVar(&o.LeaseDuration, "lease", worker.LeaseDurationDefault, "how long a claim holds a job without a heartbeat")
	return cmd
}

// splitList flattens the values of a repeatable flag that also takes
// comma-separated lists, dropping empty items.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// openBuckets opens the buckets of the --allow-bucket flags; with none
// it returns a Set that admits nothing. Its errors name buckets redacted.
func (a *app) openBuckets(ctx context.Context, urls []string) (*bucket.Set, error) {
	set, err := bucket.New(ctx, &bucket.Options{Allow: urls})
	if err != nil {
		return nil, invalidArg("allow-bucket", "%s", err)
	}
	return set, nil
}

// storeWithRoot checks the --root flag of a command that runs handlers
// and returns the run's Store.
func (a *app) storeWithRoot(ctx context.Context, root string) (*harmonia.Store, error) {
	if root == "" {
		return nil, invalidArg("root", "--root DIR is required: the directory the artifacts' paths are relative to")
	}
	return a.store(ctx)
}

// shortWait is the poll interval of the in-process workers of verify.
const shortWait = 100 * time.Millisecond
