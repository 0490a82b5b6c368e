package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestExitCodes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()

	// Invalid input: cobra's own refusals and the library's.
	r := f.fails(ExitInvalid, "versions", "lisst")
	require.Contains(t, r.stderr, "unknown command")
	f.fails(ExitInvalid, "versions", "list", "--no-such-flag")
	r = f.fails(ExitInvalid, "versions", "show")
	require.Contains(t, r.stderr, "harmonia: command: arguments: harmonia versions show takes 1 argument(s) (TAG), got 0 (invalid)")
	r = f.fails(ExitInvalid, "publish", "2026.12.0", "--artifact", "bert-base@1.0.0")
	require.Contains(t, r.stderr, `required flag(s) "by" not set`)
	r = f.fails(ExitInvalid, "publish", "2026.12.0", "--artifact", "bert-base", "--by", "me")
	require.Contains(t, r.stderr, `harmonia: command: artifact: "bert-base" is not NAME@VERSION (invalid)`)
	r = f.fails(ExitInvalid, "jobs", "show", "42")
	require.Contains(t, r.stderr, "is not a job id")
	r = f.fails(ExitInvalid, "alias", "set", "Not A Tag", "2026.11.0", "--by", "me")
	require.Contains(t, r.stderr, "harmonia: alias: name:")
	r = f.fails(ExitInvalid, "publish", "2026.12.0", "--artifact", "bert-base@1.0.0", "--dataset", "imagenet-mini@2023.2", "--by", "me", "--require-commercial-use")
	require.Contains(t, r.stderr, "CC-BY-NC-4.0")
	r = f.fails(ExitInvalid, "import", filepath.Join(t.TempDir(), "missing.json"))
	require.Contains(t, r.stderr, "harmonia: command: file: cannot open")

	// Not found.
	r = f.fails(ExitNotFound, "versions", "show", "1999.1.0")
	require.Contains(t, r.stderr, "harmonia: inventory_version: ")
	f.fails(ExitNotFound, "versions", "diff", "2026.10.0", "1999.1.0")
	r = f.fails(ExitNotFound, "publish", "2026.12.0", "--artifact", "nope@1.0.0", "--by", "me")
	require.Contains(t, r.stderr, "model_artifact")
	f.fails(ExitNotFound, "alias", "get", "production")
	f.fails(ExitNotFound, "jobs", "show", bson.NewObjectID().Hex())
	f.fails(ExitNotFound, "artifacts", "list", "--license", "GPL-3.0-only")
	f.fails(ExitNotFound, "migrate", "resolve", "99")

	// Conflict: other contents under a published tag; an alias moved by
	// someone else.
	r = f.fails(ExitConflict, "publish", "2026.11.0", "--artifact", "bert-base@1.0.0", "--by", "me")
	require.Contains(t, r.stderr, "2026.11.0")
	f.ok("alias", "set", "production", "2026.10.0", "--by", "alice")
	r = f.fails(ExitConflict, "alias", "set", "production", "2026.11.0", "--by", "bob", "--expect", "2026.9.0")
	require.Contains(t, r.stderr, "2026.10.0", "the conflict names where the alias points")

	// Internal: the server cannot be reached.
	r = f.fails(ExitInternal, "--uri", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300", "versions", "list")
	require.Contains(t, r.stderr, "harmonia: ")

	// Check failed is exercised by TestVerifyAndJobs; the table below
	// runs every command's other error cases.
	exitCases(t, f)
}

// exitCases runs an error case of every command against a fixture with
// the sample imported, and checks the exit code against the README's
// table, that the error is one line on standard error naming what is
// wrong, and that nothing is printed on standard output.
func exitCases(t *testing.T, f *fixture) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	long := strings.Repeat("x", 100_000)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag before the command", []string{"--bogus", "versions", "list"}, ExitInvalid, "unknown flag --bogus"},
		{"unknown flag after it", []string{"versions", "list", "--bogus"}, ExitInvalid, "--bogus"},
		{"alias to a version that does not exist", []string{"alias", "set", "canary", "2099.1.0", "--by", "me"}, ExitNotFound, "2099.1.0"},
		{"alias to a tag of 100,000 characters", []string{"alias", "set", "canary", long, "--by", "me"}, ExitNotFound, "xxx…"},
		{"alias name of 5,000 characters", []string{"alias", "set", strings.Repeat("a", 5000), "2026.11.0", "--by", "me"}, ExitInvalid, "aaa…"},
		{"alias delete of nothing", []string{"alias", "delete", "nothing-here", "--by", "me"}, ExitNotFound, "nothing-here"},
		{"publish a tag with a trailing space", []string{"publish", "2026.12.0 ", "--artifact", "bert-base@1.0.0", "--by", "me"}, ExitInvalid, "version_tag: must not begin or end with white space"},
		{"publish a tag of one space", []string{"publish", " ", "--artifact", "bert-base@1.0.0", "--by", "me"}, ExitInvalid, "version_tag"},
		{"publish a zero-width tag", []string{"publish", "2026.12.0\u200b", "--artifact", "bert-base@1.0.0", "--by", "me"}, ExitInvalid, "U+200B"},
		{"publish an artifact in another case", []string{"publish", "2026.12.0", "--artifact", "BERT-BASE@9.9.9", "--by", "me"}, ExitNotFound, "BERT-BASE"},
		{"publish over a published tag", []string{"publish", "2026.11.0", "--artifact", "bert-base@1.0.0", "--by", "me"}, ExitConflict, "2026.11.0"},
		{"versions show", []string{"versions", "show", "2099.1.0"}, ExitNotFound, "2099.1.0"},
		{"versions diff", []string{"versions", "diff", "2099.1.0", "2026.11.0"}, ExitNotFound, "2099.1.0"},
		{"artifacts list by a license nobody has", []string{"artifacts", "list", "--license", "GPL-3.0-only"}, ExitNotFound, "GPL-3.0-only"},
		{"jobs show", []string{"jobs", "show", bson.NewObjectID().Hex()}, ExitNotFound, "job"},
		{"jobs cancel", []string{"jobs", "cancel", bson.NewObjectID().Hex()}, ExitNotFound, "job"},
		{"jobs retry", []string{"jobs", "retry", "not-an-id"}, ExitInvalid, "not a job id"},
		{"import an empty object", []string{"import", write("empty.json", "{}")}, ExitInvalid, "format_version is missing"},
		{"import without format_version", []string{"import", write("nofv.json", `{"licenses": []}`)}, ExitInvalid, "format_version"},
		{"import another format_version", []string{"import", write("fv2.json", `{"format_version": 2}`)}, ExitInvalid, "format_version 2"},
		{"import a misspelt section", []string{"import", write("licences.json", `{"format_version": 1, "licences": []}`)}, ExitInvalid, "licences"},
		{"import a directory", []string{"import", dir}, ExitInternal, "is a directory"},
		{"verify without a root", []string{"verify", "--root", filepath.Join(dir, "nonexistent")}, ExitInvalid, "harmonia: verify: root: "},
		{"verify a version that does not exist", []string{"verify", "--root", dir, "--version", "2099.1.0"}, ExitNotFound, "2099.1.0"},
		{"worker without a root", []string{"worker"}, ExitInvalid, "root"},
		{"migrate goto an unknown version", []string{"migrate", "goto", "99"}, ExitInvalid, "99"},
		{"migrate force an unknown version", []string{"migrate", "force", "99"}, ExitInvalid, "99"},
		{"migrate down of a bad count", []string{"migrate", "down", "-3"}, ExitInvalid, "-3"},
		{"migrate resolve", []string{"migrate", "resolve", "99"}, ExitNotFound, "99"},
		{"a server that is not there", []string{"--uri", "mongodb://127.0.0.1:1/", "--server-timeout", "300ms", "versions", "list"}, ExitInternal, "unreachable"},
		{"a bad server timeout", []string{"--server-timeout", "soon", "versions", "list"}, ExitInvalid, "server-timeout"},
	}
	for _, c := range cases {
		r := f.run(c.args...)
		what := strings.Join(c.args, " ")
		if len(what) > 100 {
			what = what[:100] + "…"
		}
		require.Equal(t, c.code, r.code, "%s: harmonia %s\nstdout:\n%s\nstderr:\n%.500s", c.name, what, r.stdout, r.stderr)
		require.Contains(t, r.stderr, c.want, c.name)
		require.Empty(t, r.stdout, "%s: nothing on stdout that looks like success", c.name)
		require.Less(t, len(r.stderr), 1000, "%s: echoed input is cut", c.name)
		var errLines []string // progress lines ("import: …") aside
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			if strings.HasPrefix(l, "harmonia") || strings.HasPrefix(l, "Run ") {
				errLines = append(errLines, l)
			}
		}
		if c.code == ExitInvalid && strings.HasPrefix(errLines[len(errLines)-1], "Run 'harmonia --help'") {
			errLines = errLines[:len(errLines)-1]
		}
		require.Len(t, errLines, 1, "%s: one line on failure:\n%s", c.name, r.stderr)
	}
}

func TestPublishAndAliases(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()

	r := f.ok("publish", "2026.12.0", "--artifact", "resnet50@1.3.0", "--artifact", "bert-base@1.0.0",
		"--dataset", "coco-subset@2024.1", "--by", "release-bot", "--notes", "December")
	v, err := f.store.GetVersionByTag(t.Context(), "2026.12.0")
	require.NoError(t, err)
	require.Contains(t, r.stdout, "2026.12.0 published (2 artifacts, 1 dataset,")
	require.Contains(t, r.stdout, "digest "+v.Digest)
	var pub publishJSON
	f.json(&pub, "publish", "2026.12.0", "--artifact", "resnet50@1.3.0", "--artifact", "bert-base@1.0.0",
		"--dataset", "coco-subset@2024.1", "--by", "release-bot", "--notes", "December")
	require.False(t, pub.Created, "the same contents again: nothing published")
	require.Equal(t, v.Digest, pub.Digest)
	require.Contains(t, f.ok("versions", "show", "2026.12.0").stdout, "digest     "+v.Digest)

	// A watcher started before the moves sees each of them once, in order.
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchOut syncBuffer
	watchDone := make(chan int, 1)
	go func() {
		args := append(append([]string{}, f.conn...), "alias", "watch", "production", "--json", "--interval", "50ms")
		watchDone <- Execute(watchCtx, args, &watchOut, &watchOut, nil)
	}()

	f.ok("alias", "set", "production", "2026.11.0", "--by", "alice", "--expect-absent")
	f.ok("alias", "set", "production", "2026.12.0", "--by", "bob", "--expect", "2026.11.0", "--reason", "December rollout")
	f.ok("alias", "set", "canary", "2026.12.0", "--by", "bob")
	f.ok("alias", "delete", "canary", "--by", "bob")

	var got aliasJSON
	f.json(&got, "alias", "get", "production")
	require.Equal(t, "2026.12.0", got.VersionTag)
	require.Equal(t, v.Digest, got.Digest)
	require.Equal(t, "bob", got.UpdatedBy)

	var list struct {
		Aliases []aliasJSON `json:"aliases"`
	}
	f.json(&list, "alias", "list")
	require.Len(t, list.Aliases, 1, "the deleted canary is not listed")

	var hist struct {
		Moves []moveJSON `json:"moves"`
	}
	f.json(&hist, "alias", "history", "production")
	require.Len(t, hist.Moves, 2)
	require.Equal(t, moveJSON{Alias: "production", Seq: 2, From: "2026.11.0", To: "2026.12.0", Digest: v.Digest, By: "bob",
		At: hist.Moves[1].At, Reason: "December rollout"}, hist.Moves[1])
	f.golden("alias_history", f.ok("alias", "history", "production").stdout)
	f.golden("alias_list", f.ok("alias", "list").stdout)

	require.Eventually(t, func() bool { return strings.Count(watchOut.String(), "\n") >= 2 }, time.Minute, 20*time.Millisecond)
	stopWatch()
	require.Equal(t, ExitOK, <-watchDone)
	var seen []string
	for _, line := range strings.Split(strings.TrimSpace(watchOut.String()), "\n") {
		var m moveJSON
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		seen = append(seen, m.From+">"+m.To)
	}
	require.Equal(t, []string{">2026.11.0", "2026.11.0>2026.12.0"}, seen)
}

func TestVerifyAndJobs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()

	var ok verifyJSON
	f.json(&ok, "verify", "--root", f.dir)
	require.True(t, ok.OK)
	require.Equal(t, "2026.11.0", ok.VersionTag, "the latest version by default")
	require.Len(t, ok.Artifacts, 4)
	for _, it := range ok.Artifacts {
		require.True(t, it.OK, it.Artifact)
		require.Len(t, it.SHA256, 64)
	}
	require.Len(t, ok.Datasets, 3, "verify checks the datasets' files too")
	for _, it := range ok.Datasets {
		require.True(t, it.OK, "%+v", it)
	}

	// A changed file fails the check with exit code 5 and names it.
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "models", "bert-base-1.0.0.onnx"), []byte("tampered"), 0o644))
	r := f.fails(ExitCheckFailed, "verify", "--root", f.dir, "--version", "2026.11.0")
	require.Regexp(t, `bert-base@1\.0\.0\s+models/bert-base-1\.0\.0\.onnx\s+FAILED\s+\S+`, r.stdout)
	require.Contains(t, r.stderr, "1 of 7 files failed")
	var bad verifyJSON
	r = f.fails(ExitCheckFailed, "verify", "--root", f.dir, "--json")
	require.NoError(t, jsonUnmarshal(r.stdout, &bad))
	require.Equal(t, 1, bad.FailedArtifact)

	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "datasets", "coco-subset-2024.1.jsonl"), []byte("tampered"), 0o644))
	r = f.fails(ExitCheckFailed, "verify", "--root", f.dir, "--version", "2026.11.0")
	require.Regexp(t, `dataset coco-subset@2024\.1\s+datasets/coco-subset-2024\.1\.jsonl\s+FAILED\s+size 8, recorded 560`, r.stdout)
	require.Contains(t, r.stderr, "2 of 7 files failed")
	var failed verifyItemJSON
	for _, it := range bad.Artifacts {
		if !it.OK {
			failed = it
		}
	}
	require.Equal(t, "bert-base@1.0.0", failed.Artifact)
	require.Equal(t, "failed", failed.Status)

	// The failed check's job: show, retry, cancel.
	var job jobJSON
	f.json(&job, "jobs", "show", failed.JobID)
	require.Equal(t, "validate", job.Type)
	require.Equal(t, "failed", job.Status)
	require.Len(t, job.Errors, 1)
	require.NotEmpty(t, job.Log)
	require.JSONEq(t, `{"artifact_id": {"$oid": "`+mustArtifact(t, f.store, "bert-base", "1.0.0").Hex()+`"}}`, string(job.Params))
	require.Contains(t, f.ok("jobs", "show", failed.JobID).stdout, "status      failed")

	var retried struct {
		Retried string  `json:"retried"`
		Job     jobJSON `json:"job"`
	}
	f.json(&retried, "jobs", "retry", failed.JobID)
	require.Equal(t, failed.JobID, retried.Retried)
	require.Equal(t, "pending", retried.Job.Status)
	require.JSONEq(t, string(job.Params), string(retried.Job.Params))
	r = f.fails(ExitConflict, "jobs", "retry", ok.Artifacts[0].JobID)
	require.Contains(t, r.stderr, "only a failed or cancelled job can be retried")

	require.Contains(t, f.ok("jobs", "cancel", retried.Job.ID).stdout, "cancelled")
	f.fails(ExitConflict, "jobs", "cancel", retried.Job.ID)
}

func mustArtifact(t *testing.T, store *harmonia.Store, name, version string) bson.ObjectID {
	t.Helper()
	a, err := store.GetArtifactByKey(t.Context(), name, version)
	require.NoError(t, err)
	return a.ID
}

func TestWorkerRunsJobsUntilStopped(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	res, err := f.store.Queue().Enqueue(ctx, harmonia.JobValidate, &harmonia.ValidateParams{ArtifactID: mustArtifact(t, f.store, "yolo-tiny", "0.9.0")}, nil)
	require.NoError(t, err)

	workerCtx, stop := context.WithCancel(ctx)
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		args := append(append([]string{}, f.conn...), "worker", "--root", f.dir, "--types", "validate", "--id", "cli-test", "--poll", "50ms")
		done <- Execute(workerCtx, args, &out, &errOut, nil)
	}()
	jobs, err := f.store.Queue().WaitJobs(ctx, []bson.ObjectID{res.Job.ID}, nil)
	require.NoError(t, err)
	require.Equal(t, harmonia.JobSuccess, jobs[0].Status)
	require.Equal(t, "cli-test", jobs[0].WorkerID)
	stop()
	select {
	case code := <-done:
		require.Equal(t, ExitOK, code, errOut.String())
	case <-ctx.Done():
		t.Fatal("the worker did not stop when its context ended")
	}
	require.Contains(t, errOut.String(), "worker cli-test: running validate jobs under "+f.dir)
	require.Contains(t, errOut.String(), "30s leases on the server clock", "the embedded server has a clock")
	require.Contains(t, out.String(), "worker cli-test stopped: 1 claimed, 1 succeeded, 0 failed")

	r := f.fails(ExitInvalid, "worker")
	require.Contains(t, r.stderr, "--root DIR is required")
	r = f.fails(ExitInvalid, "worker", "--root", f.dir, "--types", "inference")
	require.Contains(t, r.stderr, `job type "inference" has no handler`)
}

func TestWorkerDownloadsOnlyFromAllowedDirs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.sample()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	root := t.TempDir() // where the files are downloaded to
	enqueue := func(name, version string) bson.ObjectID {
		file := "file://" + filepath.ToSlash(filepath.Join(f.dir, "models", name+"-"+version+".onnx"))
		res, err := f.store.Queue().Enqueue(ctx, harmonia.JobDownload, &harmonia.DownloadParams{ArtifactID: mustArtifact(t, f.store, name, version), Source: file},
			&harmonia.EnqueueOpts{MaxAttempts: 1})
		require.NoError(t, err)
		return res.Job.ID
	}
	runUntil := func(id bson.ObjectID, extra ...string) *harmonia.Job {
		workerCtx, stop := context.WithCancel(ctx)
		done := make(chan int, 1)
		var out syncBuffer
		go func() {
			args := append(append(append([]string{}, f.conn...), "worker", "--root", root, "--types", "download", "--poll", "50ms"), extra...)
			done <- Execute(workerCtx, args, &out, &out, nil)
		}()
		jobs, err := f.store.Queue().WaitJobs(ctx, []bson.ObjectID{id}, nil)
		require.NoError(t, err)
		stop()
		require.Equal(t, ExitOK, <-done, out.String())
		return jobs[0]
	}

	refused := runUntil(enqueue("yolo-tiny", "0.9.0"))
	require.Equal(t, harmonia.JobFailed, refused.Status)
	require.Contains(t, refused.Error, "params.source: the file is not under the download handler's allowed directories")

	fetched := runUntil(enqueue("bert-base", "1.0.0"), "--allow-dir", f.dir)
	require.Equal(t, harmonia.JobSuccess, fetched.Status, fetched.Error)
	got, err := os.ReadFile(filepath.Join(root, "models", "bert-base-1.0.0.onnx"))
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(f.dir, "models", "bert-base-1.0.0.onnx"))
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestMigrateCommands(t *testing.T) {
	t.Parallel()
	db := harmoniatest.Database(t) // not migrated
	f := &fixture{t: t, conn: []string{"--uri", harmoniatest.CurrentLane(t).URI, "--db", db.Name()}}

	var st statusJSON
	f.json(&st, "migrate", "status")
	require.Equal(t, int64(0), st.Current)
	require.Equal(t, len(st.Migrations), st.Pending)
	require.NotEmpty(t, st.Migrations)
	last := st.Migrations[len(st.Migrations)-1].Version

	var plan reportJSON
	f.json(&plan, "migrate", "up", "--to", "2", "--dry-run")
	require.True(t, plan.DryRun)
	require.Len(t, plan.Planned, 2)
	require.Empty(t, plan.Applied)

	r := f.ok("migrate", "up", "--to", "2")
	require.Regexp(t, `(?m)^APPLIED\s+NAME\s+TRANSACTION\s+DURATION$`, r.stdout)
	require.Contains(t, r.stdout, "current version 2")
	var rep reportJSON
	f.json(&rep, "migrate", "up")
	require.Equal(t, last, rep.Current)
	require.Len(t, rep.Applied, int(last)-2)

	f.json(&st, "migrate", "status")
	require.Equal(t, last, st.Current)
	require.Equal(t, 0, st.Pending)
	require.Nil(t, st.Lock)
	require.Contains(t, f.ok("migrate", "up", "--dry-run").stdout, "nothing to apply")

	r = f.ok("migrate", "down")
	require.Contains(t, r.stdout, "current version 5", "migration 6 has a Down")
	r = f.fails(ExitInvalid, "migrate", "down")
	require.Contains(t, r.stderr, "has no Down function")
	r = f.ok("migrate", "goto", "6")
	require.Contains(t, r.stdout, "current version 6")
	f.ok("migrate", "force", "4")
	var forced statusJSON
	f.json(&forced, "migrate", "status")
	require.Equal(t, int64(4), forced.Current)
	require.Equal(t, 2, forced.Pending, "force runs nothing and forgets the records above")
	f.ok("migrate", "up")
	f.fails(ExitInvalid, "migrate", "up", "--to", "77")
	f.fails(ExitInvalid, "migrate", "resolve", "two")

	// Writes on a database nobody migrated say how to fix it.
	fresh := &fixture{t: t, conn: []string{"--uri", harmoniatest.CurrentLane(t).URI, "--db", harmoniatest.Database(t).Name()}}
	r = fresh.fails(ExitInvalid, "import", sampleFile)
	require.Contains(t, r.stderr, "Run 'harmonia migrate up' once on this database first.")
}

func TestDevdbServesUntilStopped(t *testing.T) {
	t.Parallel()
	dev, line := start(t, "serving ", "devdb", "--memory", "--addr", "127.0.0.1:0")
	require.True(t, strings.HasPrefix(line, "serving "), "no harmonia-devdb: prefix: %q", line)
	uri := strings.Fields(strings.TrimPrefix(line, "serving "))[0]
	require.Contains(t, uri, "replicaSet=rs0")

	f := &fixture{t: t, conn: []string{"--uri", uri}}
	f.ok("migrate", "up")
	require.Empty(t, f.versions())
	dev.end(t)
	require.Contains(t, dev.out.String(), "stopping")
}
