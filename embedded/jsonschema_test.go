package embedded

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// schemaBSON marshals a test document.
func schemaBSON(t testing.TB, v any) bsoncore.Document {
	t.Helper()
	b, err := bson.Marshal(v)
	require.NoError(t, err)
	return b
}

// compileSchemaT compiles {$jsonSchema: schema}.
func compileSchemaT(t testing.TB, schema bson.D) *validator {
	t.Helper()
	v, err := compileValidator(schemaBSON(t, bson.D{{Key: "$jsonSchema", Value: schema}}))
	require.NoError(t, err)
	return v
}

// schemaReasonsOf checks doc and returns the reasons, nil when it passes.
func schemaReasonsOf(t testing.TB, v *validator, doc any) []string {
	t.Helper()
	viol := v.check(schemaBSON(t, doc))
	if viol == nil {
		return nil
	}
	require.NotEmpty(t, viol.Reasons)
	require.NotPanics(t, func() { _ = viol.details() })
	return viol.Reasons
}

// onX wraps a schema as the schema of property x.
func onX(schema bson.D) bson.D {
	return bson.D{{Key: "properties", Value: bson.D{{Key: "x", Value: schema}}}}
}

// x is the document {x: value}.
func x(value any) bson.D { return bson.D{{Key: "x", Value: value}} }

// schemaDetailsJSON renders a violation's details as relaxed extended JSON.
func schemaDetailsJSON(t testing.TB, viol *schemaViolation) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(bson.Raw(viol.details()), false, false)
	require.NoError(t, err)
	return string(b)
}

// dec parses a Decimal128.
func dec(t testing.TB, s string) bson.Decimal128 {
	d, err := bson.ParseDecimal128(s)
	require.NoError(t, err)
	return d
}

// TestSchemaKeywords checks each keyword passing and failing, with the reasons given.
func TestSchemaKeywords(t *testing.T) {
	t.Parallel()
	sha := strings.Repeat("ab", 32)
	type check struct {
		doc  any
		want []string // nil: the document passes
	}
	tests := []struct {
		name   string
		schema bson.D
		checks []check
	}{
		{"bsonType", onX(bson.D{{Key: "bsonType", Value: "string"}}), []check{
			{x("a"), nil},
			{bson.D{}, nil}, // absent properties are not checked
			{x(int32(1)), []string{"properties.x: bsonType is int, want string"}},
		}},
		{"bsonType list", onX(bson.D{{Key: "bsonType", Value: bson.A{"int", "long"}}}), []check{
			{x(int32(1)), nil},
			{x(int64(1)), nil},
			{x(1.0), []string{"properties.x: bsonType is double, want one of [int, long]"}},
		}},
		{"bsonType number", onX(bson.D{{Key: "bsonType", Value: "number"}}), []check{
			{x(int32(1)), nil}, {x(int64(1)), nil}, {x(1.5), nil}, {x(dec(t, "1.5")), nil},
			{x("1"), []string{"properties.x: bsonType is string, want number"}},
		}},
		{"bsonType double", onX(bson.D{{Key: "bsonType", Value: "double"}}), []check{
			{x(1.0), nil},
			{x(int32(1)), []string{"properties.x: bsonType is int, want double"}},
			{x(int64(1)), []string{"properties.x: bsonType is long, want double"}},
		}},
		{"bsonType long", onX(bson.D{{Key: "bsonType", Value: "long"}}), []check{
			{x(int64(1)), nil},
			{x(int32(1)), []string{"properties.x: bsonType is int, want long"}},
		}},
		{"type", onX(bson.D{{Key: "type", Value: bson.A{"number", "null"}}}), []check{
			{x(int32(1)), nil}, {x(2.5), nil}, {x(nil), nil},
			{x("a"), []string{"properties.x: type is string, want one of [number, null]"}},
		}},
		{"type boolean object array string", bson.D{{Key: "properties", Value: bson.D{
			{Key: "b", Value: bson.D{{Key: "type", Value: "boolean"}}},
			{Key: "o", Value: bson.D{{Key: "type", Value: "object"}}},
			{Key: "a", Value: bson.D{{Key: "type", Value: "array"}}},
			{Key: "s", Value: bson.D{{Key: "type", Value: "string"}}},
		}}}, []check{
			{bson.D{{Key: "b", Value: true}, {Key: "o", Value: bson.D{}}, {Key: "a", Value: bson.A{}}, {Key: "s", Value: ""}}, nil},
			{bson.D{{Key: "b", Value: 1}, {Key: "o", Value: bson.A{}}, {Key: "a", Value: bson.D{}}, {Key: "s", Value: nil}}, []string{
				"properties.b: type is int, want boolean", "properties.o: type is array, want object",
				"properties.a: type is object, want array", "properties.s: type is null, want string",
			}},
		}},
		{"required", bson.D{{Key: "required", Value: bson.A{"a", "b", "c"}}}, []check{
			{bson.D{{Key: "a", Value: 1}, {Key: "b", Value: nil}, {Key: "c", Value: ""}}, nil}, // null is present
			{bson.D{{Key: "a", Value: 1}}, []string{`required: missing "b", "c"`}},
		}},
		{"nested properties", bson.D{{Key: "properties", Value: bson.D{{Key: "meta", Value: bson.D{
			{Key: "bsonType", Value: "object"}, {Key: "required", Value: bson.A{"size"}},
			{Key: "properties", Value: bson.D{{Key: "size", Value: bson.D{{Key: "bsonType", Value: "long"}}}}},
		}}}}}, []check{
			{bson.D{{Key: "meta", Value: bson.D{{Key: "size", Value: int64(3)}}}}, nil},
			{bson.D{{Key: "meta", Value: bson.D{{Key: "size", Value: "big"}}}}, []string{"properties.meta.properties.size: bsonType is string, want long"}},
			{bson.D{{Key: "meta", Value: bson.D{}}}, []string{`properties.meta: required: missing "size"`}},
		}},
		{"items", onX(bson.D{{Key: "items", Value: bson.D{{Key: "bsonType", Value: "string"}}}}), []check{
			{x(bson.A{"a", "b"}), nil},
			{x("not an array"), nil},
			{x(bson.A{"a", int32(2), int32(3)}), []string{"properties.x.items.1: bsonType is int, want string"}}, // first failure only
		}},
		{"nested items", onX(bson.D{{Key: "items", Value: bson.D{{Key: "properties", Value: bson.D{
			{Key: "n", Value: bson.D{{Key: "minimum", Value: 0}}}}}}}}), []check{
			{x(bson.A{bson.D{{Key: "n", Value: 1}}, bson.D{{Key: "n", Value: -1}}}), []string{"properties.x.items.1.properties.n: minimum is 0, got -1"}},
		}},
		{"items tuple and additionalItems false", onX(bson.D{
			{Key: "items", Value: bson.A{bson.D{{Key: "bsonType", Value: "string"}}, bson.D{{Key: "bsonType", Value: "int"}}}},
			{Key: "additionalItems", Value: false},
		}), []check{
			{x(bson.A{"a", int32(1)}), nil},
			{x(bson.A{"a"}), nil},
			{x(bson.A{"a", "b"}), []string{"properties.x.items.1: bsonType is string, want int"}},
			{x(bson.A{"a", int32(1), true}), []string{"properties.x: additionalItems: at most 2 items allowed, got 3"}},
		}},
		{"additionalItems schema", onX(bson.D{
			{Key: "items", Value: bson.A{bson.D{{Key: "bsonType", Value: "string"}}}},
			{Key: "additionalItems", Value: bson.D{{Key: "bsonType", Value: "bool"}}},
		}), []check{
			{x(bson.A{"a", true, false}), nil},
			{x(bson.A{"a", true, int32(3)}), []string{"properties.x.items.2: bsonType is int, want bool"}},
		}},
		{"additionalItems without tuple is ignored", onX(bson.D{
			{Key: "items", Value: bson.D{}}, {Key: "additionalItems", Value: false},
		}), []check{{x(bson.A{1, 2, 3}), nil}}},
		{"unicode lengths", onX(bson.D{{Key: "minLength", Value: 2}, {Key: "maxLength", Value: int64(3)}}), []check{
			{x("héé"), nil}, // 3 code points, 5 bytes
			{x("日本語"), nil}, // 3 code points, 9 bytes
			{x("👍👍"), nil},
			{x(12345), nil}, // non-strings are not measured
			{x("é"), []string{"properties.x: minLength is 2, got length 1"}},
			{x("日本語か"), []string{"properties.x: maxLength is 3, got length 4"}},
		}},
		{"minimum maximum", onX(bson.D{{Key: "minimum", Value: 0}, {Key: "maximum", Value: 10.5}}), []check{
			{x(int32(0)), nil}, {x(10.5), nil}, {x(int64(10)), nil}, {x(dec(t, "10.50")), nil}, {x("-5"), nil},
			{x(int64(-1)), []string{"properties.x: minimum is 0, got -1"}},
			{x(-0.5), []string{"properties.x: minimum is 0, got -0.5"}},
			{x(dec(t, "10.51")), []string{"properties.x: maximum is 10.5, got 10.51"}},
			{x(math.Inf(1)), []string{"properties.x: maximum is 10.5, got +Inf"}},
			{x(math.NaN()), []string{"properties.x: minimum is 0, got NaN", "properties.x: maximum is 10.5, got NaN"}},
		}},
		{"exclusive bounds", onX(bson.D{{Key: "minimum", Value: 0}, {Key: "exclusiveMinimum", Value: true},
			{Key: "maximum", Value: int64(math.MaxInt64)}, {Key: "exclusiveMaximum", Value: true}}), []check{
			{x(0.001), nil},
			{x(int64(math.MaxInt64 - 1)), nil},
			{x(0.0), []string{"properties.x: minimum is 0 (exclusive), got 0"}},
			{x(int64(math.MaxInt64)), []string{"properties.x: maximum is 9223372036854775807 (exclusive), got 9223372036854775807"}},
			{x(9223372036854775807.0), []string{"properties.x: maximum is 9223372036854775807 (exclusive), got 9.223372036854776e+18"}},
		}},
		{"multipleOf", onX(bson.D{{Key: "multipleOf", Value: 0.1}}), []check{
			{x(0.3), nil}, {x(int32(2)), nil}, {x(dec(t, "0.7")), nil},
			{x(0.35), []string{"properties.x: multipleOf is 0.1, got 0.35"}},
			{x(math.Inf(1)), []string{"properties.x: multipleOf is 0.1, got +Inf"}},
		}},
		{"multipleOf int", onX(bson.D{{Key: "multipleOf", Value: 3}}), []check{
			{x(int32(9)), nil}, {x(9.0), nil}, {x(int64(-3)), nil},
			{x(int64(10)), []string{"properties.x: multipleOf is 3, got 10"}},
		}},
		{"minItems maxItems", onX(bson.D{{Key: "minItems", Value: 1}, {Key: "maxItems", Value: 2.0}}), []check{
			{x(bson.A{1}), nil}, {x(bson.A{1, 2}), nil}, {x("abc"), nil},
			{x(bson.A{}), []string{"properties.x: minItems is 1, got 0 items"}},
			{x(bson.A{1, 2, 3}), []string{"properties.x: maxItems is 2, got 3 items"}},
		}},
		{"uniqueItems", onX(bson.D{{Key: "uniqueItems", Value: true}}), []check{
			{x(bson.A{int32(1), "1", int32(2), true, nil}), nil},
			{x(bson.A{bson.A{int32(1), int32(2)}, bson.A{int32(2), int32(1)}}), nil}, // arrays are ordered
			{x(bson.A{int32(1), 1.0}), []string{"properties.x: uniqueItems: items 0 and 1 are equal"}},
			{x(bson.A{int32(0), int64(1), dec(t, "1.0")}), []string{"properties.x: uniqueItems: items 1 and 2 are equal"}},
			{x(bson.A{0.0, math.Copysign(0, -1)}), []string{"properties.x: uniqueItems: items 0 and 1 are equal"}},
			{x(bson.A{bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 2}}, bson.D{{Key: "b", Value: 2.0}, {Key: "a", Value: int64(1)}}}),
				[]string{"properties.x: uniqueItems: items 0 and 1 are equal"}}, // MongoDB ignores field order here
			{x(bson.A{"a", bson.Symbol("a")}), []string{"properties.x: uniqueItems: items 0 and 1 are equal"}},
		}},
		{"uniqueItems false", onX(bson.D{{Key: "uniqueItems", Value: false}}), []check{{x(bson.A{1, 1}), nil}}},
		{"pattern", onX(bson.D{{Key: "pattern", Value: "^[0-9a-f]{64}$"}}), []check{
			{x(sha), nil}, {x(5), nil},
			{x("xyz"), []string{`properties.x: pattern "^[0-9a-f]{64}$" does not match "xyz"`}},
		}},
		{"pattern is a search", onX(bson.D{{Key: "pattern", Value: "b+"}}), []check{
			{x("abbc"), nil},
			{x("ac"), []string{`properties.x: pattern "b+" does not match "ac"`}},
		}},
		{"enum", onX(bson.D{{Key: "enum", Value: bson.A{int32(1), "a", bson.D{{Key: "k", Value: int32(1)}}, nil}}}), []check{
			{x(1.0), nil}, {x(int64(1)), nil}, {x("a"), nil}, {x(bson.D{{Key: "k", Value: 1.0}}), nil}, {x(nil), nil},
			{x("b"), []string{`properties.x: enum does not allow "b"`}},
			{x(int32(2)), []string{`properties.x: enum does not allow 2`}},
			{x(bson.A{int32(1)}), []string{`properties.x: enum does not allow [{"$numberInt":"1"}]`}},
		}},
		{"additionalProperties false covers _id", bson.D{
			{Key: "properties", Value: bson.D{{Key: "name", Value: bson.D{}}}}, {Key: "additionalProperties", Value: false},
		}, []check{
			{bson.D{{Key: "name", Value: "n"}}, nil},
			{bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: "n"}, {Key: "extra", Value: 1}},
				[]string{`additionalProperties: "_id", "extra" not allowed`}},
		}},
		{"additionalProperties schema", bson.D{
			{Key: "properties", Value: bson.D{{Key: "_id", Value: bson.D{}}}},
			{Key: "additionalProperties", Value: bson.D{{Key: "bsonType", Value: "string"}}},
		}, []check{
			{bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: "x"}}, nil},
			{bson.D{{Key: "a", Value: "x"}, {Key: "b", Value: int32(1)}}, []string{"properties.b: bsonType is int, want string"}},
		}},
		{"patternProperties", bson.D{
			{Key: "patternProperties", Value: bson.D{{Key: "^n_", Value: bson.D{{Key: "bsonType", Value: "int"}}}}},
			{Key: "additionalProperties", Value: false},
		}, []check{
			{bson.D{{Key: "n_a", Value: int32(1)}}, nil},
			{bson.D{{Key: "n_a", Value: "x"}}, []string{"properties.n_a: bsonType is string, want int"}},
			{bson.D{{Key: "z", Value: int32(1)}}, []string{`additionalProperties: "z" not allowed`}},
		}},
		{"minProperties maxProperties", onX(bson.D{{Key: "minProperties", Value: 1}, {Key: "maxProperties", Value: 1}}), []check{
			{x(bson.D{{Key: "a", Value: 1}}), nil},
			{x(bson.D{}), []string{"properties.x: minProperties is 1, got 0 properties"}},
			{x(bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 2}}), []string{"properties.x: maxProperties is 1, got 2 properties"}},
		}},
		{"allOf", bson.D{{Key: "allOf", Value: bson.A{
			bson.D{{Key: "required", Value: bson.A{"a"}}}, bson.D{{Key: "required", Value: bson.A{"b"}}},
		}}}, []check{
			{bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}, nil},
			{bson.D{{Key: "a", Value: 1}}, []string{`allOf.1: required: missing "b"`}},
		}},
		{"anyOf", onX(bson.D{{Key: "anyOf", Value: bson.A{
			bson.D{{Key: "bsonType", Value: "string"}}, bson.D{{Key: "bsonType", Value: "int"}},
		}}}), []check{
			{x("s"), nil}, {x(int32(1)), nil},
			{x(true), []string{"properties.x: anyOf: matched none of 2 schemas",
				"properties.x.anyOf.0: bsonType is bool, want string", "properties.x.anyOf.1: bsonType is bool, want int"}},
		}},
		{"oneOf", onX(bson.D{{Key: "oneOf", Value: bson.A{
			bson.D{{Key: "bsonType", Value: "number"}}, bson.D{{Key: "bsonType", Value: "int"}},
		}}}), []check{
			{x(1.5), nil},
			{x(int32(1)), []string{"properties.x: oneOf: matched schemas [0 1], want exactly one"}},
			{x("s"), []string{"properties.x: oneOf: matched none of 2 schemas",
				"properties.x.oneOf.0: bsonType is string, want number", "properties.x.oneOf.1: bsonType is string, want int"}},
		}},
		{"not", onX(bson.D{{Key: "not", Value: bson.D{{Key: "bsonType", Value: "null"}}}}), []check{
			{x(int32(1)), nil},
			{x(nil), []string{"properties.x: not: matched the schema"}},
		}},
		{"dependencies", bson.D{{Key: "dependencies", Value: bson.D{
			{Key: "a", Value: bson.A{"b", "c"}},
			{Key: "d", Value: bson.D{{Key: "required", Value: bson.A{"e"}}}},
		}}}, []check{
			{bson.D{{Key: "b", Value: 1}}, nil},
			{bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}, {Key: "c", Value: 1}}, nil},
			{bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}, []string{`dependencies: "a" requires "c"`}},
			{bson.D{{Key: "d", Value: 1}}, []string{`dependencies.d: required: missing "e"`}},
		}},
		{"annotations", bson.D{{Key: "title", Value: "t"}, {Key: "description", Value: "d"},
			{Key: "properties", Value: bson.D{{Key: "x", Value: bson.D{{Key: "description", Value: "an int"}, {Key: "bsonType", Value: "int"}}}}}}, []check{
			{x(int32(1)), nil},
			{x("1"), []string{"properties.x: bsonType is string, want int"}},
		}},
		{"top-level bsonType other than object matches nothing", bson.D{{Key: "bsonType", Value: "array"}}, []check{
			{bson.D{}, []string{"bsonType is object, want array"}},
		}},
		{"several failures", bson.D{
			{Key: "required", Value: bson.A{"name"}},
			{Key: "properties", Value: bson.D{
				{Key: "size", Value: bson.D{{Key: "bsonType", Value: bson.A{"int", "long"}}, {Key: "minimum", Value: 0}}},
				{Key: "tags", Value: bson.D{{Key: "bsonType", Value: "array"}, {Key: "uniqueItems", Value: true}}},
			}},
		}, []check{
			{bson.D{{Key: "size", Value: int64(-1)}, {Key: "tags", Value: bson.A{"a", "a"}}}, []string{
				`required: missing "name"`, "properties.size: minimum is 0, got -1", "properties.tags: uniqueItems: items 0 and 1 are equal",
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := compileSchemaT(t, tt.schema)
			for _, c := range tt.checks {
				require.Equal(t, c.want, schemaReasonsOf(t, v, c.doc), "document %v", c.doc)
			}
		})
	}
}

// TestSchemaBSONTypeAliases checks every bsonType alias against a value of its type.
func TestSchemaBSONTypeAliases(t *testing.T) {
	t.Parallel()
	values := map[string]any{
		"double": 1.5, "string": "s", "object": bson.D{}, "array": bson.A{}, "binData": bson.Binary{Data: []byte{1}},
		"undefined": bson.Undefined{}, "objectId": bson.NewObjectID(), "bool": false, "date": bson.NewDateTimeFromTime(time.Unix(0, 0)),
		"null": nil, "regex": bson.Regex{Pattern: "a"}, "javascript": bson.JavaScript("f()"), "int": int32(1),
		"timestamp": bson.Timestamp{T: 1}, "long": int64(1), "decimal": dec(t, "1"), "minKey": bson.MinKey{}, "maxKey": bson.MaxKey{},
	}
	for alias, value := range values {
		v := compileSchemaT(t, onX(bson.D{{Key: "bsonType", Value: alias}}))
		require.Nil(t, schemaReasonsOf(t, v, x(value)), alias)
		other := "string"
		if alias == "string" {
			other = "int"
		}
		require.Equal(t, []string{"properties.x: bsonType is " + alias + ", want " + other},
			schemaReasonsOf(t, compileSchemaT(t, onX(bson.D{{Key: "bsonType", Value: other}})), x(value)))
	}
}

// TestSchemaNullVsArray checks that null fails bsonType array, and the error details.
func TestSchemaNullVsArray(t *testing.T) {
	t.Parallel()
	// A Go nil slice marshals to null; MongoDB refuses it for bsonType array.
	v := compileSchemaT(t, bson.D{{Key: "properties", Value: bson.D{{Key: "datasets", Value: bson.D{
		{Key: "bsonType", Value: "array"}, {Key: "description", Value: "dataset ids"}, {Key: "uniqueItems", Value: true},
	}}}}})
	require.Nil(t, v.check(schemaBSON(t, bson.D{{Key: "datasets", Value: bson.A{}}})))
	viol := v.check(schemaBSON(t, struct {
		Datasets []bson.ObjectID `bson:"datasets"`
	}{}))
	require.NotNil(t, viol)
	require.Equal(t, []string{"properties.datasets: bsonType is null, want array"}, viol.Reasons)
	require.Equal(t, "Document failed validation: properties.datasets: bsonType is null, want array", viol.Error())

	details := bson.Raw(viol.details())
	require.NoError(t, details.Validate())
	lookup := func(path ...string) bson.RawValue {
		t.Helper()
		rv, err := details.LookupErr(path...)
		require.NoError(t, err, "%v in %s", path, details)
		return rv
	}
	require.Equal(t, "$jsonSchema", lookup("operatorName").StringValue())
	rule := []string{"schemaRulesNotSatisfied", "0"}
	require.Equal(t, "properties", lookup(append(rule, "operatorName")...).StringValue())
	prop := append(rule, "propertiesNotSatisfied", "0")
	require.Equal(t, "datasets", lookup(append(prop, "propertyName")...).StringValue())
	require.Equal(t, "dataset ids", lookup(append(prop, "description")...).StringValue())
	detail := append(prop, "details", "0")
	require.Equal(t, "bsonType", lookup(append(detail, "operatorName")...).StringValue())
	require.Equal(t, "array", lookup(append(detail, "specifiedAs", "bsonType")...).StringValue())
	require.Equal(t, "type did not match", lookup(append(detail, "reason")...).StringValue())
	require.Equal(t, bson.TypeNull, lookup(append(detail, "consideredValue")...).Type)
	require.Equal(t, "null", lookup(append(detail, "consideredType")...).StringValue())
}

// TestSchemaDetailsShapes pins the MongoDB-shaped errInfo.details.
func TestSchemaDetailsShapes(t *testing.T) {
	t.Parallel()
	v := compileSchemaT(t, bson.D{
		{Key: "title", Value: "artifact"},
		{Key: "required", Value: bson.A{"name"}},
		{Key: "additionalProperties", Value: false},
		{Key: "properties", Value: bson.D{
			{Key: "_id", Value: bson.D{}},
			{Key: "tags", Value: bson.D{{Key: "items", Value: bson.D{{Key: "maxLength", Value: 2}}}}},
			{Key: "size", Value: bson.D{{Key: "minimum", Value: 0}, {Key: "exclusiveMinimum", Value: true}}},
		}},
	})
	viol := v.check(schemaBSON(t, bson.D{{Key: "_id", Value: 1}, {Key: "tags", Value: bson.A{"ok", "long"}},
		{Key: "size", Value: int32(0)}, {Key: "junk", Value: true}}))
	require.NotNil(t, viol)
	require.Equal(t, []string{
		`required: missing "name"`,
		"properties.tags.items.1: maxLength is 2, got length 4",
		"properties.size: minimum is 0 (exclusive), got 0",
		`additionalProperties: "junk" not allowed`,
	}, viol.Reasons)

	require.JSONEq(t, `{"operatorName": "$jsonSchema", "title": "artifact", "schemaRulesNotSatisfied": [
		{"operatorName": "required", "specifiedAs": {"required": ["name"]}, "missingProperties": ["name"]},
		{"operatorName": "properties", "propertiesNotSatisfied": [
			{"propertyName": "tags", "details": [{"operatorName": "items",
				"reason": "At least one item did not match the sub-schema", "itemIndex": 1, "details": [
				{"operatorName": "maxLength", "specifiedAs": {"maxLength": 2},
					"reason": "specified string length was not satisfied", "consideredValue": "long"}]}]},
			{"propertyName": "size", "details": [{"operatorName": "minimum",
				"specifiedAs": {"minimum": 0, "exclusiveMinimum": true}, "reason": "comparison failed", "consideredValue": 0}]}]},
		{"operatorName": "additionalProperties", "specifiedAs": {"additionalProperties": false}, "additionalProperties": ["junk"]}
	]}`, schemaDetailsJSON(t, viol))

	// Logical keywords and dependencies render too.
	v = compileSchemaT(t, bson.D{
		{Key: "anyOf", Value: bson.A{bson.D{{Key: "required", Value: bson.A{"a"}}}}},
		{Key: "dependencies", Value: bson.D{{Key: "b", Value: bson.A{"c"}}}},
		{Key: "properties", Value: bson.D{{Key: "b", Value: bson.D{
			{Key: "oneOf", Value: bson.A{bson.D{}, bson.D{}}}, {Key: "not", Value: bson.D{}}}}}},
	})
	viol = v.check(schemaBSON(t, bson.D{{Key: "b", Value: 1}}))
	require.NotNil(t, viol)
	require.JSONEq(t, `{"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
		{"operatorName": "properties", "propertiesNotSatisfied": [{"propertyName": "b", "details": [
			{"operatorName": "oneOf", "reason": "more than one subschema matched", "matchingSchemaIndexes": [0, 1]},
			{"operatorName": "not", "reason": "child expression matched"}]}]},
		{"operatorName": "dependencies", "failingDependencies": [{"conditionalProperty": "b", "missingProperties": ["c"]}]},
		{"operatorName": "anyOf", "schemasNotSatisfied": [{"index": 0, "details": [
			{"operatorName": "required", "specifiedAs": {"required": ["a"]}, "missingProperties": ["a"]}]}]}
	]}`, schemaDetailsJSON(t, viol))

	// A huge considered value is left out of the details.
	v = compileSchemaT(t, onX(bson.D{{Key: "maxLength", Value: 1}}))
	viol = v.check(schemaBSON(t, x(strings.Repeat("a", 10000))))
	require.NotNil(t, viol)
	_, err := bson.Raw(viol.details()).LookupErr("schemaRulesNotSatisfied", "0", "propertiesNotSatisfied", "0", "details", "0", "consideredValue")
	require.Error(t, err)
	require.Less(t, len(viol.Error()), 300)
}

// TestSchemaHarmoniaLike checks a schema shaped like harmonia.JSONSchema output.
func TestSchemaHarmoniaLike(t *testing.T) {
	t.Parallel()
	// The shape index.go's JSONSchema derives from the Go types.
	str := func(rules ...bson.E) bson.D { return append(bson.D{{Key: "bsonType", Value: "string"}}, rules...) }
	v := compileSchemaT(t, bson.D{
		{Key: "bsonType", Value: "object"},
		{Key: "required", Value: bson.A{"name", "version", "path"}},
		{Key: "properties", Value: bson.D{
			{Key: "_id", Value: bson.D{{Key: "bsonType", Value: "objectId"}}},
			{Key: "schema_version", Value: bson.D{{Key: "bsonType", Value: bson.A{"int", "long"}}}},
			{Key: "name", Value: str(bson.E{Key: "minLength", Value: 1}, bson.E{Key: "maxLength", Value: 200})},
			{Key: "version", Value: str(bson.E{Key: "minLength", Value: 1}, bson.E{Key: "maxLength", Value: 100})},
			{Key: "path", Value: str(bson.E{Key: "minLength", Value: 1}, bson.E{Key: "maxLength", Value: 4096})},
			{Key: "size_bytes", Value: bson.D{{Key: "bsonType", Value: bson.A{"int", "long"}}, {Key: "minimum", Value: 0}}},
			{Key: "sha256", Value: str(bson.E{Key: "pattern", Value: "^[0-9a-f]{64}$"})},
			{Key: "tags", Value: bson.D{{Key: "bsonType", Value: "array"}, {Key: "items", Value: str(bson.E{Key: "maxLength", Value: 64})},
				{Key: "maxItems", Value: 64}, {Key: "uniqueItems", Value: true}}},
			{Key: "dataset_ids", Value: bson.D{{Key: "bsonType", Value: "array"}, {Key: "items", Value: bson.D{{Key: "bsonType", Value: "objectId"}}},
				{Key: "maxItems", Value: 1000}, {Key: "uniqueItems", Value: true}}},
			{Key: "published", Value: bson.D{{Key: "bsonType", Value: "bool"}}},
			{Key: "verified_at", Value: bson.D{{Key: "bsonType", Value: "date"}}},
			{Key: "manifest", Value: bson.D{{Key: "bsonType", Value: "object"}, {Key: "properties", Value: bson.D{
				{Key: "digest", Value: str(bson.E{Key: "pattern", Value: "^[0-9a-f]{64}$"})},
			}}}},
			{Key: "created_at", Value: bson.D{{Key: "bsonType", Value: "date"}}},
		}},
	})
	id := bson.NewObjectID()
	good := bson.D{
		{Key: "_id", Value: bson.NewObjectID()}, {Key: "schema_version", Value: 1}, {Key: "name", Value: "resnet"},
		{Key: "version", Value: "1.0"}, {Key: "path", Value: "models/resnet"}, {Key: "size_bytes", Value: int64(1 << 40)},
		{Key: "sha256", Value: strings.Repeat("0f", 32)}, {Key: "tags", Value: bson.A{"vision", "cnn"}},
		{Key: "dataset_ids", Value: bson.A{id, bson.NewObjectID()}}, {Key: "published", Value: false},
		{Key: "manifest", Value: bson.D{{Key: "digest", Value: strings.Repeat("a", 64)}}},
		{Key: "created_at", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "unknown", Value: "kept"},
	}
	require.Nil(t, v.check(schemaBSON(t, good)))

	bad := bson.D{
		{Key: "name", Value: ""}, {Key: "path", Value: "p"}, {Key: "size_bytes", Value: -1.0},
		{Key: "sha256", Value: strings.Repeat("0F", 32)}, {Key: "tags", Value: bson.A{"a", "a"}},
		{Key: "dataset_ids", Value: bson.A{id, id.Hex()}},
		{Key: "verified_at", Value: nil}, {Key: "manifest", Value: bson.D{{Key: "digest", Value: "x"}}},
	}
	require.Equal(t, []string{
		`required: missing "version"`,
		"properties.name: minLength is 1, got length 0",
		"properties.size_bytes: bsonType is double, want one of [int, long]",
		"properties.size_bytes: minimum is 0, got -1",
		`properties.sha256: pattern "^[0-9a-f]{64}$" does not match "0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F"`,
		"properties.tags: uniqueItems: items 0 and 1 are equal",
		"properties.dataset_ids.items.1: bsonType is string, want objectId",
		"properties.verified_at: bsonType is null, want date",
		`properties.manifest.properties.digest: pattern "^[0-9a-f]{64}$" does not match "x"`,
	}, schemaReasonsOf(t, v, bad))
}

// TestSchemaCompileErrors checks that refused validators say which keyword, where and why.
func TestSchemaCompileErrors(t *testing.T) {
	t.Parallel()
	js := func(schema any) bson.D { return bson.D{{Key: "$jsonSchema", Value: schema}} }
	deep := bson.D{}
	for range schemaMaxDepth {
		deep = bson.D{{Key: "not", Value: deep}}
	}
	tests := []struct {
		name      string
		validator bson.D
		want      string
	}{
		{"unsupported keyword", js(onX(bson.D{{Key: "format", Value: "email"}})),
			`$jsonSchema keyword "format" at properties.x is not supported by the embedded server`},
		{"unsupported top-level keyword", js(bson.D{{Key: "$ref", Value: "#/x"}}),
			`$jsonSchema keyword "$ref" at the top level is not supported by the embedded server`},
		{"unknown keyword in items", js(onX(bson.D{{Key: "items", Value: bson.A{bson.D{}, bson.D{{Key: "foo", Value: 1}}}}})),
			`$jsonSchema keyword "foo" at properties.x.items.1 is not supported`},
		{"encrypt", js(bson.D{{Key: "encrypt", Value: bson.D{}}}), `keyword "encrypt" at the top level is not supported`},
		{"bad regex", js(onX(bson.D{{Key: "pattern", Value: "^(?!x)"}})),
			`$jsonSchema keyword "pattern" at properties.x has a regular expression the embedded server cannot compile`},
		{"bad patternProperties regex", js(bson.D{{Key: "patternProperties", Value: bson.D{{Key: "a(", Value: bson.D{}}}}}),
			`$jsonSchema keyword "patternProperties" at patternProperties.a( has a regular expression`},
		{"query operator validator", bson.D{{Key: "name", Value: bson.D{{Key: "$type", Value: "string"}}}},
			`validator key "name" is not supported by the embedded server`},
		{"$and validator", bson.D{{Key: "$and", Value: bson.A{}}}, `validator key "$and" is not supported`},
		{"$jsonSchema with $expr", bson.D{{Key: "$jsonSchema", Value: bson.D{}}, {Key: "$expr", Value: true}}, `validator key "$expr"`},
		{"$jsonSchema twice", bson.D{{Key: "$jsonSchema", Value: bson.D{}}, {Key: "$jsonSchema", Value: bson.D{}}}, "more than once"},
		{"$jsonSchema not an object", js("x"), "$jsonSchema must be an object, got string"},
		{"minLength string", js(onX(bson.D{{Key: "minLength", Value: "1"}})), `"minLength" at properties.x must be a non-negative integer`},
		{"minLength negative", js(onX(bson.D{{Key: "minLength", Value: -1}})), "must be a non-negative integer"},
		{"maxItems fractional", js(onX(bson.D{{Key: "maxItems", Value: 1.5}})), "must be a non-negative integer"},
		{"bsonType unknown", js(onX(bson.D{{Key: "bsonType", Value: "integer"}})), `"bsonType" at properties.x has unknown type "integer"`},
		{"type integer", js(onX(bson.D{{Key: "type", Value: "integer"}})), `has unknown type "integer"`},
		{"type bsonType alias", js(onX(bson.D{{Key: "type", Value: "objectId"}})), `has unknown type "objectId"`},
		{"bsonType number", js(onX(bson.D{{Key: "bsonType", Value: 2}})), "must be a string or an array of strings"},
		{"bsonType empty", js(onX(bson.D{{Key: "bsonType", Value: bson.A{}}})), "must name at least one type"},
		{"bsonType duplicate", js(onX(bson.D{{Key: "bsonType", Value: bson.A{"int", "int"}}})), `names "int" twice`},
		{"type and bsonType", js(onX(bson.D{{Key: "type", Value: "string"}, {Key: "bsonType", Value: "string"}})), "cannot be given with bsonType"},
		{"duplicate keyword", js(bson.D{{Key: "required", Value: bson.A{"a"}}, {Key: "required", Value: bson.A{"b"}}}), "given more than once"},
		{"exclusiveMinimum alone", js(onX(bson.D{{Key: "exclusiveMinimum", Value: true}})), `"exclusiveMinimum" at properties.x requires minimum`},
		{"exclusiveMaximum not bool", js(onX(bson.D{{Key: "maximum", Value: 1}, {Key: "exclusiveMaximum", Value: 1}})), "must be a boolean"},
		{"minimum string", js(onX(bson.D{{Key: "minimum", Value: "0"}})), `"minimum" at properties.x must be a number`},
		{"multipleOf zero", js(onX(bson.D{{Key: "multipleOf", Value: 0}})), "must be a positive finite number"},
		{"required empty", js(bson.D{{Key: "required", Value: bson.A{}}}), "cannot be an empty array"},
		{"required not strings", js(bson.D{{Key: "required", Value: bson.A{1}}}), "must be an array of strings"},
		{"required duplicate", js(bson.D{{Key: "required", Value: bson.A{"a", "a"}}}), `names "a" twice`},
		{"enum empty", js(onX(bson.D{{Key: "enum", Value: bson.A{}}})), "cannot be an empty array"},
		{"enum duplicate", js(onX(bson.D{{Key: "enum", Value: bson.A{1, 1.0}}})), "cannot contain duplicate values"},
		{"properties not object", js(bson.D{{Key: "properties", Value: bson.A{}}}), `"properties" at the top level must be an object`},
		{"property not object", js(bson.D{{Key: "properties", Value: bson.D{{Key: "a", Value: 1}}}}), `entry "a" must be an object`},
		{"items scalar", js(onX(bson.D{{Key: "items", Value: 5}})), "must be an object or an array of objects"},
		{"additionalProperties string", js(bson.D{{Key: "additionalProperties", Value: "no"}}), "must be an object or a boolean"},
		{"allOf empty", js(bson.D{{Key: "allOf", Value: bson.A{}}}), `"allOf" at the top level must be a non-empty array`},
		{"anyOf scalar element", js(bson.D{{Key: "anyOf", Value: bson.A{1}}}), "must be an array of objects"},
		{"not scalar", js(bson.D{{Key: "not", Value: true}}), `"not" at the top level must be an object`},
		{"dependencies scalar", js(bson.D{{Key: "dependencies", Value: bson.D{{Key: "a", Value: "b"}}}}), `entry "a" must be an object`},
		{"dependencies empty", js(bson.D{{Key: "dependencies", Value: bson.D{{Key: "a", Value: bson.A{}}}}}), "cannot be an empty array"},
		{"title not string", js(bson.D{{Key: "title", Value: 1}}), `"title" at the top level must be a string`},
		{"nested in allOf", js(bson.D{{Key: "allOf", Value: bson.A{bson.D{}, onX(bson.D{{Key: "minItems", Value: true}})}}}),
			`"minItems" at allOf.1.properties.x must be`},
		{"too deep", js(deep), "nested more than 200 levels deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := compileValidator(schemaBSON(t, tt.validator))
			require.Nil(t, v)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestSchemaEmptyValidator checks that {} and nil validators accept everything.
func TestSchemaEmptyValidator(t *testing.T) {
	t.Parallel()
	v, err := compileValidator(schemaBSON(t, bson.D{}))
	require.NoError(t, err)
	require.Nil(t, v.check(schemaBSON(t, bson.D{{Key: "a", Value: 1}})))
	require.Nil(t, (*validator)(nil).check(nil))
	v = compileSchemaT(t, bson.D{})
	require.Nil(t, v.check(schemaBSON(t, bson.D{{Key: "a", Value: 1}})))
}

// TestSchemaMalformedBSON checks that malformed BSON is refused without panicking.
func TestSchemaMalformedBSON(t *testing.T) {
	t.Parallel()
	good := schemaBSON(t, bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: "c"}}}})
	badNested := append([]byte(nil), good...)
	badNested[11] = 0x7f // inner document length now overruns
	inputs := map[string][]byte{
		"nil": nil, "empty": {}, "short": {5, 0, 0}, "no terminator": {5, 0, 0, 0, 1},
		"truncated": good[:len(good)-3], "bad nested length": badNested,
		"unknown type":    {12, 0, 0, 0, 0x42, 'a', 0, 1, 2, 3, 4, 0},
		"negative length": {0xff, 0xff, 0xff, 0xff, 0},
	}
	v := compileSchemaT(t, bson.D{{Key: "required", Value: bson.A{"a"}}})
	for name, in := range inputs {
		require.NotPanics(t, func() {
			_, err := compileValidator(in)
			require.ErrorContains(t, err, "validator is not well-formed BSON", name)
			viol := v.check(in)
			require.NotNil(t, viol, name)
			require.Contains(t, viol.Error(), "document is not well-formed BSON", name)
			require.NoError(t, bson.Raw(viol.details()).Validate(), name)
		}, name)
	}
	// Bytes after the declared length are ignored.
	require.Nil(t, v.check(append(append([]byte(nil), good...), 0xde, 0xad)))
}

// TestSchemaConcurrentChecks uses one validator from several goroutines (run with -race).
func TestSchemaConcurrentChecks(t *testing.T) {
	t.Parallel()
	v := compileSchemaT(t, bson.D{{Key: "properties", Value: bson.D{{Key: "n", Value: bson.D{
		{Key: "bsonType", Value: "int"}, {Key: "minimum", Value: 0}}}}}})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				viol := v.check(schemaBSON(t, bson.D{{Key: "n", Value: int32(i*j%7 - 3)}}))
				if n := i * j % 7; n >= 3 {
					require.Nil(t, viol)
				} else {
					require.NotNil(t, viol)
				}
			}
		})
	}
	wg.Wait()
}

// FuzzCompileValidator compiles arbitrary validators and checks arbitrary documents: it must never panic.
func FuzzCompileValidator(f *testing.F) {
	seed := func(validator, doc any) {
		vb, err := bson.Marshal(validator)
		require.NoError(f, err)
		db, err := bson.Marshal(doc)
		require.NoError(f, err)
		f.Add(vb, db)
	}
	js := func(schema bson.D) bson.D { return bson.D{{Key: "$jsonSchema", Value: schema}} }
	arrayOfEnum := bson.D{{Key: "bsonType", Value: "array"}, {Key: "uniqueItems", Value: true},
		{Key: "items", Value: bson.D{{Key: "enum", Value: bson.A{1, "x"}}}}}
	seed(js(bson.D{{Key: "required", Value: bson.A{"a"}}, {Key: "properties", Value: bson.D{{Key: "a", Value: arrayOfEnum}}}}),
		bson.D{{Key: "a", Value: bson.A{1, 1.0, "x"}}})
	seed(js(bson.D{
		{Key: "patternProperties", Value: bson.D{{Key: "^x", Value: bson.D{{Key: "multipleOf", Value: 0.5}}}}},
		{Key: "additionalProperties", Value: bson.D{{Key: "not", Value: bson.D{{Key: "type", Value: "string"}}}}},
	}), bson.D{{Key: "x1", Value: 1.5}, {Key: "y", Value: "s"}})
	seed(js(bson.D{
		{Key: "oneOf", Value: bson.A{bson.D{{Key: "minProperties", Value: 1}}, bson.D{{Key: "maxProperties", Value: 0}}}},
		{Key: "dependencies", Value: bson.D{{Key: "a", Value: bson.A{"b"}}}},
	}), bson.D{{Key: "a", Value: dec(f, "1E6000")}})
	f.Add([]byte{5, 0, 0, 0, 0}, []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f}, []byte{5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, validatorBytes, doc []byte) {
		v, err := compileValidator(validatorBytes)
		if err != nil {
			require.Nil(t, v)
			return
		}
		for _, d := range [][]byte{doc, validatorBytes} {
			if viol := v.check(d); viol != nil {
				require.NotEmpty(t, viol.Error())
				require.NoError(t, bson.Raw(viol.details()).Validate())
			}
		}
	})
}
