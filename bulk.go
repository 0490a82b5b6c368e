package harmonia

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Bulk operations write many licenses, datasets or artifacts with a few
// commands whatever their number, under the rules of the single-entity
// calls: every item is validated, stamped with SchemaVersion and its
// times, its references checked, its natural key kept unique, and the
// content of published artifacts and datasets left alone. They are for
// tools that move many entities at once, such as the inventory importer.
//
// Each returns one error per item, in order: nil for an item that was
// written, else an *Error naming the item's index in its Reason and
// carrying the code of the single-entity call ([CodeInvalid],
// [CodeConflict], [CodeNotFound]). The second result is an error of the
// call as a whole ([CodeInternal]); items may have been written before it.

// bulkWriteMax is the most write models one BulkWrite command holds
// (FerretDB v1.24.2 deadlocks on an update command of about 100
// statements).
const bulkWriteMax = 50

// Bulk holds a [Store]'s bulk writes, which write many licenses,
// datasets or artifacts with one unordered command per batch and report
// an error per item; the inventoryfile importer writes through them. Get
// it with [Store.Bulk].
type Bulk struct {
	store *Store
}

// Bulk returns the Store's bulk writes.
func (s *Store) Bulk() *Bulk { return &s.bulk }

// bulkEntity is an entity a bulk operation writes.
type bulkEntity interface {
	*License | *Dataset | *ModelArtifact
}

// InsertLicenses inserts new licenses, as [Store.CreateLicense] does one,
// with one unordered insert. An item's ID is kept when set (so that a
// caller may reference it before the insert), else a new one is set; its
// CreatedAt is kept when set (a tool replaying history sets it), else
// now. Items are updated in place like CreateLicense's (the SPDX id is
// normalised).
//
// Errors per item: [CodeInvalid], [CodeConflict] (the SPDX id exists).
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
func (b *Bulk) InsertLicenses(ctx context.Context, ls []*License) ([]error, error) {
	s := b.store
	return bulkInsert(ctx, s, s.cols.licenses, EntityLicense, "spdx_id", ls, func(l *License, now time.Time) (string, error) {
		l.SPDXID, l.SchemaVersion, l.UpdatedAt = NormalizeSPDXID(l.SPDXID), SchemaVersion, now
		l.CreatedAt = stamp(l.CreatedAt, now)
		return l.SPDXID, l.Validate()
	}, nil)
}

// InsertDatasets inserts new datasets, as [Bulk.InsertLicenses] does
// licenses; Published and PublishedIn are cleared. Their licenses must
// exist.
//
// Errors per item: [CodeInvalid] (also a missing license), [CodeConflict]
// (name and version exist).
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
func (b *Bulk) InsertDatasets(ctx context.Context, ds []*Dataset) ([]error, error) {
	s := b.store
	return bulkInsert(ctx, s, s.cols.datasets, EntityDataset, "name,version", ds, func(d *Dataset, now time.Time) (string, error) {
		d.SchemaVersion, d.UpdatedAt, d.Published, d.PublishedIn = SchemaVersion, now, false, nil
		d.CreatedAt = stamp(d.CreatedAt, now)
		d.normalizeNames()
		return d.Key(), d.Validate()
	}, func(d *Dataset) (bson.ObjectID, []bson.ObjectID) { return d.LicenseID, nil })
}

// InsertArtifacts inserts new artifacts, as [Bulk.InsertLicenses] does
// licenses; Published, PublishedIn, VerifiedAt and VerifyError are
// cleared. Their licenses and datasets must exist.
//
// Errors per item: [CodeInvalid] (also a missing license or dataset),
// [CodeConflict] (name and version exist).
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
func (b *Bulk) InsertArtifacts(ctx context.Context, as []*ModelArtifact) ([]error, error) {
	s := b.store
	return bulkInsert(ctx, s, s.cols.artifacts, EntityArtifact, "name,version", as, func(a *ModelArtifact, now time.Time) (string, error) {
		a.SchemaVersion, a.UpdatedAt, a.Published, a.PublishedIn = SchemaVersion, now, false, nil
		a.VerifiedAt, a.VerifyError = nil, ""
		a.CreatedAt = stamp(a.CreatedAt, now)
		a.normalizeNames()
		return a.Key(), a.Validate()
	}, artifactRefs)
}

// ReplaceLicenses gives stored licenses, found by ID, the caller-owned
// fields of the items (text_path, commercial_use, notes; empty optional
// fields are removed), with updated_at and schema_version. The SPDX id
// does not change.
//
// Errors per item: [CodeInvalid], [CodeNotFound].
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
func (b *Bulk) ReplaceLicenses(ctx context.Context, ls []*License) ([]error, error) {
	s := b.store
	return bulkReplace(ctx, s, s.cols.licenses, EntityLicense, ls, func(l *License) (bson.ObjectID, bson.D, bson.D, error) {
		var c change
		c.opt("commercial_use", l.CommercialUse, false)
		c.opt("text_path", l.TextPath, l.TextPath == "")
		c.opt("notes", l.Notes, l.Notes == "")
		return l.ID, nil, c.doc(), l.Validate()
	}, nil)
}

// ReplaceDatasets gives stored datasets, found by ID, the caller-owned
// fields of the items (path, size_bytes, hashes.sha256, license_id, tags,
// notes, created_by; empty optional fields are removed). The content
// (path, size, sha256) of a published dataset cannot change; its other
// fields may. Licenses must exist.
//
// Errors per item: [CodeInvalid], [CodeNotFound], [CodeConflict] wrapping
// [ErrPublishedContent].
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
func (b *Bulk) ReplaceDatasets(ctx context.Context, ds []*Dataset) ([]error, error) {
	s := b.store
	return bulkReplace(ctx, s, s.cols.datasets, EntityDataset, ds, func(d *Dataset) (bson.ObjectID, bson.D, bson.D, error) {
		var c change
		c.item(d.Path, d.SizeBytes, d.Hashes.SHA256, d.LicenseID, d.Tags, d.Notes, d.CreatedBy)
		return d.ID, contentGuard(d.Path, d.SizeBytes, d.Hashes.SHA256), c.doc(), d.Validate()
	}, func(d *Dataset) (bson.ObjectID, []bson.ObjectID) { return d.LicenseID, nil })
}

// ReplaceArtifacts gives stored artifacts, found by ID, the caller-owned
// fields of the items, as [Bulk.ReplaceDatasets] does, and dataset_ids.
//
// Errors per item: [CodeInvalid], [CodeNotFound], [CodeConflict] wrapping
// [ErrPublishedContent].
//
// It joins the transaction ctx carries, if any (see [Store.InTransaction]).
func (b *Bulk) ReplaceArtifacts(ctx context.Context, as []*ModelArtifact) ([]error, error) {
	s := b.store
	return bulkReplace(ctx, s, s.cols.artifacts, EntityArtifact, as, func(a *ModelArtifact) (bson.ObjectID, bson.D, bson.D, error) {
		var c change
		c.item(a.Path, a.SizeBytes, a.Hashes.SHA256, a.LicenseID, a.Tags, a.Notes, a.CreatedBy)
		c.opt("dataset_ids", a.DatasetIDs, len(a.DatasetIDs) == 0)
		return a.ID, contentGuard(a.Path, a.SizeBytes, a.Hashes.SHA256), c.doc(), a.Validate()
	}, artifactRefs)
}

// idOf points at the ID of a bulk item.
func idOf[T bulkEntity](it T) *bson.ObjectID {
	switch v := any(it).(type) {
	case *License:
		return &v.ID
	case *Dataset:
		return &v.ID
	case *ModelArtifact:
		return &v.ID
	}
	panic(fmt.Sprintf("harmonia: %T is not a bulk entity", it))
}

func artifactRefs(a *ModelArtifact) (bson.ObjectID, []bson.ObjectID) {
	return a.LicenseID, a.DatasetIDs
}

// stamp returns t in BSON's precision, or now when t is zero.
func stamp(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t.UTC().Truncate(time.Millisecond)
}

// itemErr names item i of a bulk call in err's reason.
func itemErr(i int, err error) error {
	var he *Error
	if !errors.As(err, &he) {
		return err
	}
	c := *he
	c.Reason = fmt.Sprintf("item %d: %s", i, he.Reason)
	return &c
}

// bulkInsert validates and stamps each item (prepare returns its natural
// key), checks the references of the valid ones (refs; nil for none), and
// inserts the items that passed with one unordered insert.
func bulkInsert[T bulkEntity](ctx context.Context, s *Store, col *mongo.Collection, entity, keyFields string, items []T,
	prepare func(T, time.Time) (string, error), refs func(T) (bson.ObjectID, []bson.ObjectID)) ([]error, error) {
	if err := s.requireUnique(ctx, entity, col.Name()); err != nil {
		return nil, err
	}
	now := s.Now()
	errs := make([]error, len(items))
	keys := make([]string, len(items))
	for i, it := range items {
		if reflect.ValueOf(it).IsNil() {
			errs[i] = itemErr(i, nilArgument(entity))
			continue
		}
		if id := idOf(it); id.IsZero() {
			*id = bson.NewObjectID()
		}
		keys[i], errs[i] = prepare(it, now)
	}
	if err := checkBulkRefs(ctx, s, entity, items, errs, refs); err != nil {
		return nil, err
	}
	var docs []any
	var idx []int
	for i, it := range items {
		if errs[i] == nil {
			docs, idx = append(docs, it), append(idx, i)
		}
	}
	if len(docs) > 0 {
		_, err := col.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		var bwe mongo.BulkWriteException
		switch {
		case err == nil:
		case errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0:
			for _, we := range bwe.WriteErrors {
				if we.Index < 0 || we.Index >= len(idx) {
					return nil, wrapErr(entity, "insert", err)
				}
				i := idx[we.Index]
				errs[i] = duplicateOf(entity, keyFields, keys[i], we)
			}
		default:
			return nil, wrapErr(entity, "insert", err)
		}
	}
	for i := range errs {
		if errs[i] != nil {
			errs[i] = itemErr(i, errs[i])
		}
	}
	return errs, nil
}

// bulkReplace validates each item (update returns its id, the guard that
// its stored document must match unless unpublished, and the update),
// checks references, and writes the updates of the items that passed
// with unordered bulk writes. Items that matched nothing are then read
// back once to tell a missing document from published content.
func bulkReplace[T bulkEntity](ctx context.Context, s *Store, col *mongo.Collection, entity string, items []T,
	update func(T) (bson.ObjectID, bson.D, bson.D, error), refs func(T) (bson.ObjectID, []bson.ObjectID)) ([]error, error) {
	now := s.Now()
	errs := make([]error, len(items))
	models := make([]mongo.WriteModel, 0, len(items))
	var idx []int
	guards := make([]bson.D, len(items))
	for i, it := range items {
		if reflect.ValueOf(it).IsNil() {
			errs[i] = itemErr(i, nilArgument(entity))
			continue
		}
		id, guard, u, err := update(it)
		if err == nil && id.IsZero() {
			err = invalidf(entity, "id", "is required: the id of the stored %s to replace", entity)
		}
		if errs[i] = err; err != nil {
			continue
		}
		guards[i] = guard
		filter := bson.D{{Key: "_id", Value: id}}
		if guard != nil {
			filter = append(filter, bson.E{Key: "$or", Value: bson.A{
				bson.D{{Key: "published", Value: bson.D{{Key: "$ne", Value: true}}}}, guard}})
		}
		set := append(u[0].Value.(bson.D), bson.E{Key: "updated_at", Value: now}, bson.E{Key: "schema_version", Value: SchemaVersion})
		u[0].Value = set
		models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(u))
		idx = append(idx, i)
	}
	if err := checkBulkRefs(ctx, s, entity, items, errs, refs); err != nil {
		return nil, err
	}
	// Drop the models of items whose references failed.
	kept, keptIdx := models[:0], idx[:0]
	for k, i := range idx {
		if errs[i] == nil {
			kept, keptIdx = append(kept, models[k]), append(keptIdx, i)
		}
	}
	var matched int64
	for chunk := range slices.Chunk(kept, bulkWriteMax) {
		res, err := col.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false))
		if err != nil {
			return nil, wrapErr(entity, "update", err)
		}
		matched += res.MatchedCount
	}
	if int(matched) != len(kept) {
		if err := explainUnmatched(ctx, col, entity, items, keptIdx, guards, errs); err != nil {
			return nil, err
		}
	}
	for i := range errs {
		if errs[i] != nil {
			errs[i] = itemErr(i, errs[i])
		}
	}
	return errs, nil
}

// explainUnmatched reads the documents of the items idx once and sets the
// error of each that is missing (not found) or published with other
// content (conflict).
func explainUnmatched[T bulkEntity](ctx context.Context, col *mongo.Collection, entity string, items []T, idx []int, guards []bson.D, errs []error) error {
	ids := make([]bson.ObjectID, len(idx))
	for k, i := range idx {
		ids[k] = *idOf(items[i])
	}
	type stored struct {
		ID        bson.ObjectID `bson:"_id"`
		Published bool          `bson:"published"`
		Path      string        `bson:"path"`
		SizeBytes int64         `bson:"size_bytes"`
		Hashes    Hashes        `bson:"hashes"`
	}
	found, err := byIDs[stored](ctx, col, entity, ids)
	if err != nil {
		return err
	}
	byID := make(map[bson.ObjectID]stored, len(found))
	for _, f := range found {
		byID[f.ID] = f
	}
	for k, i := range idx {
		f, ok := byID[ids[k]]
		switch {
		case !ok:
			errs[i] = notFoundf(entity, "no %s with id %s", entity, ids[k].Hex())
		case f.Published && !slices.Equal(contentGuard(f.Path, f.SizeBytes, f.Hashes.SHA256), guards[i]):
			errs[i] = PublishedContentConflict(entity, ids[k].Hex())
		}
	}
	return nil
}

// contentGuard matches a document whose content is this path, size and
// sha256.
func contentGuard(path string, size int64, sha string) bson.D {
	g := bson.D{{Key: "path", Value: path}, {Key: "size_bytes", Value: size}}
	if sha == "" {
		return append(g, bson.E{Key: "hashes.sha256", Value: bson.D{{Key: "$exists", Value: false}}})
	}
	return append(g, bson.E{Key: "hashes.sha256", Value: sha})
}

// checkBulkRefs checks, with one query per referenced collection, that
// the licenses and datasets the valid items reference exist, and sets the
// error of each item with a missing one.
func checkBulkRefs[T bulkEntity](ctx context.Context, s *Store, entity string, items []T, errs []error, refs func(T) (bson.ObjectID, []bson.ObjectID)) error {
	if refs == nil {
		return nil
	}
	var lics, dss []bson.ObjectID
	seen := map[bson.ObjectID]bool{}
	for i, it := range items {
		if errs[i] != nil {
			continue
		}
		lic, ds := refs(it)
		if !lic.IsZero() && !seen[lic] {
			seen[lic], lics = true, append(lics, lic)
		}
		for _, d := range ds {
			if !seen[d] {
				seen[d], dss = true, append(dss, d)
			}
		}
	}
	missingLics, err := missingIDs(ctx, s.cols.licenses, entity, lics)
	if err != nil {
		return err
	}
	missingDss, err := missingIDs(ctx, s.cols.datasets, entity, dss)
	if err != nil {
		return err
	}
	if len(missingLics)+len(missingDss) == 0 {
		return nil
	}
	missing := map[bson.ObjectID]bool{}
	for _, id := range slices.Concat(missingLics, missingDss) {
		missing[id] = true
	}
	for i, it := range items {
		if errs[i] != nil {
			continue
		}
		lic, ds := refs(it)
		if missing[lic] {
			errs[i] = invalidf(entity, "license_id", "no license with id %s", lic.Hex())
			continue
		}
		for _, d := range ds {
			if missing[d] {
				errs[i] = invalidf(entity, "dataset_ids", "no dataset with id %s", d.Hex())
				break
			}
		}
	}
	return nil
}

// change is an update that gives a document the caller's values: empty
// optional fields are unset.
type change struct{ set, unset bson.D }

func (c *change) opt(key string, v any, empty bool) {
	if empty {
		c.unset = append(c.unset, bson.E{Key: key, Value: ""})
	} else {
		c.set = append(c.set, bson.E{Key: key, Value: v})
	}
}

// item sets the fields artifacts and datasets share.
func (c *change) item(p string, size int64, sha string, licID bson.ObjectID, tags []string, notes, createdBy string) {
	c.opt("path", p, false)
	c.opt("size_bytes", size, false)
	c.opt("hashes.sha256", sha, sha == "")
	c.opt("license_id", licID, licID.IsZero())
	c.opt("tags", tags, len(tags) == 0)
	c.opt("notes", notes, notes == "")
	c.opt("created_by", createdBy, createdBy == "")
}

// doc returns the update document; its first element is the $set.
func (c *change) doc() bson.D {
	u := bson.D{{Key: "$set", Value: c.set}}
	if len(c.unset) > 0 {
		u = append(u, bson.E{Key: "$unset", Value: c.unset})
	}
	return u
}
