package embedded

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func TestPostImages(t *testing.T) {
	t.Parallel()
	id := bson.NewObjectID()
	pre := docOf(bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}, {Key: "in", Value: bson.A{id}}})
	stmt := func(u bson.D) bsoncore.Document {
		return docOf(bson.D{{Key: "q", Value: bson.D{}}, {Key: "u", Value: u}})
	}
	post := func(u bson.D) bson.D {
		t.Helper()
		docs := postImages(stmt(u), []bsoncore.Document{pre})
		require.Len(t, docs, 1, "%v", u)
		var d bson.D
		require.NoError(t, bson.Unmarshal(docs[0], &d))
		return d
	}
	other := bson.NewObjectID()
	require.Equal(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: "y"}, {Key: "in", Value: bson.A{id, other}}, {Key: "b", Value: true}},
		post(bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: "y"}, {Key: "b", Value: true}}}, {Key: "$addToSet", Value: bson.D{{Key: "in", Value: other}}}}))
	require.Equal(t, bson.D{{Key: "_id", Value: int32(1)}, {Key: "a", Value: "x"}, {Key: "in", Value: bson.A{id}}, {Key: "new", Value: bson.A{"t"}}},
		post(bson.D{{Key: "$addToSet", Value: bson.D{{Key: "in", Value: id}, {Key: "new", Value: "t"}}}}), "a value the array has is not added again")
	same := postImages(stmt(bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: "x"}}}}), []bsoncore.Document{pre})
	require.Equal(t, []bsoncore.Document{pre}, same, "unchanged")

	for _, u := range []bson.D{
		{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}},
		{{Key: "$set", Value: bson.D{{Key: "a.b", Value: 1}}}},
		{{Key: "$set", Value: bson.D{{Key: "_id", Value: 2}}}},
		{{Key: "$addToSet", Value: bson.D{{Key: "in", Value: bson.D{{Key: "$each", Value: bson.A{"x"}}}}}}},
		{{Key: "$addToSet", Value: bson.D{{Key: "in", Value: 1.5}}}},
		{{Key: "$addToSet", Value: bson.D{{Key: "a", Value: "z"}}}}, // not an array
		{{Key: "$set", Value: bson.D{{Key: "in", Value: bson.A{}}}}, {Key: "$addToSet", Value: bson.D{{Key: "in", Value: "z"}}}},
	} {
		require.Nil(t, postImages(stmt(u), []bsoncore.Document{pre}), "%v", u)
	}
}

// An update of many documents by _id on a collection with a validator is
// checked on the documents as written, whether the front computes them
// or reads them back, and refused as a whole when one fails.
func TestValidatorOnUpdateManyByIDs(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Options{InMemory: true})
	ctx := t.Context()
	db := connect(t, srv.URI()).Database("post")
	schema := bson.D{{Key: "$jsonSchema", Value: bson.D{{Key: "properties", Value: bson.D{
		{Key: "tag", Value: bson.D{{Key: "bsonType", Value: "string"}, {Key: "maxLength", Value: 3}}},
		{Key: "ids", Value: bson.D{{Key: "bsonType", Value: "array"}, {Key: "maxItems", Value: 1}}},
	}}}}}
	require.NoError(t, db.CreateCollection(ctx, "c", options.CreateCollection().SetValidator(schema)))
	col := db.Collection("c")
	_, err := col.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "ids", Value: bson.A{}}}, bson.D{{Key: "_id", Value: 2}, {Key: "ids", Value: bson.A{"a"}}}})
	require.NoError(t, err)
	in := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{1, 2}}}}}

	_, err = col.UpdateMany(ctx, in, bson.D{{Key: "$set", Value: bson.D{{Key: "tag", Value: "too long"}}}})
	requireValidationError(t, err)
	_, err = col.UpdateMany(ctx, in, bson.D{{Key: "$addToSet", Value: bson.D{{Key: "ids", Value: "b"}}}})
	requireValidationError(t, err) // document 2 would hold two ids
	n, err := col.CountDocuments(ctx, bson.D{{Key: "tag", Value: bson.D{{Key: "$exists", Value: true}}}})
	require.NoError(t, err)
	require.Zero(t, n, "nothing written")
	var d2 struct {
		IDs []string `bson:"ids"`
	}
	require.NoError(t, col.FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&d2))
	require.Equal(t, []string{"a"}, d2.IDs)

	res, err := col.UpdateMany(ctx, in, bson.D{{Key: "$set", Value: bson.D{{Key: "tag", Value: "ok"}}}, {Key: "$addToSet", Value: bson.D{{Key: "ids", Value: "a"}}}})
	require.NoError(t, err)
	require.EqualValues(t, 2, res.MatchedCount)
	require.EqualValues(t, 2, res.ModifiedCount)
}
