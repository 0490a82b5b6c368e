package harmonia

import (
	"context"

	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Dataset is a stored data set that artifacts were built from. Like an
// artifact it is identified by name and version (unique together), and it
// is protected once an inventory version publishes it.
type Dataset struct {
	ID            bson.ObjectID `bson:"_id,omitempty" json:"id" validate:"-"`
	SchemaVersion int           `bson:"schema_version" json:"schema_version" validate:"-"`

	// Name and Version follow the artifact's rules (see
	// [ModelArtifact]): NFC, no white space at either end, no control or
	// format characters, names unique ignoring case.
	Name    string `bson:"name" json:"name" validate:"required,max=200,name"`
	Version string `bson:"version" json:"version" validate:"required,max=100,name"`
	// NameKey is [NameKey] of Name, set by the store.
	NameKey string `bson:"name_key" json:"-" validate:"-"`
	Path    string `bson:"path" json:"path" validate:"required,max=4096,storepath"`
	// SizeBytes is the file's size, 0 to [MaxSizeBytes].
	SizeBytes int64         `bson:"size_bytes" json:"size_bytes" validate:"gte=0,lte=9007199254740991"`
	Hashes    Hashes        `bson:"hashes" json:"hashes"`
	LicenseID bson.ObjectID `bson:"license_id,omitempty" json:"license_id,omitzero" validate:"-"`
	Tags      []string      `bson:"tags,omitempty" json:"tags,omitempty" validate:"max=64,unique,dive,tag"`
	Notes     string        `bson:"notes,omitempty" json:"notes,omitempty" validate:"max=10000"`
	CreatedBy string        `bson:"created_by,omitempty" json:"created_by,omitempty" validate:"max=200,nocontrol"`

	Published   bool            `bson:"published" json:"published" validate:"-"`
	PublishedIn []bson.ObjectID `bson:"published_in,omitempty" json:"published_in,omitempty" validate:"-"`

	CreatedAt time.Time `bson:"created_at" json:"created_at" validate:"-"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at" validate:"-"`
}

// Validate checks the dataset's fields against their rules. It returns nil
// or an *Error with code [CodeInvalid] listing every broken rule.
func (d *Dataset) Validate() error { return validateEntity(EntityDataset, d) }

// Key returns the dataset's natural key, "name@version".
func (d *Dataset) Key() string { return d.Name + "@" + d.Version }

// DatasetUpdate is a partial change to a dataset: nil fields stay as they
// are. Path, SizeBytes and SHA256 are refused once the dataset is
// published.
type DatasetUpdate struct {
	Path      *string
	SizeBytes *int64
	SHA256    *string
	LicenseID *bson.ObjectID
	Tags      *[]string
	Notes     *string
}

// CreateDataset validates d and inserts it. On success d's ID,
// SchemaVersion and timestamps are set. Its license must exist.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeInvalid] (nothing written), [CodeConflict] (name and
// version exist already), [CodeInternal].
func (s *Store) CreateDataset(ctx context.Context, d *Dataset) error {
	if d == nil {
		return nilArgument(EntityDataset)
	}
	doc := *d
	now := s.Now()
	doc.ID, doc.SchemaVersion, doc.CreatedAt, doc.UpdatedAt = bson.NewObjectID(), SchemaVersion, now, now
	doc.Published, doc.PublishedIn = false, nil
	doc.normalizeNames()
	if err := doc.Validate(); err != nil {
		return err
	}
	if err := s.requireUnique(ctx, EntityDataset, CollectionDatasets); err != nil {
		return err
	}
	if err := s.checkRefs(ctx, EntityDataset, doc.LicenseID, nil); err != nil {
		return err
	}
	if err := insertOne(ctx, s.cols.datasets, EntityDataset, "name,version", doc.Key(), &doc); err != nil {
		return err
	}
	*d = doc
	return nil
}

// GetDataset returns the dataset with id.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetDataset(ctx context.Context, id bson.ObjectID) (*Dataset, error) {
	return findOne[Dataset](ctx, s.cols.datasets, EntityDataset, bson.D{{Key: "_id", Value: id}}, "id "+id.Hex())
}

// GetDatasetByKey returns the dataset with the natural key name and
// version, found as [Store.GetArtifactByKey] finds an artifact.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetDatasetByKey(ctx context.Context, name, version string) (*Dataset, error) {
	return findOne[Dataset](ctx, s.cols.datasets, EntityDataset, keyFilter(name, version), "key "+echo(name)+"@"+echo(version))
}

// DatasetFilter selects datasets for [Store.ListDatasets]. It has the
// fields of [ArtifactFilter], which mean the same for datasets.
type DatasetFilter ArtifactFilter

// ListDatasets returns one page of the datasets f selects, in id order, in
// one server command.
//
// Errors: [CodeInternal].
func (s *Store) ListDatasets(ctx context.Context, f DatasetFilter) (*Page[*Dataset], error) {
	return listPage(ctx, s.cols.datasets, EntityDataset, filterDoc(ArtifactFilter(f)), f.Limit, func(d *Dataset) bson.ObjectID { return d.ID })
}

// UpdateDataset applies u to the dataset with id and returns the result.
// Content fields (path, size, sha256) of a published dataset cannot
// change.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeInvalid], [CodeNotFound], [CodeConflict] (published
// content), [CodeInternal].
func (s *Store) UpdateDataset(ctx context.Context, id bson.ObjectID, u DatasetUpdate) (*Dataset, error) {
	d, err := s.GetDataset(ctx, id)
	if err != nil {
		return nil, err
	}
	set, content := contentChange(u).apply(contentView{&d.Path, &d.SizeBytes, &d.Hashes.SHA256, &d.LicenseID, &d.Tags, &d.Notes})
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if content && d.Published {
		return nil, PublishedContentConflict(EntityDataset, id.Hex())
	}
	if u.LicenseID != nil {
		if err := s.checkRefs(ctx, EntityDataset, d.LicenseID, nil); err != nil {
			return nil, err
		}
	}
	if len(set) == 0 {
		return d, nil
	}
	now := s.Now()
	if err := s.updateGuarded(ctx, s.cols.datasets, EntityDataset, id, set, content, now); err != nil {
		return nil, err
	}
	d.UpdatedAt, d.SchemaVersion = now, SchemaVersion
	return d, nil
}

// DeleteDataset deletes the dataset with id unless a published inventory
// version references it.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeNotFound], [CodeConflict] (published), [CodeInternal].
func (s *Store) DeleteDataset(ctx context.Context, id bson.ObjectID) error {
	return deleteUnpublished(ctx, s.cols.datasets, EntityDataset, id)
}
