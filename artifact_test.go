package harmonia_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestTagFiltersIgnoreLetterCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.artifact(t, "resnet50", nil, "vision", "onnx")
	for _, f := range []harmonia.ArtifactFilter{{TagsAny: []string{"Vision"}}, {TagsAll: []string{"VISION", "Onnx"}}} {
		page, err := b.store.ListArtifacts(b.ctx, f)
		require.NoError(t, err)
		require.Len(t, page.Items, 1, "%+v", f)
		require.Equal(t, a.ID, page.Items[0].ID)
	}
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
