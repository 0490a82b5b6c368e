package harmonia

import (
	"context"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// License is a license that artifacts and datasets refer to, identified by
// its SPDX id or expression (unique).
type License struct {
	ID            bson.ObjectID `bson:"_id,omitempty" json:"id" validate:"-"`
	SchemaVersion int           `bson:"schema_version" json:"schema_version" validate:"-"`

	// SPDXID is an SPDX license identifier ("Apache-2.0") or expression
	// ("MIT OR Apache-2.0"), checked against the SPDX license list.
	SPDXID string `bson:"spdx_id" json:"spdx_id" validate:"required,max=200,spdx"`
	// TextPath locates the license text: a local path or a storage URI.
	TextPath      string `bson:"text_path,omitempty" json:"text_path,omitempty" validate:"omitempty,max=4096,storepath"`
	CommercialUse bool   `bson:"commercial_use" json:"commercial_use" validate:"-"`
	Notes         string `bson:"notes,omitempty" json:"notes,omitempty" validate:"max=10000"`

	CreatedAt time.Time `bson:"created_at" json:"created_at" validate:"-"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at" validate:"-"`
}

// Validate checks the license's fields against their rules. It returns nil
// or an *Error with code [CodeInvalid] listing every broken rule.
func (l *License) Validate() error { return validateEntity(EntityLicense, l) }

// LicenseUpdate is a partial change to a license: nil fields stay as they
// are. The SPDX id is the license's identity and does not change.
type LicenseUpdate struct {
	TextPath      *string
	CommercialUse *bool
	Notes         *string
}

// CreateLicense validates l and inserts it, with its SPDX id in the
// canonical spelling ([NormalizeSPDXID]). On success l's ID, SPDXID,
// SchemaVersion and timestamps are set.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeInvalid] (nothing written), [CodeConflict] (the SPDX id
// exists already), [CodeInternal].
func (s *Store) CreateLicense(ctx context.Context, l *License) error {
	if l == nil {
		return nilArgument(EntityLicense)
	}
	doc := *l
	doc.SPDXID = NormalizeSPDXID(doc.SPDXID)
	now := s.Now()
	doc.ID, doc.SchemaVersion, doc.CreatedAt, doc.UpdatedAt = bson.NewObjectID(), SchemaVersion, now, now
	if err := doc.Validate(); err != nil {
		return err
	}
	if err := s.requireUnique(ctx, EntityLicense, CollectionLicenses); err != nil {
		return err
	}
	if err := insertOne(ctx, s.cols.licenses, EntityLicense, "spdx_id", doc.SPDXID, &doc); err != nil {
		return err
	}
	*l = doc
	return nil
}

// GetLicense returns the license with id.
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetLicense(ctx context.Context, id bson.ObjectID) (*License, error) {
	return findOne[License](ctx, s.cols.licenses, EntityLicense, bson.D{{Key: "_id", Value: id}}, "id "+id.Hex())
}

// GetLicenseBySPDXID returns the license with the SPDX id or expression,
// in any spelling: spdxID is normalised first ([NormalizeSPDXID]), so
// "mit" finds "MIT".
//
// Errors: [CodeNotFound], [CodeInternal].
func (s *Store) GetLicenseBySPDXID(ctx context.Context, spdxID string) (*License, error) {
	spdxID = NormalizeSPDXID(spdxID)
	return findOne[License](ctx, s.cols.licenses, EntityLicense, bson.D{{Key: "spdx_id", Value: spdxID}}, "spdx_id "+spdxID)
}

// LicenseFilter selects the licenses [Store.ListLicenses] returns, in id
// order; pass the previous page's Next as After to read the following
// page.
type LicenseFilter struct {
	// CommercialUse keeps the licenses that allow (true) or forbid
	// (false) commercial use.
	CommercialUse *bool
	// After is the pagination cursor: only ids greater than it.
	After bson.ObjectID
	// Limit bounds the page size: 0 to ListLimitMax, where 0 takes the
	// default. Defaults to ListLimitDefault; outside the range, the list
	// call fails with [CodeInvalid].
	Limit int
}

// ListLicenses returns one page of the licenses f selects, in id order, in
// one server command.
//
// Errors: [CodeInternal].
func (s *Store) ListLicenses(ctx context.Context, f LicenseFilter) (*Page[*License], error) {
	filter := filterDoc(ArtifactFilter{After: f.After})
	if f.CommercialUse != nil {
		filter = append(filter, bson.E{Key: "commercial_use", Value: *f.CommercialUse})
	}
	return listPage(ctx, s.cols.licenses, EntityLicense, filter, f.Limit, func(l *License) bson.ObjectID { return l.ID })
}

// licensesByID reads the licenses with the given ids in one command (none
// when every id is zero). Ids may repeat and may be zero (no license).
func (s *Store) licensesByID(ctx context.Context, ids []bson.ObjectID) (map[bson.ObjectID]*License, error) {
	out := make(map[bson.ObjectID]*License, len(ids))
	want := make([]bson.ObjectID, 0, len(ids))
	seen := make(map[bson.ObjectID]bool, len(ids))
	for _, id := range ids {
		if !id.IsZero() && !seen[id] {
			seen[id] = true
			want = append(want, id)
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	ls, err := byIDs[*License](ctx, s.cols.licenses, EntityLicense, want)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		out[l.ID] = l
	}
	return out, nil
}

// UpdateLicense applies u to the license with id and returns the result.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeInvalid], [CodeNotFound], [CodeInternal].
func (s *Store) UpdateLicense(ctx context.Context, id bson.ObjectID, u LicenseUpdate) (*License, error) {
	l, err := s.GetLicense(ctx, id)
	if err != nil {
		return nil, err
	}
	var set bson.D
	if u.TextPath != nil {
		l.TextPath = *u.TextPath
		set = append(set, bson.E{Key: "text_path", Value: l.TextPath})
	}
	if u.CommercialUse != nil {
		l.CommercialUse = *u.CommercialUse
		set = append(set, bson.E{Key: "commercial_use", Value: l.CommercialUse})
	}
	if u.Notes != nil {
		l.Notes = *u.Notes
		set = append(set, bson.E{Key: "notes", Value: l.Notes})
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return l, nil
	}
	now := s.Now()
	if err := s.updateGuarded(ctx, s.cols.licenses, EntityLicense, id, set, false, now); err != nil {
		return nil, err
	}
	l.UpdatedAt, l.SchemaVersion = now, SchemaVersion
	return l, nil
}

// DeleteLicense deletes the license with id unless an artifact or a
// dataset references it.
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
//
// Errors: [CodeNotFound], [CodeConflict] (referenced), [CodeInternal].
func (s *Store) DeleteLicense(ctx context.Context, id bson.ObjectID) error {
	ref := bson.D{{Key: "license_id", Value: id}}
	for _, c := range []struct {
		col    *mongo.Collection
		entity string
	}{{s.cols.artifacts, EntityArtifact}, {s.cols.datasets, EntityDataset}} {
		n, err := c.col.CountDocuments(ctx, ref, options.Count().SetLimit(1))
		if err != nil {
			return wrapErr(EntityLicense, "count references", err)
		}
		if n > 0 {
			return conflictf(EntityLicense, "license_id", "license %s is referenced by a %s and cannot be deleted", id.Hex(), c.entity)
		}
	}
	res, err := s.cols.licenses.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return wrapErr(EntityLicense, "delete", err)
	}
	if res.DeletedCount == 0 {
		return notFoundf(EntityLicense, "no license with id %s", id.Hex())
	}
	return nil
}
