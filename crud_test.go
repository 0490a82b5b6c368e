package harmonia_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

func TestListLimitOutsideItsRangeIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, limit := range []int{-1, harmonia.ListLimitMax + 1, 5000} {
		_, err := b.store.ListArtifacts(b.ctx, harmonia.ArtifactFilter{Limit: limit})
		requireInvalid(t, err, harmonia.EntityArtifact, "limit")
		_, err = b.store.ListLicenses(b.ctx, harmonia.LicenseFilter{Limit: limit})
		requireInvalid(t, err, harmonia.EntityLicense, "limit")
		_, err = b.store.ListVersions(b.ctx, harmonia.VersionFilter{Limit: limit})
		requireInvalid(t, err, harmonia.EntityVersion, "limit")
	}
	_, err := b.store.ListArtifacts(b.ctx, harmonia.ArtifactFilter{Limit: harmonia.ListLimitMax})
	require.NoError(t, err)
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
