package harmonia_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestOpenDetectsCapabilities(t *testing.T) {
	t.Parallel()
	b := setup(t)
	caps := b.store.Capabilities()
	lane := harmoniatest.CurrentLane(t)
	require.Equal(t, lane.Transactions, caps.Transactions, "lane %s", lane.Name)
	require.Equal(t, lane.Validators, caps.Validators, "lane %s", lane.Name)
	require.NotEmpty(t, caps.ServerVersion)
	switch lane.Name {
	case harmoniatest.LaneEmbedded:
		require.True(t, caps.FerretDB)
		require.True(t, caps.Validators)
		require.Equal(t, "standalone", caps.Topology)
		_, err := harmonia.Open(b.ctx, b.db, &harmonia.Options{RequireTransactions: true})
		require.ErrorIs(t, err, harmonia.ErrInvalid)
	case harmoniatest.LaneEmbeddedReplSet:
		// The same FerretDB, judged by what the front makes it do.
		require.True(t, caps.FerretDB)
		require.True(t, caps.Transactions)
		require.True(t, caps.Validators)
		require.Equal(t, "replica_set", caps.Topology)
	}
	_, err := harmonia.Open(b.ctx, nil, nil)
	require.ErrorIs(t, err, harmonia.ErrInvalid)
}

func TestArtifactCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lic := b.license(t, "Apache-2.0")
	ds := &harmonia.Dataset{Name: "coco", Version: "2024.1", Path: "s3://bucket/coco.tar", SizeBytes: 10, LicenseID: lic.ID}
	require.NoError(t, b.store.CreateDataset(b.ctx, ds))

	a := validArtifact()
	a.LicenseID, a.DatasetIDs = lic.ID, []bson.ObjectID{ds.ID}
	a.Published = true // ignored on create
	require.NoError(t, b.store.CreateArtifact(b.ctx, a))
	require.False(t, a.ID.IsZero())
	require.Equal(t, harmonia.SchemaVersion, a.SchemaVersion)
	require.Equal(t, b.clock.Now(), a.CreatedAt)
	require.False(t, a.Published)

	got, err := b.store.GetArtifact(b.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, a, got)
	got, err = b.store.GetArtifactByKey(b.ctx, "resnet50", "1.2.0")
	require.NoError(t, err)
	require.Equal(t, a.ID, got.ID)

	b.clock.Advance(time.Hour)
	tags, path := []string{"vision"}, "models/resnet50-v2.onnx"
	upd, err := b.store.UpdateArtifact(b.ctx, a.ID, harmonia.ArtifactUpdate{Tags: &tags, Path: &path})
	require.NoError(t, err)
	require.Equal(t, path, upd.Path)
	require.Equal(t, b.clock.Now(), upd.UpdatedAt)
	got, err = b.store.GetArtifact(b.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, upd, got)

	require.NoError(t, b.store.DeleteArtifact(b.ctx, a.ID))
	_, err = b.store.GetArtifact(b.ctx, a.ID)
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	require.ErrorIs(t, b.store.DeleteArtifact(b.ctx, a.ID), harmonia.ErrNotFound)
	_, err = b.store.UpdateArtifact(b.ctx, a.ID, harmonia.ArtifactUpdate{Tags: &tags})
	require.ErrorIs(t, err, harmonia.ErrNotFound)
}

func TestCreateRejectsBadInputAndWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lic := b.license(t, "MIT")

	bad := validArtifact()
	bad.Hashes.SHA256 = "nothex"
	requireInvalid(t, b.store.CreateArtifact(b.ctx, bad), harmonia.EntityArtifact, "hashes.sha256")
	require.True(t, bad.ID.IsZero(), "a failed create leaves the caller's value alone")

	missingLic := validArtifact()
	missingLic.LicenseID = bson.NewObjectID()
	requireInvalid(t, b.store.CreateArtifact(b.ctx, missingLic), harmonia.EntityArtifact, "license_id")

	missingDS := validArtifact()
	missingDS.LicenseID, missingDS.DatasetIDs = lic.ID, []bson.ObjectID{bson.NewObjectID()}
	requireInvalid(t, b.store.CreateArtifact(b.ctx, missingDS), harmonia.EntityArtifact, "dataset_ids")

	requireInvalid(t, b.store.CreateLicense(b.ctx, &harmonia.License{SPDXID: "Not-A-License"}), harmonia.EntityLicense, "spdx_id")
	requireInvalid(t, b.store.CreateDataset(b.ctx, &harmonia.Dataset{Name: "d", Version: "1", Path: "/a/../b"}), harmonia.EntityDataset, "path")
	require.Zero(t, count(t, b, harmonia.CollectionArtifacts))
	require.Zero(t, count(t, b, harmonia.CollectionDatasets))
	require.EqualValues(t, 1, count(t, b, harmonia.CollectionLicenses))

	a := b.artifact(t, "x", lic)
	bad2 := "BAD"
	_, err := b.store.UpdateArtifact(b.ctx, a.ID, harmonia.ArtifactUpdate{SHA256: &bad2})
	requireInvalid(t, err, harmonia.EntityArtifact, "hashes.sha256")
	got, err := b.store.GetArtifact(b.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, goodSHA, got.Hashes.SHA256)
}

func TestDuplicateKeysAreConflicts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.license(t, "MIT")
	err := b.store.CreateLicense(b.ctx, &harmonia.License{SPDXID: "MIT"})
	require.ErrorIs(t, err, harmonia.ErrConflict)
	var he *harmonia.Error
	require.ErrorAs(t, err, &he)
	require.Equal(t, "spdx_id", he.Field)
	require.Equal(t, harmonia.EntityLicense, he.Entity)

	b.artifact(t, "dup", nil)
	err = b.store.CreateArtifact(b.ctx, &harmonia.ModelArtifact{Name: "dup", Version: "1.2.0", Path: "p"})
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.ErrorAs(t, err, &he)
	require.Equal(t, "name,version", he.Field)
	require.NotNil(t, errors.Unwrap(err), "the driver error is kept as the cause")
}

func TestPublishedEntitiesAreProtected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lic := b.license(t, "Apache-2.0")
	a := b.artifact(t, "m", lic)
	ds := &harmonia.Dataset{Name: "d", Version: "1", Path: "d.tar", LicenseID: lic.ID}
	require.NoError(t, b.store.CreateDataset(b.ctx, ds))
	for _, c := range []string{harmonia.CollectionArtifacts, harmonia.CollectionDatasets} {
		_, err := b.db.Collection(c).UpdateMany(b.ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "published", Value: true}}}})
		require.NoError(t, err)
	}

	require.ErrorIs(t, b.store.DeleteArtifact(b.ctx, a.ID), harmonia.ErrConflict)
	require.ErrorIs(t, b.store.DeleteDataset(b.ctx, ds.ID), harmonia.ErrConflict)
	size := int64(1)
	_, err := b.store.UpdateArtifact(b.ctx, a.ID, harmonia.ArtifactUpdate{SizeBytes: &size})
	require.ErrorIs(t, err, harmonia.ErrConflict)
	_, err = b.store.UpdateDataset(b.ctx, ds.ID, harmonia.DatasetUpdate{SizeBytes: &size})
	require.ErrorIs(t, err, harmonia.ErrConflict)

	notes, tags := "still editable", []string{"prod"}
	got, err := b.store.UpdateArtifact(b.ctx, a.ID, harmonia.ArtifactUpdate{Notes: &notes, Tags: &tags})
	require.NoError(t, err)
	require.Equal(t, notes, got.Notes)
	require.Equal(t, int64(102400), got.SizeBytes)

	require.ErrorIs(t, b.store.DeleteLicense(b.ctx, lic.ID), harmonia.ErrConflict)
}

func TestDeleteLicense(t *testing.T) {
	t.Parallel()
	b := setup(t)
	used := b.license(t, "MIT")
	free := b.license(t, "Apache-2.0")
	ds := &harmonia.Dataset{Name: "d", Version: "1", Path: "d.tar", LicenseID: used.ID}
	require.NoError(t, b.store.CreateDataset(b.ctx, ds))
	err := b.store.DeleteLicense(b.ctx, used.ID)
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.Contains(t, err.Error(), "dataset")
	require.NoError(t, b.store.DeleteLicense(b.ctx, free.ID))
	require.ErrorIs(t, b.store.DeleteLicense(b.ctx, free.ID), harmonia.ErrNotFound)

	commercial := false
	l, err := b.store.UpdateLicense(b.ctx, used.ID, harmonia.LicenseUpdate{CommercialUse: &commercial})
	require.NoError(t, err)
	require.False(t, l.CommercialUse)
	got, err := b.store.GetLicenseBySPDXID(b.ctx, "MIT")
	require.NoError(t, err)
	require.Equal(t, l, got)
}

func TestListArtifactsFiltersAndPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mit, apache := b.license(t, "MIT"), b.license(t, "Apache-2.0")
	var made []*harmonia.ModelArtifact
	for i := range 12 {
		lic, tags := mit, []string{"vision"}
		if i%2 == 1 {
			lic, tags = apache, []string{"nlp", "onnx"}
		}
		if i%3 == 0 {
			tags = append(tags, "prod")
		}
		made = append(made, b.artifact(t, fmt.Sprintf("model-%02d", i), lic, tags...))
		b.clock.Advance(time.Minute)
	}
	names := func(f harmonia.ArtifactFilter) []string {
		t.Helper()
		p, err := b.store.ListArtifacts(b.ctx, f)
		require.NoError(t, err)
		var out []string
		for _, a := range p.Items {
			out = append(out, a.Name)
		}
		return out
	}
	require.Len(t, names(harmonia.ArtifactFilter{}), 12)
	require.Equal(t, []string{"model-01", "model-03", "model-05", "model-07", "model-09", "model-11"}, names(harmonia.ArtifactFilter{LicenseID: &apache.ID}))
	require.Equal(t, []string{"model-00", "model-03", "model-06", "model-09"}, names(harmonia.ArtifactFilter{TagsAny: []string{"prod"}}))
	require.Equal(t, []string{"model-03", "model-09"}, names(harmonia.ArtifactFilter{TagsAll: []string{"prod", "nlp"}}))
	require.Equal(t, []string{"model-10", "model-11"}, names(harmonia.ArtifactFilter{NamePrefix: "model-1"}))
	require.Empty(t, names(harmonia.ArtifactFilter{NamePrefix: "model-.*"}), "the prefix is literal, not a regex")
	from, before := made[2].CreatedAt, made[5].CreatedAt
	require.Equal(t, []string{"model-02", "model-03", "model-04"}, names(harmonia.ArtifactFilter{CreatedFrom: &from, CreatedBefore: &before}))
	no := false
	require.Len(t, names(harmonia.ArtifactFilter{Published: &no}), 12)

	var all []string
	f := harmonia.ArtifactFilter{Limit: 5}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 4)
		p, err := b.store.ListArtifacts(b.ctx, f)
		require.NoError(t, err)
		for _, a := range p.Items {
			all = append(all, a.Name)
		}
		if !p.More() {
			break
		}
		f.After = p.Next
	}
	require.Len(t, all, 12)
	require.Equal(t, "model-00", all[0])
	require.Equal(t, "model-11", all[11])
}

// TestListWithLicensesCommandCount checks that listing 500 artifacts with
// their licenses takes exactly two server commands.
func TestListWithLicensesCommandCount(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db)
	var lics []*harmonia.License
	for _, id := range []string{"MIT", "Apache-2.0", "BSD-3-Clause", "CC-BY-4.0"} {
		lics = append(lics, b.license(t, id))
	}
	docs := make([]any, 500)
	for i := range docs {
		a := validArtifact()
		a.ID, a.Name, a.LicenseID, a.SchemaVersion = bson.NewObjectID(), fmt.Sprintf("m%03d", i), lics[i%len(lics)].ID, harmonia.SchemaVersion
		a.NameKey = harmonia.NameKey(a.Name)
		docs[i] = a
	}
	_, err := db.Collection(harmonia.CollectionArtifacts).InsertMany(b.ctx, docs)
	require.NoError(t, err)

	counter.Reset()
	page, err := b.store.ListArtifactsWithLicenses(b.ctx, harmonia.ArtifactFilter{Limit: 500})
	require.NoError(t, err)
	require.Equal(t, 2, counter.Total(), "commands: %v", counter.Names())
	require.Len(t, page.Items, 500)
	require.False(t, page.More())
	for i, item := range page.Items {
		require.NotNil(t, item.License, "artifact %d", i)
		require.Equal(t, item.Artifact.LicenseID, item.License.ID)
	}
	t.Logf("list 500 artifacts with licenses: %d server commands %v", counter.Total(), counter.Names())
}

func TestEnsureIndexesIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.store.EnsureIndexes(b.ctx))
	for _, want := range harmonia.Indexes() {
		specs, err := b.db.Collection(want.Collection).Indexes().ListSpecifications(b.ctx)
		require.NoError(t, err)
		var found bool
		for _, s := range specs {
			if s.Name == want.Name {
				found = true
				require.Equal(t, want.Unique, s.Unique != nil && *s.Unique, "%s.%s", want.Collection, want.Name)
			}
		}
		require.True(t, found, "index %s.%s", want.Collection, want.Name)
	}
}

func TestValidatorsRejectBypassingWriters(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireValidators(t)
	b := setup(t)
	_, err := b.db.Collection(harmonia.CollectionArtifacts).InsertOne(b.ctx, bson.D{{Key: "name", Value: ""}, {Key: "version", Value: 1}})
	require.Error(t, err)
}
