package harmonia

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/harmonia-ml/harmonia/internal/textcut"
)

// The rules of names live here, used by every entry point: the single
// and bulk writes of the Store (and so the inventory importer), the
// lookups by natural key, the $jsonSchema validators ([NamePattern]) and
// the harmonia command.
//
// A name is an artifact's or dataset's name or version, or an inventory
// version's tag. Alias names and tags have stricter rules of their own
// (lowercase ASCII, see validTag).

// EchoMax is how many characters (runes) of a caller's input an error
// message repeats; longer input is cut and ends with "…".
const EchoMax = 64

// echo returns s cut to EchoMax runes, for messages.
func echo(s string) string { return textcut.Runes(s, EchoMax) }

// MaxSizeBytes is the largest size_bytes an artifact or dataset may
// have: 2^53−1, the largest integer a JSON number (an IEEE 754 double)
// holds exactly, so that every size survives an export and an import.
const MaxSizeBytes int64 = 1<<53 - 1

// NormalizeName returns name in Unicode Normalization Form C, the form
// harmonia stores names, versions and version tags in: "café" typed with
// a combining accent (NFD) and with a precomposed é (NFC) are one name.
// Lookups normalize the same way, so NFD input finds the NFC entry.
func NormalizeName(name string) string { return norm.NFC.String(name) }

// NameKey returns the key under which artifact and dataset names are
// unique: the name in NFC, case-folded (Unicode full case folding, so
// "RESNET50", "ResNet50" and "resnet50" share a key). It is stored as
// name_key, and the unique index is {name_key, version}.
//
// Why names ignore case: a name is what people type and read, and two
// names that differ only in case are a trap (which one does a script
// mean?). Package indexes compare names the same way (PyPI normalizes
// case, npm and OCI registries require lower case). harmonia keeps the
// spelling its writer chose and refuses a second spelling of the same
// name, rather than lower-casing every name. Versions and version tags
// are compared exactly after NFC (SemVer's build and pre-release parts
// are case-sensitive).
func NameKey(name string) string {
	return norm.NFC.String(cases.Fold().String(norm.NFC.String(name)))
}

// NaturalKey returns the key under which an artifact or dataset is unique:
// NameKey(name) + "@" + NormalizeName(version). Two natural keys are the
// same entity exactly when their NaturalKeys are equal.
func NaturalKey(name, version string) string { return NameKey(name) + "@" + NormalizeName(version) }

// NameProblem returns why s cannot be a name, version or version tag, or
// "" when it can: it must be valid UTF-8 without leading or trailing white
// space and without control characters (Unicode category Cc) or format
// characters (Cf: zero-width spaces and joiners, bidirectional controls,
// soft hyphens), which make two names that look alike differ. Emptiness
// and length are the validator's "required" and "max" rules.
func NameProblem(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if s == "" {
		return ""
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return "must not begin or end with white space"
	}
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Cc, r):
			return fmt.Sprintf("must not contain control characters (found %U)", r)
		case unicode.Is(unicode.Cf, r):
			return fmt.Sprintf("must not contain invisible format characters (found %U)", r)
		}
	}
	return ""
}

// NamePattern is the regular expression of [NameProblem]'s rule, as the
// $jsonSchema validators carry it for writers that bypass harmonia: no
// white space at either end, no control or format characters.
const NamePattern = `^[^\s\p{Z}\p{Cc}\p{Cf}]([^\p{Cc}\p{Cf}]*[^\s\p{Z}\p{Cc}\p{Cf}])?$`

// normalizeNames puts the artifact's name and version in NFC and sets
// its name key.
func (a *ModelArtifact) normalizeNames() {
	a.Name, a.Version = NormalizeName(a.Name), NormalizeName(a.Version)
	a.NameKey = NameKey(a.Name)
}

// normalizeNames puts the dataset's name and version in NFC and sets its
// name key.
func (d *Dataset) normalizeNames() {
	d.Name, d.Version = NormalizeName(d.Name), NormalizeName(d.Version)
	d.NameKey = NameKey(d.Name)
}

// keyFilter selects the artifact or dataset with the natural key name and
// version, in any spelling of the name that shares its key.
func keyFilter(name, version string) bson.D {
	return bson.D{{Key: "name_key", Value: NameKey(name)}, {Key: "version", Value: NormalizeName(version)}}
}

// nameKeyIndex is the name of the unique index on {name_key, version}.
const nameKeyIndex = "uniq_name_key_version"

// NameCollisionsMax is how many colliding entries an error of
// [Store.EnsureIndexes] lists (it counts them all).
const NameCollisionsMax = 20

// fillNameKeys gives every document of col (artifacts or datasets) its
// name_key, so that the unique index on {name_key, version} can be built
// over documents stored before the key existed. It reads the documents
// once and writes only those whose key is missing or stale, in batches.
// Documents that would share a key (names that differ only in letter
// case or Unicode form, with the same version) are never merged: before
// writing anything it returns a conflict listing them, and the index is
// not built until a person renames or deletes all but one of each group.
func (s *Store) fillNameKeys(ctx context.Context, col *mongo.Collection, entity string) error {
	cur, err := col.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetProjection(bson.D{{Key: "name", Value: 1}, {Key: "version", Value: 1}, {Key: "name_key", Value: 1}}))
	if err != nil {
		return wrapErr(entity, "read names", err)
	}
	type doc struct {
		ID      bson.ObjectID `bson:"_id"`
		Name    string        `bson:"name"`
		Version string        `bson:"version"`
		NameKey string        `bson:"name_key"`
	}
	var stale []doc
	first := map[string]doc{}
	var collisions []string
	n := 0
	for cur.Next(ctx) {
		var d doc
		if err := cur.Decode(&d); err != nil {
			_ = cur.Close(context.WithoutCancel(ctx))
			return wrapErr(entity, "read names", err)
		}
		key := NameKey(d.Name)
		nk := key + "@" + NormalizeName(d.Version)
		if f, ok := first[nk]; ok {
			n++
			if len(collisions) < NameCollisionsMax {
				collisions = append(collisions, fmt.Sprintf("%q@%q (id %s) collides with %q@%q (id %s)",
					echo(d.Name), echo(d.Version), d.ID.Hex(), echo(f.Name), echo(f.Version), f.ID.Hex()))
			}
			continue
		}
		first[nk] = d
		if d.NameKey != key {
			d.NameKey = key
			stale = append(stale, d)
		}
	}
	if err := cur.Err(); err != nil {
		return wrapErr(entity, "read names", err)
	}
	_ = cur.Close(ctx)
	if n > 0 {
		return &Error{Code: CodeConflict, Entity: entity, Field: "name", Err: ErrNameCollision,
			Reason: fmt.Sprintf("%d entries have a name that differs from another's only in letter case or Unicode form, with the same version "+
				"(nothing was merged; rename or delete all but one of each, then create the indexes again): %s", n, strings.Join(collisions, "; "))}
	}
	models := make([]mongo.WriteModel, 0, len(stale))
	for _, d := range stale {
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: d.ID}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "name_key", Value: d.NameKey}}}}))
	}
	for chunk := range slices.Chunk(models, bulkWriteMax) {
		if _, err := col.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false)); err != nil {
			return wrapErr(entity, "write name keys", err)
		}
	}
	if len(stale) > 0 {
		s.log.InfoContext(ctx, "harmonia: gave names their case-insensitive key", "collection", col.Name(), "documents", len(stale))
	}
	return nil
}

// ErrNameCollision is the cause of the conflict [Store.EnsureIndexes]
// returns when stored artifacts or datasets have names that differ only in
// letter case or Unicode form (see [NameKey]) under the same version:
// entries written before names were unique ignoring case. The error's
// reason lists them (at most NameCollisionsMax). Test for it with
// errors.Is(err, harmonia.ErrNameCollision).
var ErrNameCollision = errors.New("names collide")

// NameVersion names an artifact or a dataset by its name and version, as
// a caller holding NAME@VERSION strings (a command line, a file) has
// them; [Store.ArtifactIDsByKey] resolves many at once.
type NameVersion struct {
	Name, Version string
}

// String returns the key as NAME@VERSION.
func (k NameVersion) String() string { return k.Name + "@" + k.Version }

// ArtifactIDsByKey returns the ids of the artifacts with the natural keys
// keys, in their order, in one server command whatever their number (a
// find on the names' keys, which the unique {name_key, version} index
// serves, with only _id, name_key and version returned; a getMore follows only where the
// names have more other versions than keys asked for), so that a caller
// holding names, as a command line does, can Publish a thousand
// artifacts without a thousand lookups.
//
// Errors: [CodeInvalid] (an empty name or version, a key given twice),
// [CodeNotFound] (keys that match no artifact, every one named in
// Error.Fields), [CodeInternal].
func (s *Store) ArtifactIDsByKey(ctx context.Context, keys []NameVersion) ([]bson.ObjectID, error) {
	return idsByKey(ctx, s.cols.artifacts, EntityArtifact, keys)
}

// DatasetIDsByKey is [Store.ArtifactIDsByKey] for datasets.
//
// Errors: [CodeInvalid], [CodeNotFound], [CodeInternal].
func (s *Store) DatasetIDsByKey(ctx context.Context, keys []NameVersion) ([]bson.ObjectID, error) {
	return idsByKey(ctx, s.cols.datasets, EntityDataset, keys)
}

// idsByKey resolves keys in col with one find on {name_key: {$in: keys}}:
// any letter case or Unicode form of a name finds its entry, as a lookup
// by one key does ([NaturalKey]).
// Versions are matched here: on MongoDB the names alone select a range of
// the unique {name, version} index, and on FerretDB an $in of names costs
// one scan where an $or of a thousand {name, version} pairs costs a
// thousand comparisons per document.
func idsByKey(ctx context.Context, col *mongo.Collection, entity string, keys []NameVersion) ([]bson.ObjectID, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	want := make(map[string]int, len(keys))
	var names []string
	seenName := map[string]bool{}
	for i, k := range keys {
		if k.Name == "" || k.Version == "" {
			return nil, invalidf(entity, "key", "key %d (%q) needs a name and a version", i, k)
		}
		nk := NaturalKey(k.Name, k.Version)
		if j, dup := want[nk]; dup {
			return nil, invalidf(entity, "key", "%s is given twice (keys %d and %d)", k, j, i)
		}
		want[nk] = i
		if name := NameKey(k.Name); !seenName[name] {
			seenName[name] = true
			names = append(names, name)
		}
	}
	type keyDoc struct {
		ID      bson.ObjectID `bson:"_id"`
		NameKey string        `bson:"name_key"`
		Version string        `bson:"version"`
	}
	proj := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "name_key", Value: 1}, {Key: "version", Value: 1}})
	found, err := findAll[keyDoc](ctx, col, entity, bson.D{{Key: "name_key", Value: bson.D{{Key: "$in", Value: names}}}}, 2*len(keys), proj)
	if err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, len(keys))
	for _, d := range found {
		if i, ok := want[d.NameKey+"@"+d.Version]; ok {
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
