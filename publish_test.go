package harmonia_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// inventory creates n artifacts and m datasets under one license.
func (b *bundle) inventory(t *testing.T, n, m int) (arts, dss []bson.ObjectID) {
	t.Helper()
	lic := b.license(t, "Apache-2.0")
	for i := range n {
		a := validArtifact()
		a.Name, a.LicenseID = fmt.Sprintf("model-%d", i), lic.ID
		require.NoError(t, b.store.CreateArtifact(b.ctx, a))
		arts = append(arts, a.ID)
	}
	for i := range m {
		d := &harmonia.Dataset{Name: fmt.Sprintf("data-%d", i), Version: "1", Path: "data.tar", LicenseID: lic.ID,
			Hashes: harmonia.Hashes{SHA256: goodSHA}}
		require.NoError(t, b.store.CreateDataset(b.ctx, d))
		dss = append(dss, d.ID)
	}
	return arts, dss
}

// requireConsistent checks the publish invariant: every published flag
// and published_in entry points at an existing published version that
// lists the item, no pending version is left, and every published version's
// items carry its mark.
func requireConsistent(t *testing.T, b *bundle) {
	t.Helper()
	var versions []harmonia.InventoryVersion
	cur, err := b.db.Collection(harmonia.CollectionVersions).Find(b.ctx, bson.D{})
	require.NoError(t, err)
	require.NoError(t, cur.All(b.ctx, &versions))
	byID := map[bson.ObjectID]harmonia.InventoryVersion{}
	for _, v := range versions {
		require.Equal(t, harmonia.VersionPublished, v.State, "version %s left %s", v.VersionTag, v.State)
		byID[v.ID] = v
	}
	for _, col := range []string{harmonia.CollectionArtifacts, harmonia.CollectionDatasets} {
		var docs []struct {
			ID          bson.ObjectID   `bson:"_id"`
			Published   bool            `bson:"published"`
			PublishedIn []bson.ObjectID `bson:"published_in"`
		}
		cur, err := b.db.Collection(col).Find(b.ctx, bson.D{})
		require.NoError(t, err)
		require.NoError(t, cur.All(b.ctx, &docs))
		inVersions := map[bson.ObjectID]int{}
		for _, v := range versions {
			for _, id := range append(append([]bson.ObjectID{}, v.ArtifactIDs...), v.DatasetIDs...) {
				inVersions[id]++
			}
		}
		for _, d := range docs {
			require.Equal(t, len(d.PublishedIn) > 0, d.Published, "%s %s: published flag disagrees with published_in %v", col, d.ID.Hex(), d.PublishedIn)
			require.Len(t, d.PublishedIn, inVersions[d.ID], "%s %s", col, d.ID.Hex())
			for _, vid := range d.PublishedIn {
				_, ok := byID[vid]
				require.True(t, ok, "%s %s carries a mark for version %s that does not exist", col, d.ID.Hex(), vid.Hex())
			}
		}
	}
}

func TestPublishCreatesVersionAndMarks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arts, dss := b.inventory(t, 3, 2)
	res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "2026.11.0", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "ml-platform"})
	require.NoError(t, err)
	require.True(t, res.Created)
	wantPath := harmonia.PublishStaged
	if b.store.Capabilities().Transactions {
		wantPath = harmonia.PublishTransaction
	}
	require.Equal(t, wantPath, res.Path)
	v := res.Version
	require.Equal(t, harmonia.VersionPublished, v.State)
	require.Len(t, v.Manifest.Artifacts, 3)
	require.Len(t, v.Manifest.Datasets, 2)
	require.Equal(t, "Apache-2.0", v.Manifest.Artifacts[0].LicenseSPDXID)
	require.Equal(t, goodSHA, v.Manifest.Datasets[1].SHA256)

	got, err := b.store.GetVersionByTag(b.ctx, "2026.11.0")
	require.NoError(t, err)
	require.Equal(t, v.ID, got.ID)
	require.Equal(t, v.Manifest, got.Manifest)
	for _, id := range arts {
		a, err := b.store.GetArtifact(b.ctx, id)
		require.NoError(t, err)
		require.True(t, a.Published)
		require.Equal(t, []bson.ObjectID{v.ID}, a.PublishedIn)
		require.ErrorIs(t, b.store.DeleteArtifact(b.ctx, id), harmonia.ErrConflict)
	}
	requireConsistent(t, b)

	again, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "2026.11.0", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "someone else"})
	require.NoError(t, err)
	require.False(t, again.Created)
	require.Equal(t, v.ID, again.Version.ID)

	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "2026.11.0", ArtifactIDs: arts[:2], PublishedBy: "x"})
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.Contains(t, err.Error(), "2026.11.0")
}

func TestPublishRejectsBadRequestsAndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arts, _ := b.inventory(t, 2, 0)
	noSHA := &harmonia.ModelArtifact{Name: "nosha", Version: "1", Path: "x.bin"}
	require.NoError(t, b.store.CreateArtifact(b.ctx, noSHA))
	restricted := b.license(t, "CC-BY-NC-4.0")
	require.NoError(t, func() error {
		_, err := b.store.UpdateLicense(b.ctx, restricted.ID, harmonia.LicenseUpdate{CommercialUse: new(bool)})
		return err
	}())
	nc := validArtifact()
	nc.Name, nc.LicenseID = "noncommercial", restricted.ID
	require.NoError(t, b.store.CreateArtifact(b.ctx, nc))
	missing1, missing2 := bson.NewObjectID(), bson.NewObjectID()

	tests := []struct {
		name  string
		req   harmonia.PublishRequest
		field string
		want  []string
	}{
		{"no tag", harmonia.PublishRequest{ArtifactIDs: arts, PublishedBy: "x"}, "version_tag", nil},
		{"no publisher", harmonia.PublishRequest{VersionTag: "v", ArtifactIDs: arts}, "published_by", nil},
		{"empty", harmonia.PublishRequest{VersionTag: "v", PublishedBy: "x"}, "artifact_ids", nil},
		{"duplicate ids", harmonia.PublishRequest{VersionTag: "v", PublishedBy: "x", ArtifactIDs: []bson.ObjectID{arts[0], arts[0]}}, "artifact_ids", nil},
		{"missing artifacts", harmonia.PublishRequest{VersionTag: "v", PublishedBy: "x", ArtifactIDs: []bson.ObjectID{arts[0], missing1, missing2}},
			"artifact_ids", []string{missing1.Hex(), missing2.Hex()}},
		{"missing dataset", harmonia.PublishRequest{VersionTag: "v", PublishedBy: "x", DatasetIDs: []bson.ObjectID{missing1}}, "datasets", []string{missing1.Hex()}},
		{"no sha and no license", harmonia.PublishRequest{VersionTag: "v", PublishedBy: "x", ArtifactIDs: []bson.ObjectID{noSHA.ID}}, "hashes.sha256", []string{"nosha@1"}},
		{"non-commercial", harmonia.PublishRequest{VersionTag: "v", PublishedBy: "x", ArtifactIDs: []bson.ObjectID{arts[0], nc.ID}, RequireCommercialUse: true},
			"license_id", []string{"CC-BY-NC-4.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.store.Publish(b.ctx, tc.req)
			he := requireInvalid(t, err, harmonia.EntityVersion, tc.field)
			for _, w := range tc.want {
				require.Contains(t, err.Error()+fmt.Sprint(he.Fields), w)
			}
		})
	}
	require.Zero(t, count(t, b, harmonia.CollectionVersions))
	published := true
	p, err := b.store.ListArtifacts(b.ctx, harmonia.ArtifactFilter{Published: &published})
	require.NoError(t, err)
	require.Empty(t, p.Items)

	// Commercial use not required: the same artifacts publish.
	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v", PublishedBy: "x", ArtifactIDs: []bson.ObjectID{arts[0], nc.ID}})
	require.NoError(t, err)
}

func TestPublishConcurrentSameTag(t *testing.T) {
	t.Parallel()
	for _, sameContent := range []bool{true, false} {
		t.Run(fmt.Sprintf("same content %v", sameContent), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			arts, dss := b.inventory(t, 16, 1)
			var wg sync.WaitGroup
			results := make([]*harmonia.PublishResult, 16)
			errs := make([]error, 16)
			for i := range 16 {
				wg.Go(func() {
					ids := arts
					if !sameContent {
						ids = arts[:i+1]
					}
					results[i], errs[i] = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "race", ArtifactIDs: ids, DatasetIDs: dss, PublishedBy: "w"})
				})
			}
			wg.Wait()
			var created, idempotent, conflicts int
			for i := range 16 {
				switch {
				case errs[i] == nil && results[i].Created:
					created++
				case errs[i] == nil:
					idempotent++
				case errors.Is(errs[i], harmonia.ErrConflict):
					conflicts++
				default:
					t.Fatalf("publisher %d: unexpected error %v", i, errs[i])
				}
			}
			t.Logf("16 concurrent publishes of one tag (same content %v): %d created, %d idempotent, %d conflicts", sameContent, created, idempotent, conflicts)
			require.Equal(t, 1, created)
			if sameContent {
				require.Equal(t, 15, idempotent)
			} else {
				require.Equal(t, 15, conflicts)
			}
			require.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions))
			requireConsistent(t, b)
		})
	}
}

// TestPublishCrashAtEveryStepRecovers fails the staged publish at each
// step — with an error and with a cancelled context — and checks that
// RecoverPublishes leaves every version fully published or fully absent.
func TestPublishCrashAtEveryStepRecovers(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireStandalone(t) // the staged publish runs only on deployments without transactions
	b := setup(t)
	arts, dss := b.inventory(t, 4, 2)
	for i, step := range harmonia.PublishSteps {
		for _, mode := range []string{"error", "cancel", "crash"} {
			tag := fmt.Sprintf("crash-%s-%s", step, mode)
			ctx, cancel := context.WithCancel(b.ctx)
			harmonia.SetPublishStepHook(b.store, func(ctx context.Context, s string) error {
				if s != step {
					return nil
				}
				switch mode {
				case "error":
					return errors.New("injected failure")
				case "cancel":
					cancel()
					return ctx.Err()
				}
				runtime.Goexit()
				return nil
			})
			_, err := orCrash(func() (*harmonia.PublishResult, error) {
				return b.store.Publish(ctx, harmonia.PublishRequest{VersionTag: tag, ArtifactIDs: arts[i%2:], DatasetIDs: dss, PublishedBy: "x"})
			})
			cancel()
			require.Error(t, err, tag)
			harmonia.SetPublishStepHook(b.store, nil)
			_, err = b.store.GetVersionByTag(b.ctx, tag)
			require.ErrorIs(t, err, harmonia.ErrNotFound, "%s: a failed publish is never visible", tag)
		}
	}
	// The error paths rolled back at once; the crash paths left pending
	// versions that recovery must settle once they are old enough.
	rep, err := b.store.RecoverPublishes(b.ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Completed)
	require.Empty(t, rep.RolledBack, "pending versions younger than RecoverAfter are left alone")
	b.clock.Advance(harmonia.RecoverAfterDefault + time.Second)
	rep, err = b.store.RecoverPublishes(b.ctx)
	require.NoError(t, err)
	t.Logf("recovery after crashes: completed %v, rolled back %v", rep.Completed, rep.RolledBack)
	requireConsistent(t, b)
	require.Equal(t, []string{"crash-flip-crash"}, rep.Completed, "a publish that crashed before its flip with every mark in place is completed")
	_, err = b.store.GetVersionByTag(b.ctx, "crash-flip-crash")
	require.NoError(t, err)

	// The next publish works and nothing is left pending.
	_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "after", ArtifactIDs: arts, PublishedBy: "x"})
	require.NoError(t, err)
	requireConsistent(t, b)
}

// TestPublishRacesDelete deletes an artifact while it is being published:
// at each step of the publish (through the step hook) and concurrently
// without synchronisation. Exactly one of the two wins, every time.
func TestPublishRacesDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lic := b.license(t, "MIT")
	// deleteAt names the publish step before which the delete runs; ""
	// runs both concurrently. With transactions the steps run inside one
	// transaction, whose snapshot decides instead.
	type round struct {
		deleteAt   string
		publishWin bool
	}
	var rounds []round
	if !b.store.Capabilities().Transactions {
		rounds = append(rounds, round{"insert_pending", false}, round{"mark_artifacts", false},
			round{"mark_datasets", true}, round{"flip", true})
	}
	for range 8 {
		rounds = append(rounds, round{deleteAt: ""})
	}
	var published, deleted int
	for i, r := range rounds {
		a := validArtifact()
		a.Name, a.LicenseID = fmt.Sprintf("race-%d", i), lic.ID
		require.NoError(t, b.store.CreateArtifact(b.ctx, a))
		var pubErr, delErr error
		if r.deleteAt != "" {
			harmonia.SetPublishStepHook(b.store, func(ctx context.Context, s string) error {
				if s == r.deleteAt {
					delErr = b.store.DeleteArtifact(ctx, a.ID)
				}
				return nil
			})
			_, pubErr = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: fmt.Sprintf("r%d", i), ArtifactIDs: []bson.ObjectID{a.ID}, PublishedBy: "x"})
			harmonia.SetPublishStepHook(b.store, nil)
			require.Equal(t, r.publishWin, pubErr == nil, "delete before %s: publish: %v, delete: %v", r.deleteAt, pubErr, delErr)
		} else {
			var wg sync.WaitGroup
			wg.Go(func() {
				_, pubErr = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: fmt.Sprintf("r%d", i), ArtifactIDs: []bson.ObjectID{a.ID}, PublishedBy: "x"})
			})
			wg.Go(func() { delErr = b.store.DeleteArtifact(b.ctx, a.ID) })
			wg.Wait()
		}
		require.True(t, (pubErr == nil) != (delErr == nil), "round %d (%q): exactly one wins; publish: %v, delete: %v", i, r.deleteAt, pubErr, delErr)
		if pubErr == nil {
			published++
			require.ErrorIs(t, delErr, harmonia.ErrConflict)
			_, err := b.store.GetArtifact(b.ctx, a.ID)
			require.NoError(t, err)
		} else {
			deleted++
			_, err := b.store.GetVersionByTag(b.ctx, fmt.Sprintf("r%d", i))
			require.ErrorIs(t, err, harmonia.ErrNotFound)
		}
		requireConsistent(t, b)
	}
	t.Logf("publish vs delete, %d rounds: publish won %d, delete won %d", len(rounds), published, deleted)
}

// TestPublishCommandCount checks that a publish takes a constant number of
// server commands, whatever the number of artifacts.
func TestPublishCommandCount(t *testing.T) {
	t.Parallel()
	for _, k := range []int{10, 1000} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			t.Parallel()
			db, counter := harmoniatest.CountingDatabase(t)
			b := setupOn(t, db)
			ids := insertArtifacts(t, b, k)
			counter.Reset()
			res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "v", ArtifactIDs: ids, PublishedBy: "x"})
			require.NoError(t, err)
			require.True(t, res.Created)
			require.LessOrEqual(t, counter.Total(), 10, "commands: %v", counter.Names())
			t.Logf("publish of %d artifacts (%s): %d server commands %v", k, res.Path, counter.Total(), counter.Names())
		})
	}
}

// insertArtifacts writes k publishable artifacts directly, in one command.
func insertArtifacts(t testing.TB, b *bundle, k int) []bson.ObjectID {
	t.Helper()
	lic := &harmonia.License{SPDXID: "MIT", CommercialUse: true}
	require.NoError(t, b.store.CreateLicense(b.ctx, lic))
	ids := make([]bson.ObjectID, k)
	docs := make([]any, k)
	for i := range docs {
		a := validArtifact()
		a.ID, a.Name, a.LicenseID, a.SchemaVersion = bson.NewObjectID(), fmt.Sprintf("m%05d", i), lic.ID, harmonia.SchemaVersion
		a.NameKey = harmonia.NameKey(a.Name)
		ids[i], docs[i] = a.ID, a
	}
	_, err := b.db.Collection(harmonia.CollectionArtifacts).InsertMany(b.ctx, docs)
	require.NoError(t, err)
	return ids
}

func TestVersionReads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arts, dss := b.inventory(t, 4, 1)
	_, err := b.store.LatestVersion(b.ctx)
	require.ErrorIs(t, err, harmonia.ErrNotFound)

	tags := []string{"2026.09.0", "2026.10.0", "2026.11.0"}
	contents := [][]bson.ObjectID{arts[:2], arts[1:3], {arts[0], arts[3]}}
	for i, tag := range tags {
		_, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: tag, ArtifactIDs: contents[i], DatasetIDs: dss, PublishedBy: "x"})
		require.NoError(t, err)
		b.clock.Advance(24 * time.Hour)
	}
	latest, err := b.store.LatestVersion(b.ctx)
	require.NoError(t, err)
	require.Equal(t, "2026.11.0", latest.VersionTag)

	var listed []string
	var after bson.ObjectID
	for {
		p, err := b.store.ListVersions(b.ctx, harmonia.VersionFilter{After: after, Limit: 2})
		require.NoError(t, err)
		for _, v := range p.Items {
			listed = append(listed, v.VersionTag)
		}
		if !p.More() {
			break
		}
		after = p.Next
	}
	require.Equal(t, []string{"2026.11.0", "2026.10.0", "2026.09.0"}, listed)

	vc, err := b.store.VersionContentsByTag(b.ctx, "2026.10.0")
	require.NoError(t, err)
	require.Len(t, vc.Artifacts, 2)
	require.Len(t, vc.Datasets, 1)
	require.Len(t, vc.Licenses, 1)

	// model-0 is changed in place before 2026.11 would matter: diff by name.
	diff, err := b.store.DiffVersionsByTag(b.ctx, "2026.09.0", "2026.11.0")
	require.NoError(t, err)
	names := func(items []harmonia.ManifestItem) (out []string) {
		for _, it := range items {
			out = append(out, it.Name)
		}
		return out
	}
	require.Equal(t, []string{"model-3"}, names(diff.Added))
	require.Equal(t, []string{"model-1"}, names(diff.Removed))
	require.Empty(t, diff.Changed)
	_, err = b.store.DiffVersionsByTag(b.ctx, "2026.09.0", "nope")
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	require.Contains(t, err.Error(), "nope")
}

func TestVersionDiffChanged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lic := b.license(t, "MIT")
	v1 := validArtifact()
	v1.LicenseID = lic.ID
	require.NoError(t, b.store.CreateArtifact(b.ctx, v1))
	v2 := validArtifact()
	v2.Version, v2.LicenseID = "1.3.0", lic.ID
	require.NoError(t, b.store.CreateArtifact(b.ctx, v2))
	for tag, id := range map[string]bson.ObjectID{"a": v1.ID, "b": v2.ID} {
		_, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: tag, ArtifactIDs: []bson.ObjectID{id}, PublishedBy: "x"})
		require.NoError(t, err)
	}
	diff, err := b.store.DiffVersionsByTag(b.ctx, "a", "b")
	require.NoError(t, err)
	require.Len(t, diff.Changed, 1)
	require.Equal(t, "1.2.0", diff.Changed[0].From.Version)
	require.Equal(t, "1.3.0", diff.Changed[0].To.Version)
	require.Empty(t, diff.Added)
	require.Empty(t, diff.Removed)
}

func TestPendingVersionsAreInvisible(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireStandalone(t) // pending versions exist only in the staged publish
	b := setup(t)
	arts, _ := b.inventory(t, 2, 0)
	harmonia.SetPublishStepHook(b.store, func(ctx context.Context, s string) error {
		if s == "flip" {
			runtime.Goexit()
		}
		return nil
	})
	_, err := orCrash(func() (*harmonia.PublishResult, error) {
		return b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "hidden", ArtifactIDs: arts, PublishedBy: "x"})
	})
	require.Error(t, err)
	harmonia.SetPublishStepHook(b.store, nil)
	require.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions), "the pending version is stored")
	_, err = b.store.GetVersionByTag(b.ctx, "hidden")
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	_, err = b.store.LatestVersion(b.ctx)
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	p, err := b.store.ListVersions(b.ctx, harmonia.VersionFilter{})
	require.NoError(t, err)
	require.Empty(t, p.Items)
	_, err = b.store.VersionContentsByTag(b.ctx, "hidden")
	require.ErrorIs(t, err, harmonia.ErrNotFound)
}

func TestRecoverPublishesConcurrently(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireStandalone(t) // pending versions exist only in the staged publish
	b := setup(t)
	arts, _ := b.inventory(t, 6, 0)
	for i, step := range []string{"mark_artifacts", "flip", "flip"} {
		harmonia.SetPublishStepHook(b.store, func(ctx context.Context, s string) error {
			if s == step {
				runtime.Goexit()
			}
			return nil
		})
		_, err := orCrash(func() (*harmonia.PublishResult, error) {
			return b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: fmt.Sprint("p", i), ArtifactIDs: arts[2*i : 2*i+2], PublishedBy: "x"})
		})
		require.Error(t, err)
	}
	harmonia.SetPublishStepHook(b.store, nil)
	b.clock.Advance(time.Hour)
	var wg sync.WaitGroup
	reps := make([]*harmonia.PublishRecoverReport, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() { reps[i], errs[i] = b.store.RecoverPublishes(b.ctx) })
	}
	wg.Wait()
	var completed, rolledBack []string
	for i := range 4 {
		require.NoError(t, errs[i])
		completed = append(completed, reps[i].Completed...)
		rolledBack = append(rolledBack, reps[i].RolledBack...)
	}
	require.ElementsMatch(t, []string{"p1", "p2"}, completed, "each pending version is settled exactly once")
	require.ElementsMatch(t, []string{"p0"}, rolledBack)
	requireConsistent(t, b)
}

func BenchmarkPublish1000(b *testing.B) {
	bb := setupBench(b)
	ids := insertArtifacts(b, bb, 1000)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := bb.store.Publish(bb.ctx, harmonia.PublishRequest{VersionTag: fmt.Sprint("bench-", i), ArtifactIDs: ids, PublishedBy: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

func setupBench(b *testing.B) *bundle {
	b.Helper()
	db := harmoniatest.Database(b)
	s, err := harmonia.Open(b.Context(), db, nil)
	require.NoError(b, err)
	require.NoError(b, s.EnsureIndexes(b.Context()))
	return &bundle{ctx: b.Context(), db: db, store: s, clock: harmoniatest.NewClock()}
}

// TestPublishTransaction checks the transactional path: it runs on a
// replica set or mongos and skips on lanes without transactions.
func TestPublishTransaction(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b := setup(t)
	arts, dss := b.inventory(t, 3, 1)
	harmonia.SetPublishStepHook(b.store, func(ctx context.Context, s string) error {
		if s == "insert_pending" {
			return errors.New("injected failure inside the transaction")
		}
		return nil
	})
	_, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "txn", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x"})
	require.Error(t, err)
	harmonia.SetPublishStepHook(b.store, nil)
	require.Zero(t, count(t, b, harmonia.CollectionVersions), "an aborted transaction writes nothing")
	requireConsistent(t, b)

	res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "txn", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x"})
	require.NoError(t, err)
	require.Equal(t, harmonia.PublishTransaction, res.Path)
	require.True(t, res.Created)
	requireConsistent(t, b)
}

// TestOpenRequireTransactions checks the policy on a lane with
// transactions: Open succeeds and Publish takes the transactional path.
func TestOpenRequireTransactions(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	db := harmoniatest.Database(t)
	s, err := harmonia.Open(t.Context(), db, &harmonia.Options{RequireTransactions: true})
	require.NoError(t, err)
	require.True(t, s.Capabilities().Transactions)
}

// TestPublishTransactionTransientErrors injects a transient error
// (WriteConflict, labelled TransientTransactionError) on each command of
// the transaction path in turn: Publish still yields exactly one version,
// fully marked.
func TestPublishTransactionTransientErrors(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	for _, cmd := range []string{"find", "insert", "update"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			b, failPoint, _ := failPointStore(t)
			arts, dss := b.inventory(t, 3, 1)
			failPoint(bson.D{{Key: "times", Value: 1}}, bson.D{
				{Key: "failCommands", Value: bson.A{cmd}}, {Key: "errorCode", Value: 112},
				{Key: "errorLabels", Value: bson.A{"TransientTransactionError"}}})
			res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "t1", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x"})
			require.NoError(t, err)
			assert.Equal(t, harmonia.PublishTransaction, res.Path)
			assert.True(t, res.Created)
			assert.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions))
			requireConsistent(t, b)
		})
	}
}

// TestPublishTransactionCommitRetried: an UnknownTransactionCommitResult on
// commit is retried by the driver, and the version exists once.
func TestPublishTransactionCommitRetried(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b, failPoint, counter := failPointStore(t)
	arts, _ := b.inventory(t, 2, 0)
	failPoint(bson.D{{Key: "times", Value: 2}}, bson.D{
		{Key: "failCommands", Value: bson.A{"commitTransaction"}}, {Key: "errorCode", Value: 1}, // InternalError, with the label that makes the driver retry the commit
		{Key: "errorLabels", Value: bson.A{"UnknownTransactionCommitResult"}}})
	counter.Reset()
	res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "c1", ArtifactIDs: arts, PublishedBy: "x"})
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.Equal(t, 3, counter.Count("commitTransaction"), "two failed commits and the one that succeeded")
	assert.EqualValues(t, 1, count(t, b, harmonia.CollectionVersions))
	requireConsistent(t, b)
}

// TestPublishTransactionNonTransientError: an error that is not transient
// on the marking write fails Publish and leaves nothing visible.
func TestPublishTransactionNonTransientError(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireTransactions(t)
	b, failPoint, _ := failPointStore(t)
	arts, dss := b.inventory(t, 3, 1)
	failPoint(bson.D{{Key: "times", Value: 1}}, bson.D{
		{Key: "failCommands", Value: bson.A{"update"}}, {Key: "errorCode", Value: 2}})
	_, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: "n1", ArtifactIDs: arts, DatasetIDs: dss, PublishedBy: "x"})
	require.Error(t, err)
	assert.ErrorIs(t, err, harmonia.ErrInternal)
	assert.Zero(t, count(t, b, harmonia.CollectionVersions))
	n, err := b.db.Collection(harmonia.CollectionArtifacts).CountDocuments(b.ctx, bson.D{{Key: "published", Value: true}})
	require.NoError(t, err)
	assert.Zero(t, n)
	requireConsistent(t, b)
}
