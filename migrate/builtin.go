package migrate

import (
	"context"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
)

// Versions of the built-in migrations. A program that adds its own
// migrations to [Builtin] numbers them above these (for example from 100).
const (
	VersionCreateIndexes int64 = 1
	VersionTagsV2        int64 = 2
	VersionCancelledJobs int64 = 3
	VersionSPDXCanonical int64 = 4
	VersionDigests       int64 = 5
	VersionNameKeys      int64 = 6
)

// Batch sizes of the built-in transform.
const (
	// TransformBatchSize is how many documents the tags transform reads per
	// query.
	TransformBatchSize = 500
	// WriteBatchMax is the most write models one BulkWrite call holds
	// (FerretDB v1.24.2 hangs on an update command of about 100
	// statements).
	WriteBatchMax = 50
)

// transform configures the built-in tags transform. Builtin uses the
// defaults; this package's tests shrink the batches and act between them
// (to interrupt a run half-way), each with its own migration list.
type transform struct {
	batchSize  int
	afterBatch func(ctx context.Context)
}

// Builtin returns harmonia's own migrations, in order:
//
//  1. "create collections and indexes": [harmonia.Store.EnsureIndexes].
//     Idempotent; outside a transaction (index builds are not allowed in
//     one). No Down: dropping indexes is not a repair.
//  2. "tags lowercase and unique (schema_version 1 → 2)": every model
//     artifact and dataset with schema_version below 2 (or none) gets its
//     tags trimmed, lowercased and de-duplicated (first occurrence kept,
//     empty tags dropped) and schema_version 2. It reads documents in
//     batches of TransformBatchSize by _id and writes them with unordered
//     bulk updates of at most WriteBatchMax, each conditional on
//     schema_version still being below 2. It is idempotent per document
//     and its progress is implied by schema_version, so a run interrupted
//     half-way is finished by the next one. It counts, per collection,
//     "<collection>_scanned" and "<collection>_changed" (tags that
//     actually changed). Outside a transaction (it may be long). No Down:
//     the original letter case is gone.
//  3. "cancelled jobs get the cancelled status": jobs that
//     [harmonia.Queue.CancelJob] stored before the status
//     [harmonia.JobCancelled] existed (status "failed" with the error
//     "cancelled", which no attempt recorded) get that status and lose the
//     error. Conditional updates, idempotent; it counts "jobs_changed".
//     Outside a transaction. No Down: the new status is the truth.
//  4. "license SPDX ids in canonical spelling": licenses whose spdx_id
//     differs only in spelling ("mit", " MIT", "MIT"; see
//     [harmonia.NormalizeSPDXID]) are merged into one with the canonical
//     spelling. The one already spelled canonically is kept, else the
//     oldest (smallest _id), with its own commercial_use, text_path and
//     notes; the artifacts and datasets that referenced the others get its
//     id, then the others are deleted and the kept one renamed. Each step
//     is idempotent, so an interrupted run is finished by the next. It
//     counts "licenses_merged", "licenses_renamed" and
//     "references_changed". Outside a transaction. No Down: the variants
//     were one license.
//  5. "inventory versions get their content digest": every inventory
//     version without a digest gets [harmonia.ManifestDigest] of its
//     stored manifest (the manifest is the immutable record of what was
//     published, so the digest is the one Publish would have stored).
//     Conditional updates (digest still missing), idempotent; it counts
//     "versions_changed". Outside a transaction. No Down: a digest takes
//     nothing away.
//  6. "names unique ignoring case (name_key)": every model artifact and
//     dataset gets its name_key ([harmonia.NameKey]: the name in Unicode
//     NFC, case-folded), the unique index {name_key, version} is built
//     (both through [harmonia.Store.EnsureIndexes]), and the former
//     unique index {name, version} ("uniq_name_version") is dropped.
//     Entries whose names now collide ("RESNET50" and "resnet50", or
//     "café" in NFC and in NFD, under one version) are never merged: the
//     migration fails with a conflict (cause [harmonia.ErrNameCollision])
//     that lists them, having written nothing; rename or delete all but
//     one of each, then [Runner.Resolve] and Up again. Stored names are
//     not rewritten (published manifests and digests hold them as they
//     are). Idempotent; outside a transaction. Its Down drops the new
//     index and restores the former one.
//
// The list is a new slice each call; append your own migrations to it.
func Builtin() []Migration {
	return builtin(transform{batchSize: TransformBatchSize})
}

func builtin(tr transform) []Migration {
	return []Migration{
		{Version: VersionCreateIndexes, Name: "create collections and indexes", NoTransaction: true, Up: createIndexes},
		{Version: VersionTagsV2, Name: "tags lowercase and unique (schema_version 1 → 2)", NoTransaction: true, Up: tr.tagsV2},
		{Version: VersionCancelledJobs, Name: "cancelled jobs get the cancelled status", NoTransaction: true, Up: cancelledJobs},
		{Version: VersionSPDXCanonical, Name: "license SPDX ids in canonical spelling", NoTransaction: true, Up: spdxCanonical},
		{Version: VersionDigests, Name: "inventory versions get their content digest", NoTransaction: true, Up: versionDigests},
		{Version: VersionNameKeys, Name: "names unique ignoring case (name_key)", NoTransaction: true, Up: nameKeys, Down: nameKeysDown},
	}
}

func createIndexes(ctx context.Context, db *mongo.Database) error {
	s, err := harmonia.Open(ctx, db, nil)
	if err != nil {
		return err
	}
	return s.EnsureIndexes(ctx)
}

func (tr transform) tagsV2(ctx context.Context, db *mongo.Database) error {
	for _, col := range []string{harmonia.CollectionArtifacts, harmonia.CollectionDatasets} {
		if err := tr.tagsV2Collection(ctx, db.Collection(col)); err != nil {
			return err
		}
	}
	return nil
}

// belowV2 selects documents whose schema_version is below 2 or missing.
func belowV2() bson.D {
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "schema_version", Value: bson.D{{Key: "$lt", Value: 2}}}},
		bson.D{{Key: "schema_version", Value: bson.D{{Key: "$exists", Value: false}}}},
	}}}
}

func (tr transform) tagsV2Collection(ctx context.Context, col *mongo.Collection) error {
	type doc struct {
		ID   bson.ObjectID `bson:"_id"`
		Tags []string      `bson:"tags"`
	}
	var after bson.ObjectID
	for {
		filter := belowV2()
		if !after.IsZero() {
			filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
		}
		cur, err := col.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).
			SetLimit(int64(tr.batchSize)).SetBatchSize(int32(tr.batchSize)).SetProjection(bson.D{{Key: "tags", Value: 1}}))
		if err != nil {
			return internal("read "+col.Name(), err)
		}
		var docs []doc
		if err := cur.All(ctx, &docs); err != nil {
			return internal("read "+col.Name(), err)
		}
		if len(docs) == 0 {
			return nil
		}
		models := make([]mongo.WriteModel, 0, len(docs))
		var changed int64
		for _, d := range docs {
			set := bson.D{{Key: "schema_version", Value: 2}}
			if tags := NormalizeTags(d.Tags); !slices.Equal(tags, d.Tags) {
				changed++
				set = append(set, bson.E{Key: "tags", Value: tags})
			}
			filter := append(bson.D{{Key: "_id", Value: d.ID}}, belowV2()...)
			models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(bson.D{{Key: "$set", Value: set}}))
		}
		if err := bulkWrite(ctx, col, models); err != nil {
			return err
		}
		Count(ctx, col.Name()+"_scanned", int64(len(docs)))
		Count(ctx, col.Name()+"_changed", changed)
		after = docs[len(docs)-1].ID
		if tr.afterBatch != nil {
			tr.afterBatch(ctx)
		}
	}
}

// cancelledJobs moves the jobs CancelJob stored as failed to the cancelled
// status. A cancel pushed no attempt error, so a job whose last attempt
// error is "cancelled" failed in its handler and is left alone.
func cancelledJobs(ctx context.Context, db *mongo.Database) error {
	col := db.Collection(harmonia.CollectionJobs)
	const legacyError = "cancelled"
	legacy := bson.D{{Key: "status", Value: harmonia.JobFailed}, {Key: "error", Value: legacyError}}
	cur, err := col.Find(ctx, legacy, options.Find().SetProjection(bson.D{{Key: "errors", Value: 1}}).SetBatchSize(TransformBatchSize))
	if err != nil {
		return internal("read jobs", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var ids []bson.ObjectID
	for cur.Next(ctx) {
		var j struct {
			ID     bson.ObjectID `bson:"_id"`
			Errors []struct {
				Error string `bson:"error"`
			} `bson:"errors"`
		}
		if err := cur.Decode(&j); err != nil {
			return internal("decode a job", err)
		}
		if n := len(j.Errors); n == 0 || j.Errors[n-1].Error != legacyError {
			ids = append(ids, j.ID)
		}
	}
	if err := cur.Err(); err != nil {
		return internal("read jobs", err)
	}
	models := make([]mongo.WriteModel, len(ids))
	for i, id := range ids {
		models[i] = mongo.NewUpdateOneModel().SetFilter(append(bson.D{{Key: "_id", Value: id}}, legacy...)).SetUpdate(bson.D{
			{Key: "$set", Value: bson.D{{Key: "status", Value: harmonia.JobCancelled}}},
			{Key: "$unset", Value: bson.D{{Key: "error", Value: ""}}},
		})
	}
	if err := bulkWrite(ctx, col, models); err != nil {
		return err
	}
	Count(ctx, "jobs_changed", int64(len(ids)))
	return nil
}

// spdxCanonical merges the licenses whose SPDX ids differ only in
// spelling and gives every license the canonical spelling.
func spdxCanonical(ctx context.Context, db *mongo.Database) error {
	licenses := db.Collection(harmonia.CollectionLicenses)
	cur, err := licenses.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "spdx_id", Value: 1}}).
		SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(TransformBatchSize))
	if err != nil {
		return internal("read licenses", err)
	}
	type lic struct {
		ID     bson.ObjectID `bson:"_id"`
		SPDXID string        `bson:"spdx_id"`
	}
	var all []lic
	if err := cur.All(ctx, &all); err != nil {
		return internal("read licenses", err)
	}
	groups := map[string][]lic{}
	var order []string
	for _, l := range all {
		c := harmonia.NormalizeSPDXID(l.SPDXID)
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], l)
	}
	var merged, renamed, refs int64
	for _, canonical := range order {
		g := groups[canonical]
		keep := g[0]
		for _, l := range g {
			if l.SPDXID == canonical {
				keep = l
				break
			}
		}
		var others []bson.ObjectID
		for _, l := range g {
			if l.ID != keep.ID {
				others = append(others, l.ID)
			}
		}
		if len(others) > 0 {
			for _, col := range []string{harmonia.CollectionArtifacts, harmonia.CollectionDatasets} {
				res, err := db.Collection(col).UpdateMany(ctx, bson.D{{Key: "license_id", Value: bson.D{{Key: "$in", Value: others}}}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "license_id", Value: keep.ID}}}})
				if err != nil {
					return internal("repoint the license references of "+col, err)
				}
				refs += res.ModifiedCount
			}
			res, err := licenses.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: others}}}})
			if err != nil {
				return internal("delete merged licenses", err)
			}
			merged += res.DeletedCount
		}
		if keep.SPDXID != canonical {
			if _, err := licenses.UpdateOne(ctx, bson.D{{Key: "_id", Value: keep.ID}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "spdx_id", Value: canonical}}}}); err != nil {
				return internal("rename license "+keep.ID.Hex(), err)
			}
			renamed++
		}
	}
	Count(ctx, "licenses_merged", merged)
	Count(ctx, "licenses_renamed", renamed)
	Count(ctx, "references_changed", refs)
	return nil
}

// versionDigests stores the content digest of every inventory version
// published before digests existed.
func versionDigests(ctx context.Context, db *mongo.Database) error {
	col := db.Collection(harmonia.CollectionVersions)
	noDigest := bson.D{{Key: "digest", Value: bson.D{{Key: "$exists", Value: false}}}}
	cur, err := col.Find(ctx, noDigest, options.Find().SetProjection(bson.D{{Key: "manifest", Value: 1}}).SetBatchSize(TransformBatchSize))
	if err != nil {
		return internal("read inventory versions", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var models []mongo.WriteModel
	for cur.Next(ctx) {
		var v struct {
			ID       bson.ObjectID     `bson:"_id"`
			Manifest harmonia.Manifest `bson:"manifest"`
		}
		if err := cur.Decode(&v); err != nil {
			return internal("decode an inventory version", err)
		}
		digest, err := harmonia.ManifestDigest(v.Manifest)
		if err != nil {
			return err
		}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(append(bson.D{{Key: "_id", Value: v.ID}}, noDigest...)).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "digest", Value: digest}}}}))
	}
	if err := cur.Err(); err != nil {
		return internal("read inventory versions", err)
	}
	if err := bulkWrite(ctx, col, models); err != nil {
		return err
	}
	Count(ctx, "versions_changed", int64(len(models)))
	return nil
}

// legacyNameIndex is the unique index {name, version} of artifacts and
// datasets before migration 6.
const legacyNameIndex = "uniq_name_version"

// nameKeyCollections are the collections whose names migration 6 keys.
var nameKeyCollections = []string{harmonia.CollectionArtifacts, harmonia.CollectionDatasets}

// nameKeys keys every name and builds the new unique index (through
// EnsureIndexes, which refuses colliding names), then drops the former
// index.
func nameKeys(ctx context.Context, db *mongo.Database) error {
	if err := createIndexes(ctx, db); err != nil {
		return err
	}
	for _, col := range nameKeyCollections {
		if err := dropIndex(ctx, db.Collection(col), legacyNameIndex); err != nil {
			return err
		}
	}
	return nil
}

// nameKeysDown restores the unique index {name, version} and drops the
// one on {name_key, version}. The name_key fields stay (harmless).
func nameKeysDown(ctx context.Context, db *mongo.Database) error {
	for _, col := range nameKeyCollections {
		c := db.Collection(col)
		if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: "name", Value: 1}, {Key: "version", Value: 1}},
			Options: options.Index().SetName(legacyNameIndex).SetUnique(true)}); err != nil {
			return internal("create index "+legacyNameIndex+" on "+col, err)
		}
		if err := dropIndex(ctx, c, "uniq_name_key_version"); err != nil {
			return err
		}
	}
	return nil
}

// dropIndex drops the index name of col if it exists.
func dropIndex(ctx context.Context, col *mongo.Collection, name string) error {
	specs, err := col.Indexes().ListSpecifications(ctx)
	if err != nil {
		return internal("list indexes of "+col.Name(), err)
	}
	for _, s := range specs {
		if s.Name == name {
			if err := col.Indexes().DropOne(ctx, name); err != nil {
				return internal("drop index "+name+" of "+col.Name(), err)
			}
		}
	}
	return nil
}

// NormalizeTags returns tags trimmed, lowercased and de-duplicated, in the
// order of their first occurrence, without empty ones: the rule of
// schema_version 2. It returns nil for no tags.
func NormalizeTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// bulkWrite writes models with unordered BulkWrite calls of at most
// WriteBatchMax models each.
func bulkWrite(ctx context.Context, col *mongo.Collection, models []mongo.WriteModel) error {
	for chunk := range slices.Chunk(models, WriteBatchMax) {
		if _, err := col.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false)); err != nil {
			return internal("write "+col.Name(), err)
		}
	}
	return nil
}
