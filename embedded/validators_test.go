package embedded

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// nameSchema requires a string name of 1 to 5 characters and an int or long n ≥ 0.
var nameSchema = bson.D{{Key: "$jsonSchema", Value: bson.D{
	{Key: "bsonType", Value: "object"},
	{Key: "required", Value: bson.A{"name"}},
	{Key: "properties", Value: bson.D{
		{Key: "name", Value: bson.D{{Key: "bsonType", Value: "string"}, {Key: "minLength", Value: 1}, {Key: "maxLength", Value: 5}}},
		{Key: "n", Value: bson.D{{Key: "bsonType", Value: bson.A{"int", "long"}}, {Key: "minimum", Value: 0}}},
		{Key: "tags", Value: bson.D{{Key: "bsonType", Value: "array"}}},
	}},
}}}

// requireValidationError checks that err is a DocumentValidationFailure.
func requireValidationError(t *testing.T, err error) {
	t.Helper()
	var se mongo.ServerError
	require.ErrorAs(t, err, &se)
	assert.True(t, se.HasErrorCode(codeDocumentValidationFailure), "%v", err)
}

func TestValidators(t *testing.T) {
	t.Parallel()
	for _, replSet := range []string{"", "rs0"} {
		t.Run("replset="+replSet, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, Options{InMemory: true, ReplicaSet: replSet})
			client := connect(t, srv.URI())
			ctx := ctxTimeout(t)
			db := client.Database("val")
			require.NoError(t, db.CreateCollection(ctx, "c", options.CreateCollection().SetValidator(nameSchema)))
			coll := db.Collection("c")
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "ok"}, {Key: "n", Value: 1}})
			require.NoError(t, err)
			before := all(t, coll)

			// Inserts: the invalid one is refused with 121 in writeErrors, the
			// valid ones before it are written (ordered).
			_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "name", Value: "toolong"}})
			requireValidationError(t, err)
			var bwe mongo.BulkWriteException
			_, err = coll.InsertMany(ctx, []any{
				bson.D{{Key: "_id", Value: 3}, {Key: "name", Value: "a"}},
				bson.D{{Key: "_id", Value: 4}, {Key: "tags", Value: nil}},
				bson.D{{Key: "_id", Value: 5}, {Key: "name", Value: "b"}},
			})
			require.ErrorAs(t, err, &bwe)
			require.Len(t, bwe.WriteErrors, 1)
			assert.Equal(t, 1, bwe.WriteErrors[0].Index)
			assert.Equal(t, codeDocumentValidationFailure, bwe.WriteErrors[0].Code)
			assert.Contains(t, bwe.WriteErrors[0].Raw.String(), "failingDocumentId")
			_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: 3}})
			require.NoError(t, err)

			// Updates, replacements, upserts and findAndModify: refused, and
			// the document is left as it was.
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -1}}}})
			requireValidationError(t, err)
			_, err = coll.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$unset", Value: bson.D{{Key: "name", Value: ""}}}})
			requireValidationError(t, err)
			_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "n", Value: 2}})
			requireValidationError(t, err)
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 7}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 2}}}}, options.UpdateOne().SetUpsert(true))
			requireValidationError(t, err)
			err = coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "tags", Value: "x"}}}}).Err()
			requireValidationError(t, err)
			assert.Equal(t, before, all(t, coll))

			// Valid writes go through.
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int64(7)}}}})
			require.NoError(t, err)
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 8}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "up"}}}}, options.UpdateOne().SetUpsert(true))
			require.NoError(t, err)
			var after, beforeDoc bson.M
			require.NoError(t, coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}}},
				options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&after))
			assert.EqualValues(t, 8, after["n"])
			require.NoError(t, coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(1)}}}}).Decode(&beforeDoc))
			assert.EqualValues(t, 8, beforeDoc["n"])
			require.NoError(t, coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 11}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "new"}}}},
				options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&after))
			assert.Equal(t, "new", after["name"])

			// bypassDocumentValidation, then moderate: a document invalid
			// already may be updated; a valid one may not become invalid.
			_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 9}, {Key: "n", Value: -5}}, options.InsertOne().SetBypassDocumentValidation(true))
			require.NoError(t, err)
			require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "c"}, {Key: "validationLevel", Value: "moderate"}}).Err())
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 9}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -6}}}})
			require.NoError(t, err)
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: -6}}}})
			requireValidationError(t, err)

			// warn lets everything through.
			require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "c"}, {Key: "validationAction", Value: "warn"}}).Err())
			_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 10}})
			require.NoError(t, err)

			// listCollections shows the validator and its options.
			specs, err := db.ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: "c"}})
			require.NoError(t, err)
			require.Len(t, specs, 1)
			assert.Contains(t, specs[0].Options.String(), "$jsonSchema")
			assert.Contains(t, specs[0].Options.String(), `"validationLevel": "moderate"`)
			assert.Contains(t, specs[0].Options.String(), `"validationAction": "warn"`)

			// collMod on a missing collection, and an option it lacks.
			var ce mongo.CommandError
			err = db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "missing"}, {Key: "validator", Value: nameSchema}}).Err()
			require.ErrorAs(t, err, &ce)
			assert.EqualValues(t, codeNamespaceNotFound, ce.Code)
			err = db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "c"}, {Key: "index", Value: bson.D{}}}).Err()
			require.ErrorAs(t, err, &ce)
			assert.EqualValues(t, codeNotImplemented, ce.Code)

			// A keyword the front cannot check refuses the validator.
			err = db.CreateCollection(ctx, "d", options.CreateCollection().SetValidator(bson.D{{Key: "$jsonSchema", Value: bson.D{{Key: "format", Value: "email"}}}}))
			require.ErrorAs(t, err, &ce)
			assert.EqualValues(t, codeFailedToParse, ce.Code)
			assert.Contains(t, ce.Message, "format")
			err = db.CreateCollection(ctx, "d", options.CreateCollection().SetValidator(bson.D{{Key: "n", Value: bson.D{{Key: "$gt", Value: 1}}}}))
			require.ErrorAs(t, err, &ce)

			// drop forgets the validator.
			require.NoError(t, coll.Drop(ctx))
			_, err = coll.InsertOne(ctx, bson.D{{Key: "n", Value: -1}})
			require.NoError(t, err)
		})
	}
}

// TestValidatorsInTransaction: a write refused by a validator aborts the
// transaction and undoes what it wrote before.
func TestValidatorsInTransaction(t *testing.T) {
	t.Parallel()
	_, client := startReplSet(t, Options{})
	ctx := ctxTimeout(t)
	db := client.Database("valtx")
	require.NoError(t, db.CreateCollection(ctx, "c", options.CreateCollection().SetValidator(nameSchema)))
	coll := db.Collection("c")
	_, err := inTxn(ctx, client, func(ctx context.Context) (any, error) {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "name", Value: "a"}}); err != nil {
			return nil, err
		}
		_, err := coll.InsertOne(ctx, bson.D{{Key: "name", Value: 1}})
		return nil, err
	})
	requireValidationError(t, err)
	assert.Empty(t, all(t, coll))
}

// TestValidatorsPersist: a named data directory keeps its validators
// across restarts.
func TestValidatorsPersist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := Start(t.Context(), Options{Dir: dir})
	require.NoError(t, err)
	ctx := ctxTimeout(t)
	client := connect(t, srv.URI())
	require.NoError(t, client.Database("p").CreateCollection(ctx, "c", options.CreateCollection().SetValidator(nameSchema)))
	require.NoError(t, client.Disconnect(ctx))
	require.NoError(t, srv.Close())

	srv2 := startServer(t, Options{Dir: dir})
	_, err = connect(t, srv2.URI()).Database("p").Collection("c").InsertOne(ctx, bson.D{{Key: "n", Value: 1}})
	requireValidationError(t, err)
}
