package harmonia

import (
	"github.com/harmonia-ml/harmonia/internal/textcut"

	"context"

	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// SchemaVersion is the schema_version harmonia writes on every document it
// creates or updates. Version 2 requires tags to be lowercase and unique;
// the migrate package moves version 1 documents forward.
const SchemaVersion = 2

// Collection names, stable across versions.
const (
	CollectionArtifacts  = "model_artifacts"
	CollectionLicenses   = "licenses"
	CollectionDatasets   = "datasets"
	CollectionVersions   = "inventory_versions"
	CollectionJobs       = "jobs"
	CollectionEvents     = "events"
	CollectionMigrations = "schema_migrations"
)

// Entity names used in errors.
const (
	EntityArtifact = "model_artifact"
	EntityLicense  = "license"
	EntityDataset  = "dataset"
	EntityVersion  = "inventory_version"
	EntityJob      = "job"
)

// Hashes holds the content digests of a file.
type Hashes struct {
	// SHA256 is the file's SHA-256 digest as 64 lowercase hex characters.
	// Optional at creation; required to publish.
	SHA256 string `bson:"sha256,omitempty" json:"sha256,omitempty" validate:"omitempty,sha256hex"`
}

// ModelArtifact is a stored model file: its identity (name and version,
// unique together), where it lives, its size and digest, its license, the
// datasets it was trained on, and whether an inventory version published
// it.
//
// The store sets ID, SchemaVersion, CreatedAt, UpdatedAt, Published,
// PublishedIn, VerifiedAt and VerifyError; values the caller puts there on
// create are ignored.
type ModelArtifact struct {
	ID            bson.ObjectID `bson:"_id,omitempty" json:"id" validate:"-"`
	SchemaVersion int           `bson:"schema_version" json:"schema_version" validate:"-"`

	// Name and Version are stored in Unicode NFC and must not begin or end
	// with white space nor hold control or format characters (see
	// [NameProblem]). Names are unique ignoring case (see [NameKey]).
	Name    string `bson:"name" json:"name" validate:"required,max=200,name"`
	Version string `bson:"version" json:"version" validate:"required,max=100,name"`
	// NameKey is [NameKey] of Name, set by the store: the unique index is
	// on {name_key, version}.
	NameKey string `bson:"name_key" json:"-" validate:"-"`
	// Path is s3://bucket/key, another URI with an allowed scheme
	// (gs, az, http, https, file), or a clean relative or absolute local path.
	Path string `bson:"path" json:"path" validate:"required,max=4096,storepath"`
	// SizeBytes is the file's size, 0 to [MaxSizeBytes].
	SizeBytes int64  `bson:"size_bytes" json:"size_bytes" validate:"gte=0,lte=9007199254740991"`
	Hashes    Hashes `bson:"hashes" json:"hashes"`
	// LicenseID references a License; optional at creation, required to
	// publish.
	LicenseID bson.ObjectID `bson:"license_id,omitempty" json:"license_id,omitzero" validate:"-"`
	// DatasetIDs is the artifact's lineage: the datasets it was built from.
	DatasetIDs []bson.ObjectID `bson:"dataset_ids,omitempty" json:"dataset_ids,omitempty" validate:"max=1000,unique"`
	Tags       []string        `bson:"tags,omitempty" json:"tags,omitempty" validate:"max=64,unique,dive,tag"`
	Notes      string          `bson:"notes,omitempty" json:"notes,omitempty" validate:"max=10000"`
	CreatedBy  string          `bson:"created_by,omitempty" json:"created_by,omitempty" validate:"max=200,nocontrol"`

	Published   bool            `bson:"published" json:"published" validate:"-"`
	PublishedIn []bson.ObjectID `bson:"published_in,omitempty" json:"published_in,omitempty" validate:"-"`
	VerifiedAt  *time.Time      `bson:"verified_at,omitempty" json:"verified_at,omitempty" validate:"-"`
	VerifyError string          `bson:"verify_error,omitempty" json:"verify_error,omitempty" validate:"-"`

	CreatedAt time.Time `bson:"created_at" json:"created_at" validate:"-"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at" validate:"-"`
}

// Validate checks the artifact's fields against their rules. It returns
// nil or an *Error with code [CodeInvalid] listing every broken rule.
func (a *ModelArtifact) Validate() error { return validateEntity(EntityArtifact, a) }

// Key returns the artifact's natural key, "name@version".
func (a *ModelArtifact) Key() string { return a.Name + "@" + a.Version }

// ArtifactUpdate is a partial change to an artifact: nil fields stay as
// they are. Path, SizeBytes and SHA256 are content fields and are refused
// once the artifact is published; the others may always change.
type ArtifactUpdate struct {
	Path       *string
	SizeBytes  *int64
	SHA256     *string
	LicenseID  *bson.ObjectID
	DatasetIDs *[]bson.ObjectID
	Tags       *[]string
	Notes      *string
}

// ArtifactFilter selects artifacts for [Store.ListArtifacts] and
// [Store.ListArtifactsWithLicenses]. Zero fields do not filter. Results are ordered by
// id; pass the previous page's Next as After to read the following page.
type ArtifactFilter struct {
	// NamePrefix keeps entries whose name starts with it, ignoring case
	// and Unicode form as names' uniqueness does (see [NameKey]).
	NamePrefix string
	// Name keeps entries with this name, in any letter case and Unicode
	// form (see [NameKey]).
	Name string
	// TagsAny keeps entries with at least one of these tags. Tags are
	// stored lowercase, and so the filter matches in any letter case.
	TagsAny []string
	// TagsAll keeps entries with every one of these tags (in any letter
	// case).
	TagsAll []string
	// LicenseID keeps entries under this license.
	LicenseID *bson.ObjectID
	// Published keeps published (true) or unpublished (false) entries.
	Published *bool
	// CreatedFrom and CreatedBefore bound created_at: From ≤ t < Before.
	CreatedFrom, CreatedBefore *time.Time
	// After is the pagination cursor: only ids greater than it.
	After bson.ObjectID
	// Limit bounds the page size: 0 to ListLimitMax, where 0 takes the
	// default. Defaults to ListLimitDefault; outside the range, the list
	// call fails with [CodeInvalid].
	Limit int
}

// ArtifactWithLicense pairs an artifact with its license (nil when the
// artifact has none).
type ArtifactWithLicense struct {
	Artifact *ModelArtifact
	License  *License
}

// CreateArtifact validates a and inserts it. On success a's ID,
// SchemaVersion and timestamps are set; Published, PublishedIn and the
// verification fields start empty whatever a held. The license and
// datasets it references must exist.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeInvalid] (a field, or a missing license or dataset; nothing
// written), [CodeConflict] (name and version exist already),
// [CodeInternal].
func (s *Store) CreateArtifact(ctx context.Context, a *ModelArtifact) error {
	if a == nil {
		return nilArgument(EntityArtifact)
	}
	doc := *a
	now := s.Now()
	doc.ID, doc.SchemaVersion, doc.CreatedAt, doc.UpdatedAt = bson.NewObjectID(), SchemaVersion, now, now
	doc.Published, doc.PublishedIn, doc.VerifiedAt, doc.VerifyError = false, nil, nil, ""
	doc.normalizeNames()
	if err := doc.Validate(); err != nil {
		return err
	}
	if err := s.requireUnique(ctx, EntityArtifact, CollectionArtifacts); err != nil {
		return err
	}
	if err := s.checkRefs(ctx, EntityArtifact, doc.LicenseID, doc.DatasetIDs); err != nil {
		return err
	}
	if err := insertOne(ctx, s.cols.artifacts, EntityArtifact, "name,version", doc.Key(), &doc); err != nil {
		return err
	}
	*a = doc
	return nil
}

// GetArtifact returns the artifact with id.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetArtifact(ctx context.Context, id bson.ObjectID) (*ModelArtifact, error) {
	return findOne[ModelArtifact](ctx, s.cols.artifacts, EntityArtifact, bson.D{{Key: "_id", Value: id}}, "id "+id.Hex())
}

// GetArtifactByKey returns the artifact with the natural key name and
// version: the name in any letter case and either Unicode form (see
// [NameKey]), the version in either form.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetArtifactByKey(ctx context.Context, name, version string) (*ModelArtifact, error) {
	return findOne[ModelArtifact](ctx, s.cols.artifacts, EntityArtifact, keyFilter(name, version), "key "+echo(name)+"@"+echo(version))
}

// ListArtifacts returns one page of the artifacts f selects, in id order,
// in one server command.
//
// Errors: [CodeInternal].
func (s *Store) ListArtifacts(ctx context.Context, f ArtifactFilter) (*Page[*ModelArtifact], error) {
	return listPage(ctx, s.cols.artifacts, EntityArtifact, filterDoc(f), f.Limit, func(a *ModelArtifact) bson.ObjectID { return a.ID })
}

// ListArtifactsWithLicenses returns one page of artifacts with their
// licenses resolved, in exactly two server commands whatever the page size:
// one for the artifacts and one for all their licenses.
//
// Errors: [CodeInternal].
func (s *Store) ListArtifactsWithLicenses(ctx context.Context, f ArtifactFilter) (*Page[ArtifactWithLicense], error) {
	page, err := s.ListArtifacts(ctx, f)
	if err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, len(page.Items))
	for i, a := range page.Items {
		ids[i] = a.LicenseID
	}
	licenses, err := s.licensesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := &Page[ArtifactWithLicense]{Items: make([]ArtifactWithLicense, len(page.Items)), Next: page.Next}
	for i, a := range page.Items {
		out.Items[i] = ArtifactWithLicense{Artifact: a, License: licenses[a.LicenseID]}
	}
	return out, nil
}

// UpdateArtifact applies u to the artifact with id and returns the result.
// The merged artifact is validated before anything is written. Content
// fields (path, size, sha256) of a published artifact cannot change.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeInvalid], [CodeNotFound], [CodeConflict] (published
// content), [CodeInternal].
func (s *Store) UpdateArtifact(ctx context.Context, id bson.ObjectID, u ArtifactUpdate) (*ModelArtifact, error) {
	a, err := s.GetArtifact(ctx, id)
	if err != nil {
		return nil, err
	}
	set, content := contentChange{u.Path, u.SizeBytes, u.SHA256, u.LicenseID, u.Tags, u.Notes}.apply(
		contentView{&a.Path, &a.SizeBytes, &a.Hashes.SHA256, &a.LicenseID, &a.Tags, &a.Notes})
	if u.DatasetIDs != nil {
		a.DatasetIDs = *u.DatasetIDs
		set = append(set, bson.E{Key: "dataset_ids", Value: a.DatasetIDs})
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if content && a.Published {
		return nil, PublishedContentConflict(EntityArtifact, id.Hex())
	}
	var dsIDs []bson.ObjectID
	if u.DatasetIDs != nil {
		dsIDs = a.DatasetIDs
	}
	var licID bson.ObjectID
	if u.LicenseID != nil {
		licID = a.LicenseID
	}
	if err := s.checkRefs(ctx, EntityArtifact, licID, dsIDs); err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return a, nil
	}
	now := s.Now()
	if err := s.updateGuarded(ctx, s.cols.artifacts, EntityArtifact, id, set, content, now); err != nil {
		return nil, err
	}
	a.UpdatedAt, a.SchemaVersion = now, SchemaVersion
	return a, nil
}

// DeleteArtifact deletes the artifact with id unless a published inventory
// version references it.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeNotFound], [CodeConflict] (published), [CodeInternal].
func (s *Store) DeleteArtifact(ctx context.Context, id bson.ObjectID) error {
	return deleteUnpublished(ctx, s.cols.artifacts, EntityArtifact, id)
}

// RecordVerification records the check of a's file: verified_at when
// problem is "", verify_error (cut at MaxErrorBytes) otherwise, provided
// a's path, size and sha256 are still those that were checked. The
// validate and download handlers record their checks with it.
//
// Errors: [CodeConflict] when the artifact was changed or deleted
// meanwhile, [CodeInternal].
func (s *Store) RecordVerification(ctx context.Context, a *ModelArtifact, problem string) error {
	filter := bson.D{{Key: "_id", Value: a.ID}, {Key: "path", Value: a.Path}, {Key: "size_bytes", Value: a.SizeBytes}}
	if a.Hashes.SHA256 == "" {
		filter = append(filter, bson.E{Key: "hashes.sha256", Value: bson.D{{Key: "$exists", Value: false}}})
	} else {
		filter = append(filter, bson.E{Key: "hashes.sha256", Value: a.Hashes.SHA256})
	}
	now := s.Now()
	set, unset := bson.D{{Key: "verified_at", Value: now}, {Key: "updated_at", Value: now}}, "verify_error"
	if problem != "" {
		set, unset = bson.D{{Key: "verify_error", Value: textcut.Cut(problem, MaxErrorBytes)}, {Key: "updated_at", Value: now}}, "verified_at"
	}
	res, err := s.cols.artifacts.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: set}, {Key: "$unset", Value: bson.D{{Key: unset, Value: ""}}}})
	if err != nil {
		return wrapErr(EntityArtifact, "record verification", err)
	}
	if res.MatchedCount == 0 {
		return conflictf(EntityArtifact, "path", "artifact %s was changed or deleted while its file was checked", a.ID.Hex())
	}
	return nil
}
