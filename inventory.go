package harmonia

import (
	"context"
	"errors"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// VersionState is the lifecycle state of an inventory version, stored as a
// stable string.
type VersionState string

// Version states. Readers only ever see published versions; a pending
// version is a staged publish in progress (or interrupted, until
// RecoverPublishes settles it).
const (
	VersionPending   VersionState = "pending"
	VersionPublished VersionState = "published"
)

// InventoryVersion is an immutable, named set of artifacts and datasets.
// Once published it cannot change, and the artifacts and datasets it
// references cannot be deleted nor their content changed.
type InventoryVersion struct {
	ID            bson.ObjectID `bson:"_id,omitempty" json:"id" validate:"-"`
	SchemaVersion int           `bson:"schema_version" json:"schema_version" validate:"-"`

	// VersionTag is stored in NFC and follows the rules of names (see
	// [NameProblem]); tags are compared exactly, letter case included.
	VersionTag  string          `bson:"version_tag" json:"version_tag" validate:"required,max=100,name"`
	State       VersionState    `bson:"state" json:"state" validate:"-"`
	ArtifactIDs []bson.ObjectID `bson:"artifact_ids" json:"artifact_ids" validate:"max=100000,unique"`
	DatasetIDs  []bson.ObjectID `bson:"datasets" json:"datasets" validate:"max=100000,unique"`
	// Manifest is the embedded snapshot of what the version contains.
	Manifest Manifest `bson:"manifest" json:"manifest" validate:"-"`
	// Digest identifies the contents across deployments: "sha256:<hex>"
	// of the manifest's canonical encoding (see [ManifestDigest]). Empty
	// only on versions published before digests existed, until the
	// migrate package's digest migration runs.
	Digest      string    `bson:"digest,omitempty" json:"digest,omitempty" validate:"-"`
	PublishedBy string    `bson:"published_by" json:"published_by" validate:"required,max=200,nocontrol"`
	PublishedAt time.Time `bson:"published_at" json:"published_at" validate:"-"`
	Notes       string    `bson:"notes,omitempty" json:"notes,omitempty" validate:"max=10000"`

	CreatedAt time.Time `bson:"created_at" json:"created_at" validate:"-"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at" validate:"-"`
}

// Validate checks the version's fields against their rules (the rules
// Publish applies to a request). It returns nil or an *Error with code
// [CodeInvalid] listing every broken rule.
func (v *InventoryVersion) Validate() error { return validateEntity(EntityVersion, v) }

// Manifest is the immutable snapshot a version embeds, so that "what is in
// 2026.11" is one read.
type Manifest struct {
	Artifacts []ManifestItem `bson:"artifacts" json:"artifacts" validate:"-"`
	Datasets  []ManifestItem `bson:"datasets" json:"datasets" validate:"-"`
}

// ManifestItem is one artifact or dataset as it was when the version was
// published.
type ManifestItem struct {
	ID            bson.ObjectID `bson:"id" json:"id" validate:"-"`
	Name          string        `bson:"name" json:"name" validate:"-"`
	Version       string        `bson:"version" json:"version" validate:"-"`
	SHA256        string        `bson:"sha256" json:"sha256" validate:"-"`
	SizeBytes     int64         `bson:"size_bytes" json:"size_bytes" validate:"-"`
	LicenseSPDXID string        `bson:"license_spdx_id" json:"license_spdx_id" validate:"-"`
}

// Key returns the item's natural key, "name@version".
func (m ManifestItem) Key() string { return m.Name + "@" + m.Version }

// versionByTag reads the version with tag in the given state.
func (s *Store) versionByTag(ctx context.Context, tag string, state VersionState) (*InventoryVersion, error) {
	tag = NormalizeName(tag)
	return findOne[InventoryVersion](ctx, s.cols.versions, EntityVersion,
		bson.D{{Key: "version_tag", Value: tag}, {Key: "state", Value: state}}, "tag "+echo(tag))
}

// GetVersion returns the published version with id. Pending versions (a
// staged publish in progress) are not visible.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetVersion(ctx context.Context, id bson.ObjectID) (*InventoryVersion, error) {
	return findOne[InventoryVersion](ctx, s.cols.versions, EntityVersion,
		bson.D{{Key: "_id", Value: id}, {Key: "state", Value: VersionPublished}}, "id "+id.Hex())
}

// GetVersionByTag returns the published version with the tag, its natural
// key. Pending versions are not visible.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetVersionByTag(ctx context.Context, tag string) (*InventoryVersion, error) {
	return s.versionByTag(ctx, tag, VersionPublished)
}

// LatestVersion returns the published version with the latest
// published_at.
//
// Errors: [CodeNotFound] (nothing published yet), [CodeInternal].
func (s *Store) LatestVersion(ctx context.Context) (*InventoryVersion, error) {
	var v InventoryVersion
	err := s.cols.versions.FindOne(ctx, bson.D{{Key: "state", Value: VersionPublished}},
		options.FindOne().SetSort(bson.D{{Key: "published_at", Value: -1}, {Key: "_id", Value: -1}})).Decode(&v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFoundf(EntityVersion, "no published version yet")
	}
	if err != nil {
		return nil, wrapErr(EntityVersion, "find latest version", err)
	}
	return &v, nil
}

// VersionFilter selects the published versions [Store.ListVersions]
// returns, newest first; pass the previous page's Next as After to read
// the following page.
type VersionFilter struct {
	// After is the pagination cursor: the versions published after it in
	// the list's order (older ones).
	After bson.ObjectID
	// Limit bounds the page size: 0 to ListLimitMax, where 0 takes the
	// default. Defaults to ListLimitDefault; outside the range, the list
	// call fails with [CodeInvalid].
	Limit int
}

// ListVersions returns one page of published versions, newest first (by
// published_at, then id).
//
// Errors: [CodeNotFound] (f.After names no published version),
// [CodeInternal].
func (s *Store) ListVersions(ctx context.Context, f VersionFilter) (*Page[*InventoryVersion], error) {
	after := f.After
	limit, err := pageLimit(EntityVersion, f.Limit)
	if err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "state", Value: VersionPublished}}
	if !after.IsZero() {
		cur, err := findOne[InventoryVersion](ctx, s.cols.versions, EntityVersion, bson.D{{Key: "_id", Value: after}, {Key: "state", Value: VersionPublished}}, "id "+after.Hex())
		if err != nil {
			return nil, err
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "published_at", Value: bson.D{{Key: "$lt", Value: cur.PublishedAt}}}},
			bson.D{{Key: "published_at", Value: cur.PublishedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: cur.ID}}}},
		}})
	}
	items, err := findAll[*InventoryVersion](ctx, s.cols.versions, EntityVersion, filter, limit+1,
		options.Find().SetSort(bson.D{{Key: "published_at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, err
	}
	p := &Page[*InventoryVersion]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.Next = p.Items[limit-1].ID
	}
	return p, nil
}

// VersionContents is a version with its artifacts, datasets and licenses
// resolved (as they are now; the version's Manifest keeps them as they
// were when published).
type VersionContents struct {
	Version   *InventoryVersion
	Artifacts []*ModelArtifact
	Datasets  []*Dataset
	// Licenses maps license ids to the licenses of the artifacts and
	// datasets.
	Licenses map[bson.ObjectID]*License
}

// VersionContentsByTag reads the published version with tag and
// everything it references in four server commands, whatever its size.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) VersionContentsByTag(ctx context.Context, tag string) (*VersionContents, error) {
	v, err := s.GetVersionByTag(ctx, tag)
	if err != nil {
		return nil, err
	}
	out := &VersionContents{Version: v}
	if out.Artifacts, err = byIDs[*ModelArtifact](ctx, s.cols.artifacts, EntityArtifact, v.ArtifactIDs); err != nil {
		return nil, err
	}
	if out.Datasets, err = byIDs[*Dataset](ctx, s.cols.datasets, EntityDataset, v.DatasetIDs); err != nil {
		return nil, err
	}
	licIDs := make([]bson.ObjectID, 0, len(out.Artifacts)+len(out.Datasets))
	for _, a := range out.Artifacts {
		licIDs = append(licIDs, a.LicenseID)
	}
	for _, d := range out.Datasets {
		licIDs = append(licIDs, d.LicenseID)
	}
	if out.Licenses, err = s.licensesByID(ctx, licIDs); err != nil {
		return nil, err
	}
	return out, nil
}

// VersionDiff lists how two versions differ, by artifact and dataset name.
type VersionDiff struct {
	From, To string
	// Added are items whose name is only in To; Removed only in From.
	Added, Removed []ManifestItem
	// Changed are items whose name is in both with another version,
	// sha256, size or license.
	Changed []ItemChange
}

// ItemChange is one name present in both versions with different
// contents.
type ItemChange struct {
	Kind     string // "model_artifact" or "dataset"
	From, To ManifestItem
}

// DiffVersionsByTag compares the manifests of the published versions
// with the tags fromTag and toTag, in one server command.
//
// Errors: [CodeNotFound] (naming the missing tag), [CodeInternal].
func (s *Store) DiffVersionsByTag(ctx context.Context, fromTag, toTag string) (*VersionDiff, error) {
	fromTag, toTag = NormalizeName(fromTag), NormalizeName(toTag)
	vs, err := findAll[*InventoryVersion](ctx, s.cols.versions, EntityVersion, bson.D{
		{Key: "version_tag", Value: bson.D{{Key: "$in", Value: bson.A{fromTag, toTag}}}}, {Key: "state", Value: VersionPublished}}, 2)
	if err != nil {
		return nil, err
	}
	byTag := map[string]*InventoryVersion{}
	for _, v := range vs {
		byTag[v.VersionTag] = v
	}
	for _, tag := range []string{fromTag, toTag} {
		if byTag[tag] == nil {
			return nil, notFoundf(EntityVersion, "no published version with tag %s", echo(tag))
		}
	}
	from, to := byTag[fromTag], byTag[toTag]
	d := &VersionDiff{From: fromTag, To: toTag}
	diffItems(d, EntityArtifact, from.Manifest.Artifacts, to.Manifest.Artifacts)
	diffItems(d, EntityDataset, from.Manifest.Datasets, to.Manifest.Datasets)
	return d, nil
}

func diffItems(d *VersionDiff, kind string, from, to []ManifestItem) {
	old := make(map[string]ManifestItem, len(from))
	for _, it := range from {
		old[it.Name] = it
	}
	seen := make(map[string]bool, len(to))
	for _, it := range to {
		seen[it.Name] = true
		prev, ok := old[it.Name]
		switch {
		case !ok:
			d.Added = append(d.Added, it)
		case prev.Version != it.Version || prev.SHA256 != it.SHA256 || prev.SizeBytes != it.SizeBytes || prev.LicenseSPDXID != it.LicenseSPDXID:
			d.Changed = append(d.Changed, ItemChange{Kind: kind, From: prev, To: it})
		}
	}
	for _, it := range from {
		if !seen[it.Name] {
			d.Removed = append(d.Removed, it)
		}
	}
}
