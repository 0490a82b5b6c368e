package harmonia_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestNormalizeSPDXID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mit": "MIT", " MIT": "MIT", "MIT": "MIT", "apache-2.0": "Apache-2.0",
		"gpl-2.0-only with classpath-exception-2.0": "GPL-2.0-only WITH Classpath-exception-2.0",
		"MIT OR Apache-2.0":                         "MIT OR Apache-2.0", " not-a-license ": "not-a-license",
	} {
		require.Equal(t, want, harmonia.NormalizeSPDXID(in), "%q", in)
	}
}

func TestNormalizeSPDXIDStoresOneLicensePerSpelling(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := harmoniatest.Store(t, nil)
	l := &harmonia.License{SPDXID: "mit"}
	require.NoError(t, s.CreateLicense(ctx, l))
	require.Equal(t, "MIT", l.SPDXID)
	require.ErrorIs(t, s.CreateLicense(ctx, &harmonia.License{SPDXID: " MIT"}), harmonia.ErrConflict)
	for _, spelling := range []string{"mit", "MIT", " Mit "} {
		got, err := s.GetLicenseBySPDXID(ctx, spelling)
		require.NoError(t, err, spelling)
		require.Equal(t, l.ID, got.ID, spelling)
	}
}

func TestGetOrCreateLicense(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := harmoniatest.Store(t, nil)
	first := &harmonia.License{SPDXID: "mit", CommercialUse: true}
	out, err := s.GetOrCreateLicense(ctx, first)
	require.NoError(t, err)
	require.Equal(t, harmonia.Created, out)

	again := &harmonia.License{SPDXID: "MIT", CommercialUse: true, Notes: "not compared"}
	out, err = s.GetOrCreateLicense(ctx, again)
	require.NoError(t, err)
	require.Equal(t, harmonia.Unchanged, out)
	require.Equal(t, first.ID, again.ID)
	require.Empty(t, again.Notes, "the stored license is returned")

	_, err = s.GetOrCreateLicense(ctx, &harmonia.License{SPDXID: " MIT"})
	requireConflictOn(t, err, "commercial_use")
}

func TestGetOrCreateArtifact(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := harmoniatest.Store(t, nil)
	lic := &harmonia.License{SPDXID: "Apache-2.0"}
	require.NoError(t, s.CreateLicense(ctx, lic))
	a := validArtifact()
	a.LicenseID = lic.ID
	out, err := s.GetOrCreateArtifact(ctx, a)
	require.NoError(t, err)
	require.Equal(t, harmonia.Created, out)

	same := validArtifact()
	same.LicenseID, same.Tags = lic.ID, []string{"other"}
	out, err = s.GetOrCreateArtifact(ctx, same)
	require.NoError(t, err)
	require.Equal(t, harmonia.Unchanged, out)
	require.Equal(t, a.ID, same.ID)
	require.Equal(t, a.Tags, same.Tags, "the stored artifact is returned")

	otherBytes := validArtifact()
	otherBytes.Hashes.SHA256 = "1111111111111111111111111111111111111111111111111111111111111111"
	otherBytes.SizeBytes, otherBytes.Path = 1, "models/other.onnx"
	_, err = s.GetOrCreateArtifact(ctx, otherBytes)
	requireConflictOn(t, err, "hashes.sha256")

	noLicense := validArtifact()
	_, err = s.GetOrCreateArtifact(ctx, noLicense)
	requireConflictOn(t, err, "license_id")
	n, err := s.Database().Collection(harmonia.CollectionArtifacts).CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestGetOrCreateDataset(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := harmoniatest.Store(t, nil)
	d := &harmonia.Dataset{Name: "coco", Version: "2024.1", Path: "s3://bucket/coco.tar", SizeBytes: 10}
	out, err := s.GetOrCreateDataset(ctx, d)
	require.NoError(t, err)
	require.Equal(t, harmonia.Created, out)
	same := *d
	same.ID = bson.ObjectID{}
	out, err = s.GetOrCreateDataset(ctx, &same)
	require.NoError(t, err)
	require.Equal(t, harmonia.Unchanged, out)
	require.Equal(t, d.ID, same.ID)
	bigger := &harmonia.Dataset{Name: "coco", Version: "2024.1", Path: "s3://bucket/coco.tar", SizeBytes: 11}
	_, err = s.GetOrCreateDataset(ctx, bigger)
	requireConflictOn(t, err, "size_bytes")
	_, err = s.GetOrCreateDataset(ctx, nil)
	require.ErrorIs(t, err, harmonia.ErrInvalid)
}

func requireConflictOn(t *testing.T, err error, field string) {
	t.Helper()
	require.ErrorIs(t, err, harmonia.ErrConflict)
	var he *harmonia.Error
	require.ErrorAs(t, err, &he)
	require.Equal(t, field, he.Field, "%v", err)
}
