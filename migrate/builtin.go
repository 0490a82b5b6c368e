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

// hooks lets this package's tests shrink the transform's batches and act
// between them (to interrupt a run half-way).
var hooks = struct {
	batchSize  int
	afterBatch func(ctx context.Context)
}{batchSize: TransformBatchSize}

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
//
// The list is a new slice each call; append your own migrations to it.
func Builtin() []Migration {
	return []Migration{
		{Version: VersionCreateIndexes, Name: "create collections and indexes", NoTransaction: true, Up: createIndexes},
		{Version: VersionTagsV2, Name: "tags lowercase and unique (schema_version 1 → 2)", NoTransaction: true, Up: tagsV2},
	}
}

func createIndexes(ctx context.Context, db *mongo.Database) error {
	s, err := harmonia.Open(ctx, db, nil)
	if err != nil {
		return err
	}
	return s.EnsureIndexes(ctx)
}

func tagsV2(ctx context.Context, db *mongo.Database) error {
	for _, col := range []string{harmonia.CollectionArtifacts, harmonia.CollectionDatasets} {
		if err := tagsV2Collection(ctx, db.Collection(col)); err != nil {
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

func tagsV2Collection(ctx context.Context, col *mongo.Collection) error {
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
			SetLimit(int64(hooks.batchSize)).SetBatchSize(int32(hooks.batchSize)).SetProjection(bson.D{{Key: "tags", Value: 1}}))
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
		if hooks.afterBatch != nil {
			hooks.afterBatch(ctx)
		}
	}
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
