package harmonia

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Page is one page of a list call. Next is the cursor for the following
// page (pass it as the filter's After); it is the zero ObjectID on the last
// page.
type Page[T any] struct {
	Items []T
	Next  bson.ObjectID
}

// More reports whether another page may follow.
func (p *Page[T]) More() bool { return !p.Next.IsZero() }

// findOne reads one document of type T matching filter; a missing document
// is a [CodeNotFound] error that says what was looked for.
func findOne[T any](ctx context.Context, col *mongo.Collection, entity string, filter any, what string) (*T, error) {
	var v T
	if err := col.FindOne(ctx, filter).Decode(&v); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, &Error{Code: CodeNotFound, Entity: entity, Reason: "no " + entity + " with " + what, Err: err}
		}
		return nil, wrapErr(entity, "find "+what, err)
	}
	return &v, nil
}

// findAll reads every document matching filter in one command (batch size
// covers the expected count).
func findAll[T any](ctx context.Context, col *mongo.Collection, entity string, filter any, expected int, opts ...options.Lister[options.FindOptions]) ([]T, error) {
	o := options.Find().SetBatchSize(int32(max(expected, 1) + 1))
	cur, err := col.Find(ctx, filter, append([]options.Lister[options.FindOptions]{o}, opts...)...)
	if err != nil {
		return nil, wrapErr(entity, "find", err)
	}
	var out []T
	if err := cur.All(ctx, &out); err != nil {
		return nil, wrapErr(entity, "read", err)
	}
	return out, nil
}

// byIDs reads the documents of col with the given ids in one command; none
// without a command when ids is empty.
func byIDs[T any](ctx context.Context, col *mongo.Collection, entity string, ids []bson.ObjectID) ([]T, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return findAll[T](ctx, col, entity, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, len(ids))
}

// listPage reads one page in id order: limit+1 documents in one command,
// the extra one only telling whether another page follows.
func listPage[T any](ctx context.Context, col *mongo.Collection, entity string, filter bson.D, limit int, idOf func(*T) bson.ObjectID) (*Page[*T], error) {
	limit, err := pageLimit(entity, limit)
	if err != nil {
		return nil, err
	}
	o := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit + 1)).SetBatchSize(int32(limit + 1))
	items, err := findAll[*T](ctx, col, entity, filter, limit+1, o)
	if err != nil {
		return nil, err
	}
	p := &Page[*T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.Next = idOf(p.Items[limit-1])
	}
	return p, nil
}

// pageLimit returns the page size of a list call's Limit n: the default
// for 0, n itself up to ListLimitMax, and a [CodeInvalid] error outside
// that range (rather than a silently different page size).
func pageLimit(entity string, n int) (int, error) {
	switch {
	case n == 0:
		return ListLimitDefault, nil
	case n < 0 || n > ListLimitMax:
		return 0, invalidf(entity, "limit", "%d is outside 0 to %d (0 takes the default, %d)", n, ListLimitMax, ListLimitDefault)
	}
	return n, nil
}

// filterDoc turns a Filter into a query document: a $and of one
// condition per set field (two conditions may address the same field).
func filterDoc(f ArtifactFilter) bson.D {
	var conds bson.A
	add := func(key string, v any) { conds = append(conds, bson.D{{Key: key, Value: v}}) }
	if !f.After.IsZero() {
		add("_id", bson.D{{Key: "$gt", Value: f.After}})
	}
	if f.Name != "" {
		add("name_key", NameKey(f.Name))
	}
	if f.NamePrefix != "" {
		add("name_key", bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(NameKey(f.NamePrefix))}})
	}
	if len(f.TagsAny) > 0 {
		add("tags", bson.D{{Key: "$in", Value: lowerAll(f.TagsAny)}})
	}
	if len(f.TagsAll) > 0 {
		add("tags", bson.D{{Key: "$all", Value: lowerAll(f.TagsAll)}})
	}
	if f.LicenseID != nil {
		add("license_id", *f.LicenseID)
	}
	if f.Published != nil {
		add("published", *f.Published)
	}
	if f.CreatedFrom != nil {
		add("created_at", bson.D{{Key: "$gte", Value: *f.CreatedFrom}})
	}
	if f.CreatedBefore != nil {
		add("created_at", bson.D{{Key: "$lt", Value: *f.CreatedBefore}})
	}
	if len(conds) == 0 {
		return bson.D{}
	}
	return bson.D{{Key: "$and", Value: conds}}
}

// lowerAll returns tags lowercased: tags are stored lowercase, so a tag
// filter matches whatever the letter case of the tags it names.
func lowerAll(tags []string) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = strings.ToLower(t)
	}
	return out
}

// findIDs reads the ids of the documents matching filter, at most limit
// of them, in one command.
func findIDs(ctx context.Context, col *mongo.Collection, entity string, filter any, limit int) ([]bson.ObjectID, error) {
	type idOnly struct {
		ID bson.ObjectID `bson:"_id"`
	}
	found, err := findAll[idOnly](ctx, col, entity, filter, limit,
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, len(found))
	for i, f := range found {
		ids[i] = f.ID
	}
	return ids, nil
}

// missingIDs returns the ids of ids that have no document in col, with one
// command.
func missingIDs(ctx context.Context, col *mongo.Collection, entity string, ids []bson.ObjectID) ([]bson.ObjectID, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	found, err := findIDs(ctx, col, entity, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, len(ids))
	if err != nil {
		return nil, err
	}
	seen := make(map[bson.ObjectID]bool, len(found))
	for _, id := range found {
		seen[id] = true
	}
	var missing []bson.ObjectID
	for _, id := range ids {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// checkRefs verifies that a license and datasets referenced by entity
// exist; a missing one is a [CodeInvalid] error naming the field.
func (s *Store) checkRefs(ctx context.Context, entity string, licenseID bson.ObjectID, datasetIDs []bson.ObjectID) error {
	if !licenseID.IsZero() {
		missing, err := missingIDs(ctx, s.cols.licenses, entity, []bson.ObjectID{licenseID})
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return invalidf(entity, "license_id", "no license with id %s", licenseID.Hex())
		}
	}
	missing, err := missingIDs(ctx, s.cols.datasets, entity, datasetIDs)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return invalidf(entity, "dataset_ids", "no dataset with id %s", hexList(missing))
	}
	return nil
}

func hexList(ids []bson.ObjectID) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ", "
		}
		s += id.Hex()
	}
	return s
}

// deleteUnpublished deletes the document with id unless it is published:
// a published one is a conflict, a missing one not found.
func deleteUnpublished(ctx context.Context, col *mongo.Collection, entity string, id bson.ObjectID) error {
	res, err := col.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "published", Value: bson.D{{Key: "$ne", Value: true}}}})
	if err != nil {
		return wrapErr(entity, "delete", err)
	}
	if res.DeletedCount == 1 {
		return nil
	}
	if err := col.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err(); errors.Is(err, mongo.ErrNoDocuments) {
		return notFoundf(entity, "no %s with id %s", entity, id.Hex())
	} else if err != nil {
		return wrapErr(entity, "delete", err)
	}
	return conflictf(entity, "published", "%s %s is published in an inventory version and cannot be deleted", entity, id.Hex())
}

// contentChange is the part of an artifact or dataset update that both
// share: content fields (refused once published) and free fields.
type contentChange struct {
	Path      *string
	SizeBytes *int64
	SHA256    *string
	LicenseID *bson.ObjectID
	Tags      *[]string
	Notes     *string
}

// contentView points at the fields of an artifact or dataset that a
// contentChange may set.
type contentView struct {
	path      *string
	sizeBytes *int64
	sha256    *string
	licenseID *bson.ObjectID
	tags      *[]string
	notes     *string
}

// apply writes c's changes through v and returns the $set document and
// whether a content field changed.
func (c contentChange) apply(v contentView) (set bson.D, content bool) {
	if c.Path != nil && *c.Path != *v.path {
		*v.path, content = *c.Path, true
		set = append(set, bson.E{Key: "path", Value: *c.Path})
	}
	if c.SizeBytes != nil && *c.SizeBytes != *v.sizeBytes {
		*v.sizeBytes, content = *c.SizeBytes, true
		set = append(set, bson.E{Key: "size_bytes", Value: *c.SizeBytes})
	}
	if c.SHA256 != nil && *c.SHA256 != *v.sha256 {
		*v.sha256, content = *c.SHA256, true
		set = append(set, bson.E{Key: "hashes.sha256", Value: *c.SHA256})
	}
	if c.LicenseID != nil {
		*v.licenseID = *c.LicenseID
		set = append(set, bson.E{Key: "license_id", Value: *c.LicenseID})
	}
	if c.Tags != nil {
		*v.tags = *c.Tags
		set = append(set, bson.E{Key: "tags", Value: *c.Tags})
	}
	if c.Notes != nil {
		*v.notes = *c.Notes
		set = append(set, bson.E{Key: "notes", Value: *c.Notes})
	}
	return set, content
}

// updateGuarded applies set to the document with id, refusing (with a
// conflict) when content changes and the document is published. The
// condition is part of the update's filter, so a concurrent publish and
// update cannot both win.
func (s *Store) updateGuarded(ctx context.Context, col *mongo.Collection, entity string, id bson.ObjectID, set bson.D, content bool, now time.Time) error {
	filter := bson.D{{Key: "_id", Value: id}}
	if content {
		filter = append(filter, bson.E{Key: "published", Value: bson.D{{Key: "$ne", Value: true}}})
	}
	set = append(set, bson.E{Key: "updated_at", Value: now}, bson.E{Key: "schema_version", Value: SchemaVersion})
	res, err := col.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return wrapErr(entity, "update", err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	if content {
		if err := col.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err(); err == nil {
			return PublishedContentConflict(entity, id.Hex())
		}
	}
	return notFoundf(entity, "no %s with id %s", entity, id.Hex())
}

// insertOne inserts doc; a duplicate key is a conflict naming the natural
// key fields and value.
func insertOne(ctx context.Context, col *mongo.Collection, entity, keyFields, keyValue string, doc any) error {
	if _, err := col.InsertOne(ctx, doc); err != nil {
		return duplicateOf(entity, keyFields, keyValue, err)
	}
	return nil
}
