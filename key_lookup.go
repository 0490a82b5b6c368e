package harmonia

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// NaturalKey is the natural key of an artifact or a dataset: its name and
// version, written NAME@VERSION.
type NaturalKey struct {
	Name, Version string
}

// String returns the key as NAME@VERSION.
func (k NaturalKey) String() string { return k.Name + "@" + k.Version }

// ArtifactIDsByKey returns the ids of the artifacts with the natural keys
// keys, in their order, in one server command whatever their number (a
// find on the names, which the unique {name, version} index serves, with
// only _id, name and version returned; a getMore follows only where the
// names have more other versions than keys asked for), so that a caller
// holding names, as a command line does, can Publish a thousand
// artifacts without a thousand lookups.
//
// Errors: [CodeInvalid] (an empty name or version, a key given twice),
// [CodeNotFound] (keys that match no artifact, every one named in
// Error.Fields), [CodeInternal].
func (s *Store) ArtifactIDsByKey(ctx context.Context, keys []NaturalKey) ([]bson.ObjectID, error) {
	return idsByKey(ctx, s.cols.artifacts, EntityArtifact, keys)
}

// DatasetIDsByKey is [Store.ArtifactIDsByKey] for datasets.
//
// Errors: [CodeInvalid], [CodeNotFound], [CodeInternal].
func (s *Store) DatasetIDsByKey(ctx context.Context, keys []NaturalKey) ([]bson.ObjectID, error) {
	return idsByKey(ctx, s.cols.datasets, EntityDataset, keys)
}

// idsByKey resolves keys in col with one find on {name: {$in: names}}.
// Versions are matched here: on MongoDB the names alone select a range of
// the unique {name, version} index, and on FerretDB an $in of names costs
// one scan where an $or of a thousand {name, version} pairs costs a
// thousand comparisons per document.
func idsByKey(ctx context.Context, col *mongo.Collection, entity string, keys []NaturalKey) ([]bson.ObjectID, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	want := make(map[NaturalKey]int, len(keys))
	var names []string
	seenName := map[string]bool{}
	for i, k := range keys {
		if k.Name == "" || k.Version == "" {
			return nil, invalidf(entity, "key", "key %d (%q) needs a name and a version", i, k)
		}
		if j, dup := want[k]; dup {
			return nil, invalidf(entity, "key", "%s is given twice (keys %d and %d)", k, j, i)
		}
		want[k] = i
		if !seenName[k.Name] {
			seenName[k.Name] = true
			names = append(names, k.Name)
		}
	}
	type keyDoc struct {
		ID      bson.ObjectID `bson:"_id"`
		Name    string        `bson:"name"`
		Version string        `bson:"version"`
	}
	proj := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: 1}, {Key: "version", Value: 1}})
	found, err := findAll[keyDoc](ctx, col, entity, bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: names}}}}, 2*len(keys), proj)
	if err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, len(keys))
	for _, d := range found {
		if i, ok := want[NaturalKey{d.Name, d.Version}]; ok {
			ids[i] = d.ID
		}
	}
	var fields []FieldError
	for i, id := range ids {
		if id.IsZero() {
			fields = append(fields, FieldError{Field: "key", Reason: "no " + entity + " with key " + keys[i].String()})
		}
	}
	if len(fields) == 0 {
		return ids, nil
	}
	reason := fields[0].Reason
	if len(fields) > 1 {
		var missing []string
		for _, f := range fields[:min(len(fields), maxNamedKeys)] {
			missing = append(missing, strings.TrimPrefix(f.Reason, "no "+entity+" with key "))
		}
		reason = fmt.Sprintf("%d of %d keys match no %s: %s", len(fields), len(keys), entity, strings.Join(missing, ", "))
		if len(fields) > maxNamedKeys {
			reason += fmt.Sprintf(" and %d more", len(fields)-maxNamedKeys)
		}
	}
	return nil, &Error{Code: CodeNotFound, Entity: entity, Field: "key", Fields: fields, Reason: reason}
}

// maxNamedKeys is how many missing keys the reason of idsByKey's error
// names; Error.Fields names all of them.
const maxNamedKeys = 10
