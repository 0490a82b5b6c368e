package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/worker"
)

// verifyItemJSON is one artifact's check in verify --json.
type verifyItemJSON struct {
	Artifact  string `json:"artifact"`
	Path      string `json:"path"`
	JobID     string `json:"job_id"`
	OK        bool   `json:"ok"`
	Status    string `json:"status"`
	SHA256    string `json:"sha256,omitempty"`
	SizeBytes int64  `json:"size_bytes,omitempty"`
	Error     string `json:"error,omitempty"`
}

// verifyJSON is verify --json.
type verifyJSON struct {
	VersionTag    string           `json:"version_tag"`
	Root          string           `json:"root"`
	OK            bool             `json:"ok"`
	Digest        string           `json:"digest"`
	CurrentDigest string           `json:"current_digest"`
	DigestOK      bool             `json:"digest_ok"`
	Artifacts     []verifyItemJSON `json:"artifacts"`
	// Datasets are the version's datasets' files, checked in this
	// process (datasets have no validate jobs).
	Datasets       []verifyDatasetJSON `json:"datasets"`
	FailedArtifact int                 `json:"failed"`
}

// verifyDatasetJSON is one dataset's check in verify --json.
type verifyDatasetJSON struct {
	Dataset   string `json:"dataset"`
	Path      string `json:"path"`
	OK        bool   `json:"ok"`
	SHA256    string `json:"sha256,omitempty"`
	SizeBytes int64  `json:"size_bytes,omitempty"`
	Error     string `json:"error,omitempty"`
}

// verifyRoot checks --root before anything connects, so that its error
// names the command: "verify: root: …".
func verifyRoot(root string) error {
	problem := ""
	if root == "" {
		problem = "--root DIR is required: the directory the artifacts' and datasets' paths are relative to"
	} else if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		problem = fmt.Sprintf("%s must be an existing directory", echo(root))
	}
	if problem != "" {
		return &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "verify", Field: "root", Reason: problem}
	}
	return nil
}

// checkDatasets hashes each dataset's file under root and compares it
// with the recorded size and sha256.
func checkDatasets(ctx context.Context, root string, ds []*harmonia.Dataset) ([]verifyDatasetJSON, error) {
	out := make([]verifyDatasetJSON, len(ds))
	for i, d := range ds {
		it := verifyDatasetJSON{Dataset: d.Key(), Path: d.Path}
		local := d.Path
		if u, err := url.Parse(d.Path); err == nil && u.Scheme == "file" {
			local = u.Path
		} else if err == nil && len(u.Scheme) > 1 {
			it.Error = "not a local file: only local paths are checked under --root"
			out[i] = it
			continue
		}
		if !filepath.IsAbs(local) {
			local = filepath.Join(root, filepath.FromSlash(local))
		}
		sum, size, err := worker.HashFile(ctx, local)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			it.Error = err.Error()
		case size != d.SizeBytes:
			it.Error = fmt.Sprintf("size %d, recorded %d", size, d.SizeBytes)
		case d.Hashes.SHA256 != "" && sum != d.Hashes.SHA256:
			it.Error = fmt.Sprintf("sha256 %s, recorded %s", sum, d.Hashes.SHA256)
		default:
			it.OK, it.SHA256, it.SizeBytes = true, sum, size
		}
		out[i] = it
	}
	return out, nil
}

func (a *app) verifyCommand() *cobra.Command {
	var tag, root string
	var concurrency int
	var allowBuckets []string
	cmd := &cobra.Command{
		Use:   "verify [--version TAG] --root DIR",
		Short: "Check a version's files against their recorded size and sha256",
		Long: `verify checks every artifact and dataset of a published version
(--version, default the latest): it enqueues one validate job per
artifact, runs workers in this process until they finish, hashes each
dataset's file itself, and prints each result. An artifact's file is its
path under --root, or an object in one of the buckets given with
--allow-bucket (s3://models/resnet.onnx; the object's size is compared
with its metadata before any byte is read). It also recomputes the version's content digest
from the artifacts as stored now. It exits with code 5 when any file is
missing or does not match, or the digest drifted; each artifact's
verified_at or verify_error records the outcome. Its jobs go ahead of
the queue (priority 100); while they run, its worker may also take other
pending validate jobs of the queue, checked under the same --root.`,
		Example: `  harmonia verify --root examples/inventory
  harmonia verify --version 2026.10.0 --root /srv/models --json
  harmonia verify --root /srv/models --allow-bucket s3://models`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := verifyRoot(root); err != nil {
				return err
			}
			store, err := a.storeWithRoot(ctx, root)
			if err != nil {
				return err
			}
			buckets, err := a.openBuckets(ctx, allowBuckets)
			if err != nil {
				return err
			}
			defer buckets.Close()
			h, err := worker.ValidateHandlerWith(store, root, &worker.ValidateOptions{Buckets: buckets})
			if err != nil {
				return err
			}
			if tag == "" {
				v, err := store.LatestVersion(ctx)
				if err != nil {
					return err
				}
				tag = v.VersionTag
			}
			c, err := store.VersionContentsByTag(ctx, tag)
			if err != nil {
				return err
			}
			dig, err := store.VerifyVersion(ctx, tag)
			if err != nil {
				return err
			}
			jobs, err := runValidations(ctx, a, store, h, c.Artifacts, concurrency)
			if err != nil {
				return err
			}
			dss, err := checkDatasets(ctx, root, c.Datasets)
			if err != nil {
				return err
			}
			out := verifyJSON{VersionTag: tag, Root: root, Digest: dig.StoredDigest, CurrentDigest: dig.CurrentDigest, DigestOK: dig.OK(),
				Artifacts: make([]verifyItemJSON, len(jobs)), Datasets: dss}
			for _, d := range dss {
				if !d.OK {
					out.FailedArtifact++
				}
			}
			for i, j := range jobs {
				art := c.Artifacts[i]
				it := verifyItemJSON{Artifact: art.Key(), Path: art.Path, JobID: j.ID.Hex(), Status: string(j.Status), OK: j.Status == harmonia.JobSuccess, Error: j.Error}
				var res worker.VerifyResult
				if err := j.DecodeResult(&res); err == nil {
					it.SHA256, it.SizeBytes = res.SHA256, res.SizeBytes
				}
				if !it.OK {
					out.FailedArtifact++
				}
				out.Artifacts[i] = it
			}
			out.OK = out.FailedArtifact == 0 && out.DigestOK
			if a.json {
				if err := a.printJSON(out); err != nil {
					return err
				}
			} else {
				t := a.newTable("ARTIFACT", "PATH", "RESULT", "DETAIL")
				for _, it := range out.Artifacts {
					result, detail := "ok", it.SHA256
					if !it.OK {
						result, detail = "FAILED", it.Error
					}
					t.row(it.Artifact, it.Path, result, detail)
				}
				for _, it := range out.Datasets {
					result, detail := "ok", it.SHA256
					if !it.OK {
						result, detail = "FAILED", it.Error
					}
					t.row("dataset "+it.Dataset, it.Path, result, detail)
				}
				if err := t.flush(); err != nil {
					return err
				}
				if out.DigestOK {
					fmt.Fprintf(a.stdout, "digest %s matches the stored artifacts\n", out.Digest)
				} else {
					fmt.Fprintf(a.stdout, "digest DRIFT: recorded %s, stored artifacts give %s\n", out.Digest, out.CurrentDigest)
				}
			}
			if !out.OK {
				return &exitError{code: ExitCheckFailed, msg: fmt.Sprintf("harmonia: verify %s: %d of %s failed, digest ok: %t",
					tag, out.FailedArtifact, plural(int64(len(out.Artifacts)+len(out.Datasets)), "file"), out.DigestOK)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tag, "version", "", "version tag to verify (default: the latest published)")
	fl.StringVar(&root, "root", "", "directory the artifacts' local paths are relative to (required)")
	fl.StringArrayVar(&allowBuckets, "allow-bucket", nil, "a bucket URL whose objects artifacts' paths may name (s3://models, az://container; repeatable)")
	fl.IntVar(&concurrency, "concurrency", worker.ConcurrencyDefault, "files checked at once")
	return cmd
}

// runValidations enqueues one validate job per artifact (one attempt
// each, ahead of other jobs), runs a worker in this process until every
// one is final, and returns the jobs in the order of arts.
func runValidations(ctx context.Context, a *app, store *harmonia.Store, h worker.Handler, arts []*harmonia.ModelArtifact, concurrency int) ([]*harmonia.Job, error) {
	if len(arts) == 0 {
		return nil, nil
	}
	params := make([]harmonia.EnqueueParams, len(arts))
	for i, art := range arts {
		params[i] = harmonia.EnqueueParams{Type: harmonia.JobValidate, Params: &harmonia.ValidateParams{ArtifactID: art.ID},
			Opts: &harmonia.EnqueueOpts{MaxAttempts: 1, Priority: 100}}
	}
	res, err := store.Queue().EnqueueMany(ctx, params)
	if err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, len(res))
	for i, r := range res {
		ids[i] = r.Job.ID
	}
	w, err := worker.New(store, &worker.Options{
		Handlers:    map[harmonia.JobType]worker.Handler{harmonia.JobValidate: h},
		Concurrency: concurrency, PollInterval: shortWait,
	})
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.Run(wctx)
	}()
	bar := a.newProgress("verify", int64(len(ids)), false)
	jobs, err := store.Queue().WaitJobs(ctx, ids, &harmonia.WaitOpts{Progress: func(finished, total int) {
		bar.update(int64(finished), fmt.Sprintf("%d of %s checked", finished, plural(int64(total), "file")))
	}})
	bar.finish()
	stop()
	wg.Wait()
	return jobs, err
}
