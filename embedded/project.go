package embedded

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// codeProjectionMix is mongod's code for a projection that mixes
// inclusion and exclusion (a location code, without a codeName).
const codeProjectionMix = 31254

// projection is a find-style projection of field paths: an inclusion
// ({a: 1, "b.c": 1}, _id kept unless excluded) or an exclusion
// ({a: 0}). FerretDB v1 ignores findAndModify's fields, so the front
// applies them to the document it answers with.
type projection struct {
	include bool
	paths   map[string]bool // dotted paths named, _id aside
	noID    bool            // _id: 0
}

// parseProjection reads fields. Operators ($slice, $elemMatch, the
// positional $) are refused with NotImplemented.
func parseProjection(fields bsoncore.Document) (*projection, *cmdError) {
	p := &projection{paths: map[string]bool{}}
	elems, err := fields.Elements()
	if err != nil {
		return nil, errorf(codeFailedToParse, "fields: %v", err)
	}
	mode := 0 // 1 include, -1 exclude
	for _, e := range elems {
		k, v := e.Key(), e.Value()
		if strings.Contains(k, "$") || v.Type == bsoncore.TypeEmbeddedDocument {
			return nil, errorf(codeNotImplemented, "findAndModify: projection %q is not supported by the embedded server (only field inclusion or exclusion is)", k)
		}
		on := truthy(v)
		if k == "_id" {
			p.noID = !on
			continue
		}
		m := -1
		if on {
			m = 1
		}
		if mode != 0 && m != mode {
			if on {
				return nil, errorf(codeProjectionMix, "Cannot do inclusion on field %s in exclusion projection", k)
			}
			return nil, errorf(codeProjectionMix, "Cannot do exclusion on field %s in inclusion projection", k)
		}
		mode = m
		p.paths[k] = true
	}
	// {_id: 1} alone keeps only _id; {} keeps everything.
	p.include = mode == 1 || (mode == 0 && !p.noID && len(elems) > 0)
	return p, nil
}

// apply returns doc projected.
func (p *projection) apply(doc bsoncore.Document) bsoncore.Document {
	if len(p.paths) == 0 && !p.include && !p.noID {
		return doc
	}
	return docOf(p.walk(doc, ""))
}

// walk projects the sub-document doc found at prefix.
func (p *projection) walk(doc bsoncore.Document, prefix string) bson.D {
	elems, _ := doc.Elements()
	var out bson.D
	for _, e := range elems {
		k := e.Key()
		path := prefix + k
		if prefix == "" && k == "_id" {
			if !p.noID {
				out = append(out, bson.E{Key: k, Value: rawValue(e.Value())})
			}
			continue
		}
		named, under := p.paths[path], p.hasUnder(path)
		sub, isDoc := e.Value().DocumentOK()
		switch {
		case p.include && named:
			out = append(out, bson.E{Key: k, Value: rawValue(e.Value())})
		case p.include && under && isDoc:
			out = append(out, bson.E{Key: k, Value: p.walk(sub, path+".")})
		case p.include:
		case named:
		case under && isDoc:
			out = append(out, bson.E{Key: k, Value: p.walk(sub, path+".")})
		default:
			out = append(out, bson.E{Key: k, Value: rawValue(e.Value())})
		}
	}
	if out == nil {
		out = bson.D{}
	}
	return out
}

// hasUnder reports whether a named path lies below path.
func (p *projection) hasUnder(path string) bool {
	for q := range p.paths {
		if strings.HasPrefix(q, path+".") {
			return true
		}
	}
	return false
}

// applyToValue returns the findAndModify reply rep with its value
// projected; a nil p leaves it as it is.
func (p *projection) applyToValue(rep bsoncore.Document) bsoncore.Document {
	if p == nil {
		return rep
	}
	v, ok := rep.Lookup("value").DocumentOK()
	if !ok {
		return rep
	}
	return editDoc(rep, nil, bson.D{{Key: "value", Value: bson.Raw(p.apply(v))}})
}

// needsWriter reports whether cmd, which needs no statement-by-statement
// run for a transaction or a validator, needs the writer anyway for what
// FerretDB v1 gets wrong: findAndModify's fields (ignored), and the
// upserted[].index of an update of several statements (FerretDB numbers
// the upserts, not the statements).
func needsWriter(cmd *command) bool {
	switch cmd.name {
	case "findAndModify":
		return cmd.lookup("fields").Type == bsoncore.TypeEmbeddedDocument
	case "update":
		arr, _ := cmd.lookup("updates").ArrayOK()
		vals, _ := arr.Values()
		if len(vals) < 2 {
			return false
		}
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok && truthy(d.Lookup("upsert")) {
				return true
			}
		}
	}
	return false
}
