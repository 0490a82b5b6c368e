package harmonia

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestJSONSchemaFollowsTags(t *testing.T) {
	t.Parallel()
	s := JSONSchema(reflect.TypeFor[ModelArtifact]())
	m := toMap(s)
	require.Equal(t, "object", m["bsonType"])
	require.Equal(t, bson.A{"name", "version", "path"}, m["required"])
	props := toMap(m["properties"].(bson.D))
	require.Equal(t, bson.D{{Key: "bsonType", Value: "string"}, {Key: "minLength", Value: 1}, {Key: "maxLength", Value: 200},
		{Key: "pattern", Value: NamePattern}}, props["name"])
	require.Equal(t, bson.D{{Key: "bsonType", Value: bson.A{"int", "long"}}, {Key: "minimum", Value: 0},
		{Key: "maximum", Value: 9007199254740991}}, props["size_bytes"])
	hashes := toMap(toMap(props["hashes"].(bson.D))["properties"].(bson.D))
	require.Equal(t, bson.D{{Key: "bsonType", Value: "string"}, {Key: "pattern", Value: "^[0-9a-f]{64}$"}}, hashes["sha256"])
	require.Equal(t, bson.D{{Key: "bsonType", Value: "objectId"}}, props["license_id"])
	tags := toMap(props["tags"].(bson.D))
	require.Equal(t, "array", tags["bsonType"])
	require.Equal(t, 64, tags["maxItems"])
	require.Equal(t, true, tags["uniqueItems"])
	require.Equal(t, bson.D{{Key: "bsonType", Value: "date"}}, props["created_at"])
	require.Len(t, Validators(), 7)
}

func toMap(d bson.D) map[string]any {
	m := make(map[string]any, len(d))
	for _, e := range d {
		m[e.Key] = e.Value
	}
	return m
}
