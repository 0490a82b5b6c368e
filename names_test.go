package harmonia_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

const (
	cafeNFC = "caf\u00e9"  // é precomposed
	cafeNFD = "cafe\u0301" // e + combining acute accent
)

// badNames are names each rule of NameProblem refuses.
var badNames = map[string]string{
	"leading space":         " resnet50",
	"trailing space":        "2026.11.0 ",
	"only a space":          " ",
	"trailing tab":          "resnet50\t",
	"trailing no-break":     "resnet50\u00a0",
	"leading ideographic":   "\u3000resnet50",
	"zero-width space":      "resnet50\u200b",
	"zero-width joiner":     "res\u200dnet50",
	"bidi override":         "\u202eresnet50",
	"byte order mark":       "\ufeffresnet50",
	"soft hyphen":           "res\u00adnet50",
	"control":               "res\x07net50",
	"newline":               "resnet\n50",
	"invalid UTF-8":         "res\xffnet",
	"bidi isolate in midst": "a\u2066b",
}

func TestNameProblem(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"resnet50", "ResNet 50", cafeNFC, cafeNFD, "日本語モデル", "2026.11.0", "v1.0-rc.1+build.7", "a"} {
		require.Empty(t, harmonia.NameProblem(ok), "%q", ok)
	}
	for what, bad := range badNames {
		require.NotEmpty(t, harmonia.NameProblem(bad), "%s: %q", what, bad)
	}
}

func TestNameKeyIgnoresCaseAndForm(t *testing.T) {
	t.Parallel()
	require.Equal(t, cafeNFC, harmonia.NormalizeName(cafeNFD))
	for _, same := range []string{"RESNET50", "ResNet50", "resnet50"} {
		require.Equal(t, "resnet50", harmonia.NameKey(same))
	}
	require.Equal(t, harmonia.NameKey("CAFE\u0301"), harmonia.NameKey(cafeNFC))
	require.Equal(t, harmonia.NaturalKey("Straße", cafeNFD), harmonia.NaturalKey("STRASSE", cafeNFC), "full case folding")
	require.NotEqual(t, harmonia.NaturalKey("resnet50", "1.0-RC1"), harmonia.NaturalKey("resnet50", "1.0-rc1"), "versions keep their case")
}

// TestNameRulesAtEveryWrite runs every bad name through each write of the
// Store that takes a name, version or version tag: each refuses it with
// an invalid error naming the entity and the field, and writes nothing.
func TestNameRulesAtEveryWrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lic := b.license(t, "MIT")
	good := b.artifact(t, "good", lic)
	for what, bad := range badNames {
		a := validArtifact()
		a.Name = bad
		requireInvalid(t, b.store.CreateArtifact(b.ctx, a), harmonia.EntityArtifact, "name")
		a = validArtifact()
		a.Name, a.Version = "ok-"+what, bad
		_, err := b.store.GetOrCreateArtifact(b.ctx, a)
		requireInvalid(t, err, harmonia.EntityArtifact, "version")

		requireInvalid(t, b.store.CreateDataset(b.ctx, &harmonia.Dataset{Name: bad, Version: "1", Path: "d.tar"}),
			harmonia.EntityDataset, "name")

		a = validArtifact()
		a.Name = bad
		errs, err := b.store.Bulk().InsertArtifacts(b.ctx, []*harmonia.ModelArtifact{a})
		require.NoError(t, err)
		requireInvalid(t, errs[0], harmonia.EntityArtifact, "name")
		errs, err = b.store.Bulk().InsertDatasets(b.ctx, []*harmonia.Dataset{{Name: "d", Version: bad, Path: "d.tar"}})
		require.NoError(t, err)
		requireInvalid(t, errs[0], harmonia.EntityDataset, "version")

		_, err = b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: bad, ArtifactIDs: []bson.ObjectID{good.ID}, PublishedBy: "x"})
		requireInvalid(t, err, harmonia.EntityVersion, "version_tag")
	}
	require.EqualValues(t, 1, count(t, b, harmonia.CollectionArtifacts))
	require.Zero(t, count(t, b, harmonia.CollectionDatasets))
	require.Zero(t, count(t, b, harmonia.CollectionVersions))
}

// TestNamesAreStoredNFCAndUniqueIgnoringCase: a name in NFD is stored in
// NFC and found by either form; a second spelling of a name under the same
// version is a conflict at every write, and lookups find the one entry
// whatever the spelling.
func TestNamesAreStoredNFCAndUniqueIgnoringCase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lic := b.license(t, "MIT")

	a := validArtifact()
	a.Name, a.Version, a.LicenseID = cafeNFD, "1."+cafeNFD, lic.ID
	require.NoError(t, b.store.CreateArtifact(b.ctx, a))
	require.Equal(t, cafeNFC, a.Name)
	require.Equal(t, "1."+cafeNFC, a.Version)
	var raw bson.M
	require.NoError(t, b.db.Collection(harmonia.CollectionArtifacts).FindOne(b.ctx, bson.D{{Key: "_id", Value: a.ID}}).Decode(&raw))
	require.Equal(t, cafeNFC, raw["name"], "stored in NFC")
	require.Equal(t, cafeNFC, raw["name_key"])

	for _, spelling := range []string{cafeNFD, cafeNFC, "CAF\u00c9", "Cafe\u0301"} {
		got, err := b.store.GetArtifactByKey(b.ctx, spelling, "1."+cafeNFD)
		require.NoError(t, err, "%q", spelling)
		require.Equal(t, a.ID, got.ID)
	}
	page, err := b.store.ListArtifacts(b.ctx, harmonia.ArtifactFilter{Name: "CAFE\u0301"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	page, err = b.store.ListArtifacts(b.ctx, harmonia.ArtifactFilter{NamePrefix: "CA"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)

	for _, spelling := range []string{"CAFÉ", cafeNFC, "Cafe\u0301"} {
		dup := validArtifact()
		dup.Name, dup.Version = spelling, "1."+cafeNFC
		require.ErrorIs(t, b.store.CreateArtifact(b.ctx, dup), harmonia.ErrConflict, "%q", spelling)
		dup = validArtifact()
		dup.Name, dup.Version = spelling, "1."+cafeNFC
		errs, err := b.store.Bulk().InsertArtifacts(b.ctx, []*harmonia.ModelArtifact{dup})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], harmonia.ErrConflict, "%q", spelling)
	}
	// Same content under another spelling is the stored entry, unchanged.
	same := *a
	same.ID, same.Name = bson.ObjectID{}, "CAFÉ"
	outcome, err := b.store.GetOrCreateArtifact(b.ctx, &same)
	require.NoError(t, err)
	require.Equal(t, harmonia.Unchanged, outcome)
	require.Equal(t, a.ID, same.ID)
	require.Equal(t, cafeNFC, same.Name, "the first writer's spelling stays")

	// Another version of the same name is another entry.
	other := validArtifact()
	other.Name, other.Version = "CAFÉ", "2"
	require.NoError(t, b.store.CreateArtifact(b.ctx, other))

	d := &harmonia.Dataset{Name: "Coco", Version: "2024.1", Path: "d.tar"}
	require.NoError(t, b.store.CreateDataset(b.ctx, d))
	require.ErrorIs(t, b.store.CreateDataset(b.ctx, &harmonia.Dataset{Name: "COCO", Version: "2024.1", Path: "d.tar"}), harmonia.ErrConflict)
	gotD, err := b.store.GetDatasetByKey(b.ctx, "coco", "2024.1")
	require.NoError(t, err)
	require.Equal(t, d.ID, gotD.ID)
	require.EqualValues(t, 2, count(t, b, harmonia.CollectionArtifacts))
	require.EqualValues(t, 1, count(t, b, harmonia.CollectionDatasets))
}

// TestVersionTagsAreNFC: a tag published in NFD is stored in NFC and
// found, aliased and diffed by either form; a tag is compared with its
// letter case.
func TestVersionTagsAreNFC(t *testing.T) {
	t.Parallel()
	b := setup(t)
	vs := b.versions(t, "r-"+cafeNFD)
	v := vs["r-"+cafeNFD]
	require.Equal(t, "r-"+cafeNFC, v.VersionTag)
	got, err := b.store.GetVersionByTag(b.ctx, "r-"+cafeNFD)
	require.NoError(t, err)
	require.Equal(t, v.ID, got.ID)
	move, err := b.store.SetAlias(b.ctx, "canary", "r-"+cafeNFD, by("alice"))
	require.NoError(t, err)
	require.Equal(t, "r-"+cafeNFC, move.To)
	_, err = b.store.SetAlias(b.ctx, "canary", "r-"+cafeNFC, &harmonia.SetAliasOpts{By: "bob", ExpectVersion: "r-" + cafeNFD})
	require.NoError(t, err, "the expectation is compared in NFC")
	_, err = b.store.DiffVersionsByTag(b.ctx, "r-"+cafeNFD, "r-"+cafeNFC)
	require.NoError(t, err)
	_, err = b.store.GetVersionByTag(b.ctx, "R-"+cafeNFC)
	require.ErrorIs(t, err, harmonia.ErrNotFound, "tags keep their case")
}

// TestAliasToMissingVersionIsNotFound: the README's exit code 3 for
// `alias set canary 2099.1.0` rests on this code; the echoed tag is cut.
func TestAliasToMissingVersionIsNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.SetAlias(b.ctx, "canary", "2099.1.0", by("alice"))
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	long := strings.Repeat("x", 100_000)
	_, err = b.store.SetAlias(b.ctx, "canary", long, by("alice"))
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	require.Less(t, len(err.Error()), 300, "the tag is cut in the message")
	_, err = b.store.SetAlias(b.ctx, strings.Repeat("a", 5000), "2099.1.0", by("alice"))
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	require.Less(t, len(err.Error()), 300)
	require.Contains(t, err.Error(), strings.Repeat("a", harmonia.EchoMax)+"…")

	a := validArtifact()
	a.Tags = []string{strings.Repeat("T", 100_000)}
	err = a.Validate()
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	require.Less(t, utf8.RuneCountInString(err.Error()), 300)
}

// TestSizeBytesBound: sizes above 2^53−1 are refused wherever an artifact
// or dataset is written; 2^53−1 itself is accepted.
func TestSizeBytesBound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tooBig := harmonia.MaxSizeBytes + 1

	a := validArtifact()
	a.SizeBytes = tooBig
	requireInvalid(t, b.store.CreateArtifact(b.ctx, a), harmonia.EntityArtifact, "size_bytes")
	_, err := b.store.GetOrCreateArtifact(b.ctx, a)
	requireInvalid(t, err, harmonia.EntityArtifact, "size_bytes")
	errs, err := b.store.Bulk().InsertArtifacts(b.ctx, []*harmonia.ModelArtifact{a})
	require.NoError(t, err)
	requireInvalid(t, errs[0], harmonia.EntityArtifact, "size_bytes")
	d := &harmonia.Dataset{Name: "d", Version: "1", Path: "d.tar", SizeBytes: tooBig}
	requireInvalid(t, b.store.CreateDataset(b.ctx, d), harmonia.EntityDataset, "size_bytes")
	errs, err = b.store.Bulk().InsertDatasets(b.ctx, []*harmonia.Dataset{d})
	require.NoError(t, err)
	requireInvalid(t, errs[0], harmonia.EntityDataset, "size_bytes")

	a = validArtifact()
	a.SizeBytes = harmonia.MaxSizeBytes
	require.NoError(t, b.store.CreateArtifact(b.ctx, a))
	_, err = b.store.UpdateArtifact(b.ctx, a.ID, harmonia.ArtifactUpdate{SizeBytes: &tooBig})
	requireInvalid(t, err, harmonia.EntityArtifact, "size_bytes")
	a.SizeBytes = tooBig
	errs, err = b.store.Bulk().ReplaceArtifacts(b.ctx, []*harmonia.ModelArtifact{a})
	require.NoError(t, err)
	requireInvalid(t, errs[0], harmonia.EntityArtifact, "size_bytes")
	d = &harmonia.Dataset{Name: "d", Version: "1", Path: "d.tar"}
	require.NoError(t, b.store.CreateDataset(b.ctx, d))
	_, err = b.store.UpdateDataset(b.ctx, d.ID, harmonia.DatasetUpdate{SizeBytes: &tooBig})
	requireInvalid(t, err, harmonia.EntityDataset, "size_bytes")
	got, err := b.store.GetArtifact(b.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, harmonia.MaxSizeBytes, got.SizeBytes)
}

// TestValidatorsRefuseBadNames: a writer that bypasses harmonia meets the
// same rules in the $jsonSchema validator, where the lane has them.
func TestValidatorsRefuseBadNames(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireValidators(t)
	b := setup(t)
	col := b.db.Collection(harmonia.CollectionArtifacts)
	doc := func(name string, size int64) bson.D {
		return bson.D{{Key: "name", Value: name}, {Key: "version", Value: "1"}, {Key: "name_key", Value: harmonia.NameKey(name)},
			{Key: "path", Value: "p"}, {Key: "size_bytes", Value: size}, {Key: "schema_version", Value: harmonia.SchemaVersion}}
	}
	_, err := col.InsertOne(b.ctx, doc("resnet50", 1))
	require.NoError(t, err, "a good document passes the validator")
	for what, bad := range map[string]string{"trailing space": "x ", "zero-width space": "x\u200b", "bidi": "\u202ex", "leading": " x"} {
		_, err := col.InsertOne(b.ctx, doc(bad, 1))
		require.Error(t, err, what)
	}
	_, err = col.InsertOne(b.ctx, doc("big", harmonia.MaxSizeBytes+1))
	require.Error(t, err, "size above 2^53-1")
	_, err = col.InsertOne(b.ctx, doc("RESNET50", 1))
	require.Error(t, err, "the unique index on name_key holds for raw writers too")
}
