package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// validatorsFile is where a data directory keeps its collections'
// validators, which FerretDB does not store.
const validatorsFile = "harmonia-validators.bson"

// collValidator is one collection's validator and its options.
type collValidator struct {
	raw      bsoncore.Document // as given to create or collMod
	level    string            // "strict" (default), "moderate" or "off"
	action   string            // "error" (default) or "warn"
	compiled *validator
}

// check returns why doc fails v, or nil. A nil v, or one whose level is
// "off", passes everything.
func (v *collValidator) check(doc bsoncore.Document) *schemaViolation {
	if v == nil || v.level == "off" || v.compiled == nil {
		return nil
	}
	return v.compiled.check(doc)
}

func (v *collValidator) warn() bool { return v != nil && v.action == "warn" }

// validatorStore holds every collection's validator, in memory and in the
// data directory's validatorsFile.
type validatorStore struct {
	path string // "" keeps them in memory only

	mu   sync.Mutex
	byNS map[resource]*collValidator
}

// validatorEntry is one collection's validator as validatorsFile stores it.
type validatorEntry struct {
	DB     string   `bson:"db"`
	Coll   string   `bson:"coll"`
	Raw    bson.Raw `bson:"validator"`
	Level  string   `bson:"validationLevel"`
	Action string   `bson:"validationAction"`
}

// loadValidators reads the validators kept in dir, if any.
func loadValidators(dir string) (*validatorStore, error) {
	s := &validatorStore{byNS: map[resource]*collValidator{}}
	if dir == "" {
		return s, nil
	}
	s.path = filepath.Join(dir, validatorsFile)
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	var file struct {
		Entries []validatorEntry `bson:"entries"`
	}
	if err := bson.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("embedded: %s: %w", s.path, err)
	}
	for _, e := range file.Entries {
		compiled, err := compileValidator(bsoncore.Document(e.Raw))
		if err != nil {
			return nil, fmt.Errorf("embedded: %s: validator of %s.%s: %w", s.path, e.DB, e.Coll, err)
		}
		s.byNS[resource{e.DB, e.Coll}] = &collValidator{raw: bsoncore.Document(e.Raw), level: e.Level, action: e.Action, compiled: compiled}
	}
	return s, nil
}

// get returns the validator of db.coll, or nil.
func (s *validatorStore) get(db, coll string) *collValidator {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byNS[resource{db, coll}]
}

// any reports whether a collection of db has a validator.
func (s *validatorStore) any(db string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for r := range s.byNS {
		if r.db == db {
			return true
		}
	}
	return false
}

// update applies fn to the validators and saves them.
func (s *validatorStore) update(fn func(m map[resource]*collValidator)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.byNS)
	if s.path == "" {
		return nil
	}
	var file struct {
		Entries []validatorEntry `bson:"entries"`
	}
	for r, v := range s.byNS {
		file.Entries = append(file.Entries, validatorEntry{DB: r.db, Coll: r.coll, Raw: bson.Raw(v.raw), Level: v.level, Action: v.action})
	}
	b, err := bson.Marshal(file)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}

// validatorOptions reads validator, validationLevel and validationAction
// from cmd into v (a copy of the current one, or a new one), and reports
// whether cmd had any of them.
func validatorOptions(cmd *command, cur *collValidator) (*collValidator, bool, *cmdError) {
	v := &collValidator{level: "strict", action: "error"}
	if cur != nil {
		*v = *cur
	}
	any := false
	if val, err := cmd.doc.LookupErr("validator"); err == nil {
		any = true
		doc, ok := val.DocumentOK()
		if !ok {
			return nil, false, errorf(codeBadValue, "validator must be a document")
		}
		if len(doc) <= 5 { // {}: no validator
			v.raw, v.compiled = nil, nil
		} else {
			compiled, err := compileValidator(doc)
			if err != nil {
				return nil, false, errorf(codeFailedToParse, "%v", err)
			}
			v.raw, v.compiled = doc, compiled
		}
	}
	if val, err := cmd.doc.LookupErr("validationLevel"); err == nil {
		any = true
		s, _ := val.StringValueOK()
		switch s {
		case "off", "strict", "moderate":
			v.level = s
		default:
			return nil, false, errorf(codeBadValue, "validationLevel must be off, strict or moderate, not %s", val)
		}
	}
	if val, err := cmd.doc.LookupErr("validationAction"); err == nil {
		any = true
		s, _ := val.StringValueOK()
		switch s {
		case "error", "warn":
			v.action = s
		default:
			return nil, false, errorf(codeBadValue, "validationAction must be error or warn, not %s", val)
		}
	}
	return v, any, nil
}

var validatorFields = []string{"validator", "validationLevel", "validationAction"}

// create forwards a create command without its validator options, which
// FerretDB refuses, and keeps them once the collection exists.
func (f *front) create(be *backend, cmd *command) (bsoncore.Document, error) {
	v, any, cerr := validatorOptions(cmd, nil)
	if cerr != nil {
		return cerr.doc(), nil
	}
	if !any {
		return nil, errPassThrough
	}
	rep, err := be.run(cmd.without(validatorFields...))
	if err != nil || !replyOK(rep) {
		return rep, err
	}
	r := resourceOf(cmd)
	if err := f.validators.update(func(m map[resource]*collValidator) { m[r] = keepIfAny(v) }); err != nil {
		return nil, err
	}
	return rep, nil
}

// keepIfAny returns v, or nil when it holds nothing worth keeping.
func keepIfAny(v *collValidator) *collValidator {
	if v.raw == nil && v.level == "strict" && v.action == "error" {
		return nil
	}
	return v
}

// collMod answers collMod for the validator options, the only ones the
// embedded server supports.
func (f *front) collMod(be *backend, cmd *command) (bsoncore.Document, error) {
	elems, _ := cmd.doc.Elements()
	for _, e := range elems[1:] {
		switch k := e.Key(); {
		case k == "validator" || k == "validationLevel" || k == "validationAction":
		case k == "$db" || k == "lsid" || k == "$clusterTime" || k == "writeConcern" || k == "comment" ||
			k == "txnNumber" || k == "$readPreference" || k == "maxTimeMS" || strings.HasPrefix(k, "api"):
		default:
			return errorf(codeNotImplemented, "collMod: option %q is not supported by the embedded server (only validator, validationLevel and validationAction are)", k).doc(), nil
		}
	}
	r := resourceOf(cmd)
	exists, err := collectionExists(be, r)
	if err != nil {
		return nil, err
	}
	if !exists {
		return errorf(codeNamespaceNotFound, "ns does not exist: %s.%s", r.db, r.coll).doc(), nil
	}
	v, _, cerr := validatorOptions(cmd, f.validators.get(r.db, r.coll))
	if cerr != nil {
		return cerr.doc(), nil
	}
	if err := f.validators.update(func(m map[resource]*collValidator) {
		if keep := keepIfAny(v); keep != nil {
			m[r] = keep
		} else {
			delete(m, r)
		}
	}); err != nil {
		return nil, err
	}
	return okDoc(), nil
}

// dropOrRename forwards drop, dropDatabase and renameCollection and moves
// or forgets the validators they concern.
func (f *front) dropOrRename(be *backend, cmd *command) (bsoncore.Document, error) {
	rep, err := be.run(cmd.doc)
	if err != nil || !replyOK(rep) {
		return rep, err
	}
	err = f.validators.update(func(m map[resource]*collValidator) {
		switch cmd.name {
		case "drop":
			delete(m, resourceOf(cmd))
		case "dropDatabase":
			for r := range m {
				if r.db == cmd.db {
					delete(m, r)
				}
			}
		case "renameCollection":
			from, _ := cmd.doc.Index(0).Value().StringValueOK()
			to, _ := cmd.lookup("to").StringValueOK()
			fr, tr := splitNS(from), splitNS(to)
			v := m[fr]
			delete(m, fr)
			delete(m, tr)
			if v != nil {
				m[tr] = v
			}
		}
	})
	return rep, err
}

func splitNS(ns string) resource {
	db, coll, _ := strings.Cut(ns, ".")
	return resource{db, coll}
}

// annotate adds each collection's validator options to a listCollections
// reply, as MongoDB shows them.
func (s *validatorStore) annotate(db string, rep bsoncore.Document) bsoncore.Document {
	cur, ok := rep.Lookup("cursor").DocumentOK()
	if !ok {
		return rep
	}
	batch, _ := cur.Lookup("firstBatch").ArrayOK()
	vals, _ := batch.Values()
	changed := false
	out := make(bson.A, 0, len(vals))
	for _, val := range vals {
		d, _ := val.DocumentOK()
		name, _ := d.Lookup("name").StringValueOK()
		v := s.get(db, name)
		if v == nil {
			out = append(out, bson.Raw(d))
			continue
		}
		opts := bson.D{}
		if o, ok := d.Lookup("options").DocumentOK(); ok {
			elems, _ := o.Elements()
			for _, e := range elems {
				opts = append(opts, bson.E{Key: e.Key(), Value: rawValue(e.Value())})
			}
		}
		if v.raw != nil {
			opts = append(opts, bson.E{Key: "validator", Value: bson.Raw(v.raw)})
		}
		opts = append(opts, bson.E{Key: "validationLevel", Value: v.level}, bson.E{Key: "validationAction", Value: v.action})
		out = append(out, bson.Raw(editDoc(d, nil, bson.D{{Key: "options", Value: opts}})))
		changed = true
	}
	if !changed {
		return rep
	}
	newCur := editDoc(cur, nil, bson.D{{Key: "firstBatch", Value: out}})
	return editDoc(rep, nil, bson.D{{Key: "cursor", Value: bson.Raw(newCur)}})
}
