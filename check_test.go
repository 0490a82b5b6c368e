package harmonia_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// checkFixture is a small whole inventory: three artifacts and a
// dataset, version v1 publishing the first two artifacts and the
// dataset, and the alias prod pointing at v1.
type checkFixture struct {
	*bundle
	arts []*harmonia.ModelArtifact
	ds   *harmonia.Dataset
	v1   *harmonia.InventoryVersion
	// job is the job a case made, if any.
	job bson.ObjectID
}

// newCheckFixture builds the fixture on a store that the built-in
// migrations set up, so that schema_migrations records them.
func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	clock := harmoniatest.NewClock()
	s := harmoniatest.Store(t, &harmonia.Options{Test: &harmonia.TestOptions{Now: clock.Now}, LeaseClock: harmonia.LeaseClockLocal})
	f := &checkFixture{bundle: &bundle{ctx: t.Context(), db: s.Database(), store: s, clock: clock}}
	arts, dss := f.inventory(t, 3, 1)
	for _, id := range arts {
		a, err := f.store.GetArtifact(f.ctx, id)
		require.NoError(t, err)
		f.arts = append(f.arts, a)
	}
	ds, err := f.store.GetDataset(f.ctx, dss[0])
	require.NoError(t, err)
	f.ds = ds
	res, err := f.store.Publish(f.ctx, harmonia.PublishRequest{VersionTag: "v1", ArtifactIDs: arts[:2], DatasetIDs: dss, PublishedBy: "x"})
	require.NoError(t, err)
	f.v1 = res.Version
	_, err = f.store.SetAlias(f.ctx, "prod", "v1", by("x"))
	require.NoError(t, err)
	return f
}

// raw runs one update on col, matching exactly one document.
func (f *checkFixture) raw(t *testing.T, col string, id bson.ObjectID, update bson.D) {
	t.Helper()
	res, err := f.db.Collection(col).UpdateOne(f.ctx, bson.D{{Key: "_id", Value: id}}, update)
	require.NoError(t, err)
	require.EqualValues(t, 1, res.MatchedCount)
}

// problemKey is what a test compares of a problem.
type problemKey struct {
	Kind                  harmonia.ProblemKind
	Entity, Key, Field, V string
}

func keysOf(ps []harmonia.Problem) []problemKey {
	out := make([]problemKey, len(ps))
	for i, p := range ps {
		out[i] = problemKey{p.Kind, p.Entity, p.Key, p.Field, p.Version}
	}
	slices.SortFunc(out, func(a, b problemKey) int { return cmpString(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *checkFixture) check(t *testing.T, repair bool) *harmonia.CheckReport {
	t.Helper()
	rep, err := f.store.Check(f.ctx, &harmonia.CheckOpts{Repair: repair})
	require.NoError(t, err)
	return rep
}

func TestCheckWholeInventory(t *testing.T) {
	t.Parallel()
	f := newCheckFixture(t)
	rep := f.check(t, false)
	require.True(t, rep.OK(), "problems: %v", rep.Problems)
	assert.Empty(t, rep.Problems)
	assert.Equal(t, 3, rep.Checked[harmonia.CollectionArtifacts])
	assert.Equal(t, 1, rep.Checked[harmonia.CollectionDatasets])
	assert.Equal(t, 1, rep.Checked[harmonia.CollectionVersions])
}

// TestCheckFindsEachBrokenInvariant breaks each invariant Check guards
// with a raw write, as a restore from a backup, another program or a bug
// would, and checks that Check reports it with its entity, key and field;
// then that a repair makes whole what it may, and leaves alone what needs
// a person.
func TestCheckFindsEachBrokenInvariant(t *testing.T) {
	t.Parallel()
	art := func(f *checkFixture, i int) string { return f.arts[i].Key() }
	cases := []struct {
		name     string
		brk      func(t *testing.T, f *checkFixture)
		want     func(f *checkFixture) []problemKey
		repaired bool
		after    func(t *testing.T, f *checkFixture)
	}{{
		name: "member does not name its version",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionArtifacts, f.arts[0].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published_in", Value: bson.A{}}, {Key: "published", Value: false}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemUnmarked, harmonia.EntityArtifact, art(f, 0), "published_in", "v1"}}
		},
		repaired: true,
		after: func(t *testing.T, f *checkFixture) {
			a, err := f.store.GetArtifact(f.ctx, f.arts[0].ID)
			require.NoError(t, err)
			assert.True(t, a.Published)
			assert.Equal(t, []bson.ObjectID{f.v1.ID}, a.PublishedIn)
		},
	}, {
		name: "member not marked published",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionArtifacts, f.arts[1].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published", Value: false}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemUnmarked, harmonia.EntityArtifact, art(f, 1), "published", ""}}
		},
		repaired: true,
		after: func(t *testing.T, f *checkFixture) {
			a, err := f.store.GetArtifact(f.ctx, f.arts[1].ID)
			require.NoError(t, err)
			assert.True(t, a.Published)
		},
	}, {
		name: "dataset does not name its version",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionDatasets, f.ds.ID, bson.D{{Key: "$pull", Value: bson.D{{Key: "published_in", Value: f.v1.ID}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemUnmarked, harmonia.EntityDataset, f.ds.Key(), "published_in", "v1"}}
		},
		repaired: true,
	}, {
		name: "mark naming no version",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionArtifacts, f.arts[2].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published_in", Value: bson.A{bson.NewObjectID()}}, {Key: "published", Value: true}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemDanglingMark, harmonia.EntityArtifact, art(f, 2), "published_in", ""}}
		},
		repaired: true,
		after: func(t *testing.T, f *checkFixture) {
			a, err := f.store.GetArtifact(f.ctx, f.arts[2].ID)
			require.NoError(t, err)
			assert.False(t, a.Published)
			assert.Empty(t, a.PublishedIn)
			// It is editable again, as an unpublished artifact is.
			p := "models/other.onnx"
			_, err = f.store.UpdateArtifact(f.ctx, a.ID, harmonia.ArtifactUpdate{Path: &p})
			require.NoError(t, err)
		},
	}, {
		name: "mark naming a version that does not list it",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionArtifacts, f.arts[2].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published_in", Value: bson.A{f.v1.ID}}, {Key: "published", Value: true}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemDanglingMark, harmonia.EntityArtifact, art(f, 2), "published_in", "v1"}}
		},
		repaired: true,
	}, {
		name: "published flag with no version",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionArtifacts, f.arts[2].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published", Value: true}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemDanglingMark, harmonia.EntityArtifact, art(f, 2), "published", ""}}
		},
		repaired: true,
	}, {
		name: "stored digest differs from the manifest's",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionVersions, f.v1.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "digest", Value: "sha256:" + goodSHA}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemDigest, harmonia.EntityVersion, "v1", "digest", "v1"}}
		},
		after: func(t *testing.T, f *checkFixture) {
			v, err := f.store.GetVersionByTag(f.ctx, "v1")
			require.NoError(t, err)
			assert.Equal(t, "sha256:"+goodSHA, v.Digest, "a drifted digest is never changed")
		},
	}, {
		name: "content changed under a published version",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionArtifacts, f.arts[0].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "hashes.sha256", Value: "00" + goodSHA[2:]}, {Key: "size_bytes", Value: 7}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{
				{harmonia.ProblemManifest, harmonia.EntityArtifact, art(f, 0), "hashes.sha256", "v1"},
				{harmonia.ProblemManifest, harmonia.EntityArtifact, art(f, 0), "size_bytes", "v1"},
			}
		},
		after: func(t *testing.T, f *checkFixture) {
			a, err := f.store.GetArtifact(f.ctx, f.arts[0].ID)
			require.NoError(t, err)
			assert.Equal(t, "00"+goodSHA[2:], a.Hashes.SHA256, "changed content is never changed back")
		},
	}, {
		name: "manifest lists what the version does not",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionVersions, f.v1.ID, bson.D{{Key: "$pull", Value: bson.D{{Key: "artifact_ids", Value: f.arts[1].ID}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{
				{harmonia.ProblemManifest, harmonia.EntityVersion, "v1", "manifest", "v1"},
			}
		},
		after: func(t *testing.T, f *checkFixture) {
			a, err := f.store.GetArtifact(f.ctx, f.arts[1].ID)
			require.NoError(t, err)
			assert.Equal(t, []bson.ObjectID{f.v1.ID}, a.PublishedIn, "the mark of an item the manifest lists stays")
		},
	}, {
		name: "license that does not exist",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionArtifacts, f.arts[2].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "license_id", Value: bson.NewObjectID()}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemMissingReference, harmonia.EntityArtifact, art(f, 2), "license_id", ""}}
		},
	}, {
		name: "lineage dataset that does not exist",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionArtifacts, f.arts[2].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "dataset_ids", Value: bson.A{f.ds.ID, bson.NewObjectID()}}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemMissingReference, harmonia.EntityArtifact, art(f, 2), "dataset_ids", ""}}
		},
	}, {
		name: "version member that does not exist",
		brk: func(t *testing.T, f *checkFixture) {
			_, err := f.db.Collection(harmonia.CollectionArtifacts).DeleteOne(f.ctx, bson.D{{Key: "_id", Value: f.arts[0].ID}})
			require.NoError(t, err)
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemMissingReference, harmonia.EntityVersion, "v1", "artifact_ids", "v1"}}
		},
	}, {
		name: "alias target that does not exist",
		brk: func(t *testing.T, f *checkFixture) {
			_, err := f.db.Collection(harmonia.CollectionAliases).UpdateOne(f.ctx, bson.D{{Key: "name", Value: "prod"}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "version_id", Value: bson.NewObjectID()}}}})
			require.NoError(t, err)
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemMissingReference, harmonia.EntityAlias, "prod", "version_id", "v1"}}
		},
	}, {
		name: "pending publish older than its recovery time",
		brk: func(t *testing.T, f *checkFixture) {
			// A staged publish of arts[2] that crashed after its marks.
			v := *f.v1
			v.ID, v.VersionTag, v.State = bson.NewObjectID(), "v2", harmonia.VersionPending
			v.ArtifactIDs, v.DatasetIDs = []bson.ObjectID{f.arts[2].ID}, []bson.ObjectID{}
			a2 := f.arts[2]
			v.Manifest = harmonia.Manifest{Artifacts: []harmonia.ManifestItem{{ID: a2.ID, Name: a2.Name, Version: a2.Version, SHA256: a2.Hashes.SHA256, SizeBytes: a2.SizeBytes, LicenseSPDXID: "Apache-2.0"}}, Datasets: []harmonia.ManifestItem{}}
			var err error
			v.Digest, err = harmonia.ManifestDigest(v.Manifest)
			require.NoError(t, err)
			_, err = f.db.Collection(harmonia.CollectionVersions).InsertOne(f.ctx, &v)
			require.NoError(t, err)
			f.raw(t, harmonia.CollectionArtifacts, a2.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published_in", Value: bson.A{v.ID}}, {Key: "published", Value: true}}}})
			f.clock.Advance(harmonia.RecoverAfterDefault + time.Minute)
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemStalePublish, harmonia.EntityVersion, "v2", "state", "v2"}}
		},
		repaired: true,
		after: func(t *testing.T, f *checkFixture) {
			v, err := f.store.GetVersionByTag(f.ctx, "v2")
			require.NoError(t, err, "every member carried its mark: the recovery completes it")
			ok, err := f.store.VerifyVersion(f.ctx, v.VersionTag)
			require.NoError(t, err)
			assert.True(t, ok.OK())
		},
	}, {
		name: "running job whose lease expired long ago",
		brk: func(t *testing.T, f *checkFixture) {
			res, err := f.store.Queue().Enqueue(f.ctx, "check-test", nil, nil)
			require.NoError(t, err)
			f.job = res.Job.ID
			jobs, err := f.store.Queue().ClaimJobs(f.ctx, "w1", []harmonia.JobType{"check-test"}, 1, time.Minute)
			require.NoError(t, err)
			require.Len(t, jobs, 1)
			f.clock.Advance(harmonia.StaleLeaseDefault + time.Hour)
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemStaleLease, harmonia.EntityJob, f.job.Hex(), "lease_expires_at", ""}}
		},
	}, {
		name: "schema_version older than the migrations applied",
		brk: func(t *testing.T, f *checkFixture) {
			f.raw(t, harmonia.CollectionDatasets, f.ds.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "schema_version", Value: 1}}}})
		},
		want: func(f *checkFixture) []problemKey {
			return []problemKey{{harmonia.ProblemSchemaVersion, harmonia.EntityDataset, f.ds.Key(), "schema_version", ""}}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newCheckFixture(t)
			tc.brk(t, f)
			want := tc.want(f)
			require.NotEmpty(t, want)
			slices.SortFunc(want, func(a, b problemKey) int { return cmpString(fmt.Sprint(a), fmt.Sprint(b)) })

			rep := f.check(t, false)
			require.Equal(t, want, keysOf(rep.Problems), "problems: %v", rep.Problems)
			require.False(t, rep.OK())
			require.Zero(t, rep.Repaired)
			for _, p := range rep.Problems {
				assert.False(t, p.Repaired)
				assert.NotEmpty(t, p.Detail)
			}
			again := f.check(t, false)
			require.Equal(t, want, keysOf(again.Problems), "a check without repair changes nothing")

			fixed := f.check(t, true)
			require.Equal(t, want, keysOf(fixed.Problems), "the repair reports what it found: %v", fixed.Problems)
			for _, p := range fixed.Problems {
				assert.Equal(t, tc.repaired, p.Repaired, "%v", p)
			}
			require.Equal(t, tc.repaired, fixed.OK())
			after := f.check(t, false)
			if tc.repaired {
				require.Empty(t, after.Problems, "after the repair")
				requireConsistent(t, f.bundle)
			} else {
				require.Equal(t, want, keysOf(after.Problems), "what needs a person stays reported")
			}
			if tc.after != nil {
				tc.after(t, f)
			}
		})
	}
}

// TestCheckStreamsProblems: with OnProblem, each problem goes to the
// callback and the report keeps only the counts.
func TestCheckStreamsProblems(t *testing.T) {
	t.Parallel()
	f := newCheckFixture(t)
	for _, a := range f.arts[:2] {
		f.raw(t, harmonia.CollectionArtifacts, a.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published_in", Value: bson.A{}}}}})
	}
	var got []harmonia.Problem
	rep, err := f.store.Check(f.ctx, &harmonia.CheckOpts{Repair: true, OnProblem: func(p harmonia.Problem) { got = append(got, p) }})
	require.NoError(t, err)
	assert.Empty(t, rep.Problems)
	assert.Equal(t, 2, rep.Found)
	assert.Equal(t, 2, rep.Repaired)
	require.Len(t, got, 2)
	for _, p := range got {
		assert.True(t, p.Repaired)
		assert.Equal(t, harmonia.ProblemUnmarked, p.Kind)
	}
	_, err = f.store.Check(f.ctx, &harmonia.CheckOpts{StaleLease: -time.Second})
	require.ErrorIs(t, err, harmonia.ErrInvalid)
}

// TestPublishAgainHealsTornVersion: a version whose members lost their
// marks (a crash tore it, or a raw write) fails VerifyVersion, and a
// Publish of the same tag and contents marks every member before it
// answers Created false.
func TestPublishAgainHealsTornVersion(t *testing.T) {
	t.Parallel()
	f := newCheckFixture(t)
	f.raw(t, harmonia.CollectionArtifacts, f.arts[0].ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published_in", Value: bson.A{}}, {Key: "published", Value: false}}}})
	f.raw(t, harmonia.CollectionDatasets, f.ds.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "published", Value: false}}}})

	rep, err := f.store.VerifyVersion(f.ctx, "v1")
	require.NoError(t, err)
	require.False(t, rep.OK())
	var unmarked []string
	for _, it := range rep.Unmarked {
		unmarked = append(unmarked, it.Key())
	}
	require.ElementsMatch(t, []string{f.arts[0].Key(), f.ds.Key()}, unmarked)
	assert.Equal(t, rep.StoredDigest, rep.CurrentDigest, "the digests agree: only the marks are missing")

	res, err := f.store.Publish(f.ctx, harmonia.PublishRequest{VersionTag: "v1", ArtifactIDs: f.v1.ArtifactIDs, DatasetIDs: f.v1.DatasetIDs, PublishedBy: "x"})
	require.NoError(t, err)
	require.False(t, res.Created)
	rep, err = f.store.VerifyVersion(f.ctx, "v1")
	require.NoError(t, err)
	require.True(t, rep.OK(), "unmarked: %v", rep.Unmarked)
	requireConsistent(t, f.bundle)
	p := "models/changed.onnx"
	_, err = f.store.UpdateArtifact(f.ctx, f.arts[0].ID, harmonia.ArtifactUpdate{Path: &p})
	require.ErrorIs(t, err, harmonia.ErrPublishedContent, "the healed member is protected again")
}
