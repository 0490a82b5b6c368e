package harmonia

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// IndexSpec describes one index harmonia needs.
type IndexSpec struct {
	Collection string
	Name       string
	Keys       bson.D
	Unique     bool
}

// Indexes lists every index EnsureIndexes creates, with explicit names.
func Indexes() []IndexSpec {
	return []IndexSpec{
		{CollectionArtifacts, nameKeyIndex, bson.D{{Key: "name_key", Value: 1}, {Key: "version", Value: 1}}, true},
		{CollectionArtifacts, "license_id", bson.D{{Key: "license_id", Value: 1}}, false},
		{CollectionArtifacts, "tags", bson.D{{Key: "tags", Value: 1}}, false},
		{CollectionLicenses, "uniq_spdx_id", bson.D{{Key: "spdx_id", Value: 1}}, true},
		{CollectionDatasets, nameKeyIndex, bson.D{{Key: "name_key", Value: 1}, {Key: "version", Value: 1}}, true},
		{CollectionDatasets, "license_id", bson.D{{Key: "license_id", Value: 1}}, false},
		{CollectionVersions, "uniq_version_tag", bson.D{{Key: "version_tag", Value: 1}}, true},
		{CollectionVersions, "published_at_desc", bson.D{{Key: "published_at", Value: -1}}, false},
		{CollectionVersions, "state_created", bson.D{{Key: "state", Value: 1}, {Key: "created_at", Value: 1}}, false},
		{CollectionJobs, "status_worker", bson.D{{Key: "status", Value: 1}, {Key: "worker_id", Value: 1}}, false},
		// The claim's order, _id included, so that MongoDB reads the next
		// job off the index instead of sorting the backlog on every claim.
		{CollectionJobs, "claim", bson.D{{Key: "status", Value: 1}, {Key: "type", Value: 1}, {Key: "priority", Value: -1}, {Key: "run_after", Value: 1}, {Key: "_id", Value: 1}}, false},
		{CollectionJobs, "unique_key", bson.D{{Key: "unique_key", Value: 1}, {Key: "status", Value: 1}}, false},
		// One pending or running job per unique key; see jobDoc.
		{CollectionJobs, "uniq_unique_lock", bson.D{{Key: "unique_lock", Value: 1}}, true},
		{CollectionEvents, "job_at", bson.D{{Key: "job_id", Value: 1}, {Key: "at", Value: 1}}, false},
		{CollectionAliases, "uniq_name", bson.D{{Key: "name", Value: 1}}, true},
		// One record per move: concurrent moves cannot both take a seq.
		{CollectionAliasHistory, "uniq_alias_seq", bson.D{{Key: "alias", Value: 1}, {Key: "seq", Value: 1}}, true},
		{CollectionMigrations, "uniq_version", bson.D{{Key: "version", Value: 1}}, true},
	}
}

// EnsureIndexes creates harmonia's collections' indexes (see [Indexes]).
// It is idempotent: running it again changes nothing. Where the server
// supports $jsonSchema validators ([Capabilities].Validators), it also
// installs validators derived from the Go types' bson and validate tags, so
// that writers bypassing harmonia are checked too (validationLevel
// moderate: existing invalid documents are not rejected on unrelated
// updates). Where it does not (a server without collMod), it logs a
// notice and skips them. The embedded server has them in both its modes.
//
// Before it builds the unique index on {name_key, version} of artifacts
// or datasets, it gives every stored document its name_key (see
// [NameKey]); where two stored names share a key under one version it
// merges nothing and returns a conflict with cause [ErrNameCollision]
// listing them.
//
// Errors: [CodeConflict] (names that collide), [CodeInternal].
func (s *Store) EnsureIndexes(ctx context.Context) error {
	existing := map[string]map[string]bool{}
	for _, ix := range Indexes() {
		names, ok := existing[ix.Collection]
		if !ok {
			specs, err := s.db.Collection(ix.Collection).Indexes().ListSpecifications(ctx)
			if err != nil {
				return wrapErr("index", "list indexes of "+ix.Collection, err)
			}
			names = map[string]bool{}
			for _, spec := range specs {
				names[spec.Name] = true
			}
			existing[ix.Collection] = names
		}
		if names[ix.Name] {
			continue
		}
		if ix.Name == nameKeyIndex {
			entity := map[string]string{CollectionArtifacts: EntityArtifact, CollectionDatasets: EntityDataset}[ix.Collection]
			if err := s.fillNameKeys(ctx, s.db.Collection(ix.Collection), entity); err != nil {
				return err
			}
		}
		// One index per command: FerretDB v1 panics on a createIndexes
		// with several indexes when some of them exist already.
		o := options.Index().SetName(ix.Name)
		if ix.Unique {
			o.SetUnique(true)
		}
		if _, err := s.db.Collection(ix.Collection).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.Keys, Options: o}); err != nil {
			return wrapErr("index", "create index "+ix.Name+" on "+ix.Collection, err)
		}
	}
	s.indexes.mu.Lock()
	s.indexes.missing = nil
	s.indexes.mu.Unlock()
	if !s.caps.Validators {
		s.log.InfoContext(ctx, "harmonia: server has no $jsonSchema validators; skipping them", "server", s.caps.ServerVersion)
		return nil
	}
	for col, schema := range Validators() {
		cmd := bson.D{{Key: "collMod", Value: col}, {Key: "validator", Value: bson.D{{Key: "$jsonSchema", Value: schema}}},
			{Key: "validationLevel", Value: "moderate"}}
		if err := s.db.RunCommand(ctx, cmd).Err(); err != nil {
			return wrapErr("index", "install validator on "+col, err)
		}
	}
	return nil
}

// Validators returns the $jsonSchema validator of each entity collection,
// derived from the Go types' bson and validate tags.
func Validators() map[string]bson.D {
	return map[string]bson.D{
		CollectionArtifacts: JSONSchema(reflect.TypeFor[ModelArtifact]()),
		CollectionLicenses:  JSONSchema(reflect.TypeFor[License]()),
		CollectionDatasets:  JSONSchema(reflect.TypeFor[Dataset]()),
		CollectionVersions:  JSONSchema(reflect.TypeFor[InventoryVersion]()),
		CollectionJobs:      JSONSchema(reflect.TypeFor[Job]()),

		CollectionAliases:      JSONSchema(reflect.TypeFor[aliasDoc]()),
		CollectionAliasHistory: JSONSchema(reflect.TypeFor[AliasMove]()),
	}
}

// JSONSchema derives a MongoDB $jsonSchema document from a struct type:
// bson field names, BSON types, required fields (validate "required"),
// string length bounds (max), number minimums (gte) and the sha256 pattern.
// It documents the rules the Go validator enforces in a form the server
// can check; the Go validator stays the reference.
func JSONSchema(t reflect.Type) bson.D {
	props := bson.D{}
	var required bson.A
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("bson"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		rules := strings.Split(f.Tag.Get("validate"), ",")
		prop := fieldSchema(f.Type, rules)
		props = append(props, bson.E{Key: name, Value: prop})
		for _, r := range rules {
			if r == "required" {
				required = append(required, name)
			}
		}
	}
	d := bson.D{{Key: "bsonType", Value: "object"}}
	if len(required) > 0 {
		d = append(d, bson.E{Key: "required", Value: required})
	}
	return append(d, bson.E{Key: "properties", Value: props})
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	objectIDType = reflect.TypeFor[bson.ObjectID]()
	rawType      = reflect.TypeFor[bson.Raw]()
)

func fieldSchema(t reflect.Type, rules []string) bson.D {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	d := bson.D{}
	switch {
	case t == timeType:
		d = append(d, bson.E{Key: "bsonType", Value: "date"})
	case t == objectIDType:
		d = append(d, bson.E{Key: "bsonType", Value: "objectId"})
	case t == rawType:
		d = append(d, bson.E{Key: "bsonType", Value: "object"})
	case t.Kind() == reflect.String:
		d = append(d, bson.E{Key: "bsonType", Value: "string"})
	case t.Kind() == reflect.Bool:
		d = append(d, bson.E{Key: "bsonType", Value: "bool"})
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		d = append(d, bson.E{Key: "bsonType", Value: bson.A{"int", "long"}})
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		d = append(d, bson.E{Key: "bsonType", Value: "double"})
	case t.Kind() == reflect.Slice:
		d = append(d, bson.E{Key: "bsonType", Value: "array"})
		var elemRules []string
		for i, r := range rules {
			if r == "dive" {
				elemRules = rules[i+1:]
				rules = rules[:i]
				break
			}
		}
		d = append(d, bson.E{Key: "items", Value: fieldSchema(t.Elem(), elemRules)})
	case t.Kind() == reflect.Struct:
		return JSONSchema(t)
	}
	isString := t.Kind() == reflect.String
	for _, r := range rules {
		key, param, _ := strings.Cut(r, "=")
		n, numErr := strconv.Atoi(param)
		switch {
		case key == "required" && isString:
			d = append(d, bson.E{Key: "minLength", Value: 1})
		case key == "max" && numErr == nil && isString:
			d = append(d, bson.E{Key: "maxLength", Value: n})
		case key == "max" && numErr == nil && t.Kind() == reflect.Slice:
			d = append(d, bson.E{Key: "maxItems", Value: n})
		case key == "gte" && numErr == nil:
			d = append(d, bson.E{Key: "minimum", Value: n})
		case key == "lte" && numErr == nil:
			d = append(d, bson.E{Key: "maximum", Value: n})
		case key == "unique":
			d = append(d, bson.E{Key: "uniqueItems", Value: true})
		case key == "sha256hex":
			d = append(d, bson.E{Key: "pattern", Value: "^[0-9a-f]{64}$"})
		case key == "name":
			d = append(d, bson.E{Key: "pattern", Value: NamePattern})
		}
	}
	return d
}

// ErrIndexesMissing is the cause of the error a write gets when a unique
// index it relies on to refuse duplicates does not exist: the deployment
// was never set up with [Store.EnsureIndexes] or the migrate package's
// built-in migrations. Test for it with
//
//	errors.Is(err, harmonia.ErrIndexesMissing)
var ErrIndexesMissing = errors.New("unique indexes missing")

// indexState records, per collection, the unique indexes that Open found
// missing. A write that relies on one looks again (one listIndexes) before
// it refuses, so that indexes created since Open, by another process or a
// migration, are found.
type indexState struct {
	mu      sync.Mutex
	missing map[string][]string
}

// uniqueIndexes returns the names of the unique indexes of each entity
// collection (the migrations collection belongs to package migrate).
func uniqueIndexes() map[string][]string {
	out := map[string][]string{}
	for _, ix := range Indexes() {
		if ix.Unique && ix.Collection != CollectionMigrations {
			out[ix.Collection] = append(out[ix.Collection], ix.Name)
		}
	}
	return out
}

// indexNames lists the index names of col with one listIndexes; a
// collection that does not exist has none.
func indexNames(ctx context.Context, col *mongo.Collection) (map[string]bool, error) {
	specs, err := col.Indexes().ListSpecifications(ctx)
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == 26 { // NamespaceNotFound
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, wrapErr("store", "list indexes of "+col.Name(), err)
	}
	names := make(map[string]bool, len(specs))
	for _, spec := range specs {
		names[spec.Name] = true
	}
	return names, nil
}

// missingUnique returns the unique indexes of collection that col lacks.
func missingUnique(ctx context.Context, col *mongo.Collection) ([]string, error) {
	names, err := indexNames(ctx, col)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, n := range uniqueIndexes()[col.Name()] {
		if !names[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// checkIndexes finds the missing unique indexes with one listIndexes per
// collection.
func (s *Store) checkIndexes(ctx context.Context) error {
	missing := map[string][]string{}
	for col := range uniqueIndexes() {
		m, err := missingUnique(ctx, s.db.Collection(col))
		if err != nil {
			return err
		}
		if len(m) > 0 {
			missing[col] = m
		}
	}
	s.indexes.mu.Lock()
	s.indexes.missing = missing
	s.indexes.mu.Unlock()
	return nil
}

// requireUnique returns nil when the unique indexes of collection exist,
// and otherwise an error with code [CodeInvalid] and cause
// [ErrIndexesMissing] that names the fix. It sends a command only when
// Open found an index missing.
func (s *Store) requireUnique(ctx context.Context, entity, collection string) error {
	s.indexes.mu.Lock()
	defer s.indexes.mu.Unlock()
	if len(s.indexes.missing[collection]) == 0 {
		return nil
	}
	m, err := missingUnique(ctx, s.db.Collection(collection))
	if err != nil {
		return err
	}
	if len(m) == 0 {
		delete(s.indexes.missing, collection)
		return nil
	}
	s.indexes.missing[collection] = m
	return &Error{Code: CodeInvalid, Entity: entity, Field: "indexes", Err: ErrIndexesMissing,
		Reason: fmt.Sprintf("unique index %s of collection %s is missing, so duplicates would not be refused: "+
			"call Store.EnsureIndexes once, run the migrate package's built-in migrations, or open the Store with Options.EnsureIndexes",
			strings.Join(m, ", "), collection)}
}
