package embedded

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestDuplicateKeyInfo: an insert's duplicate key error names the
// index's key pattern and the duplicate value (keyPattern, keyValue), as
// mongod's does, on both modes.
func TestDuplicateKeyInfo(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, srv *Server) {
		w := newWireClient(t, srv)
		rep := w.run(bson.D{{Key: "createIndexes", Value: "c"}, {Key: "indexes", Value: bson.A{
			bson.D{{Key: "key", Value: bson.D{{Key: "name", Value: 1}, {Key: "v", Value: -1}}}, {Key: "name", Value: "name_v"}, {Key: "unique", Value: true}},
		}}, {Key: "$db", Value: "dup"}})
		require.Equal(t, 1.0, rep.Lookup("ok").Double(), rep.String())
		doc := func(id int, v string) bson.D {
			return bson.D{{Key: "_id", Value: id}, {Key: "name", Value: "a"}, {Key: "v", Value: v}}
		}
		w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{doc(1, "1"), doc(2, "2")}}, {Key: "$db", Value: "dup"}})
		wantPattern := bson.D{{Key: "name", Value: int32(1)}, {Key: "v", Value: int32(-1)}}
		check := func(e bson.Raw, v string) {
			t.Helper()
			assert.EqualValues(t, codeDuplicateKey, i32(e.Lookup("code")), e.String())
			var got struct {
				KeyPattern bson.D `bson:"keyPattern"`
				KeyValue   bson.D `bson:"keyValue"`
			}
			require.NoError(t, bson.Unmarshal(e, &got))
			assert.Equal(t, wantPattern, got.KeyPattern, e.String())
			assert.Equal(t, bson.D{{Key: "name", Value: "a"}, {Key: "v", Value: v}}, got.KeyValue, e.String())
		}

		rep = w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{doc(3, "3"), doc(4, "1")}}, {Key: "$db", Value: "dup"}})
		check(rep.Lookup("writeErrors", "0").Document(), "1")
		assert.EqualValues(t, 1, i32(rep.Lookup("writeErrors", "0", "index")))

		rep = w.run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{doc(1, "9")}}, {Key: "$db", Value: "dup"}})
		e := rep.Lookup("writeErrors", "0").Document()
		assert.Equal(t, bson.D{{Key: "_id", Value: int32(1)}}, unmarshalD(t, e.Lookup("keyPattern").Document()), "a clash on _id: %s", e)
		assert.Equal(t, bson.D{{Key: "_id", Value: int32(1)}}, unmarshalD(t, e.Lookup("keyValue").Document()), e.String())
	})
}

func unmarshalD(t *testing.T, raw bson.Raw) bson.D {
	t.Helper()
	var d bson.D
	require.NoError(t, bson.Unmarshal(raw, &d))
	return d
}
