package embedded

import (
	"bytes"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// FerretDB finds a document through its _id index only for a filter that
// is exactly {_id: v}; a filter with more conditions, such as a job's
// {_id, lease_token}, scans the collection up to the document (52 ms
// against 4 ms for {_id} alone, 2,000 documents). So the front answers a
// single-document write whose filter pins _id by reading that document by
// _id, deciding the other conditions itself where matchScalars can, and
// running the statement pinned to {_id} (or not at all when the document
// does not match). Conditions it cannot decide leave the statement as it
// was.

// pinnedStatement reports whether an update or delete statement whose
// filter q pins _id can take the pinned path: q has other conditions, and
// the statement neither upserts nor carries a collation (which changes
// how strings compare).
func pinnedStatement(stmt, q bsoncore.Document) bool {
	elems, err := q.Elements()
	if err != nil || len(elems) < 2 {
		return false
	}
	return !truthy(stmt.Lookup("upsert")) && stmt.Lookup("collation").Type == 0
}

// anyPinned reports whether an update or delete command (statements under
// key) has a statement that may take the pinned path.
func anyPinned(cmd *command, key string) bool {
	arr, _ := cmd.lookup(key).ArrayOK()
	vals, _ := arr.Values()
	for _, v := range vals {
		stmt, _ := v.DocumentOK()
		q, _ := stmt.Lookup("q").DocumentOK()
		if _, ok := idEquality(q); ok && pinnedStatement(stmt, q) {
			return true
		}
	}
	return false
}

// matchScalars decides whether doc matches every condition of q but _id,
// when it can: known is false when a condition is beyond it. It knows
// top-level fields (no dots, no $-operators at the top) compared with a
// scalar (string, ObjectId, bool, number, date) for equality, $eq, $lt,
// $lte, $gt and $gte, where the document's value is a scalar of the same
// kind, and $exists. Everything else (arrays, embedded documents, null,
// other operators, values of different kinds) is left to the server.
func matchScalars(doc, q bsoncore.Document) (match, known bool) {
	elems, err := q.Elements()
	if err != nil {
		return false, false
	}
	match = true
	for _, e := range elems {
		key := e.Key()
		if key == "_id" {
			continue
		}
		if strings.HasPrefix(key, "$") || strings.Contains(key, ".") {
			return false, false
		}
		have, err := doc.LookupErr(key)
		present := err == nil
		cond := e.Value()
		ops, isDoc := cond.DocumentOK()
		if !isDoc {
			m, ok := compareOp("$eq", have, present, cond)
			if !ok {
				return false, false
			}
			match = match && m
			continue
		}
		opElems, err := ops.Elements()
		if err != nil || len(opElems) == 0 {
			return false, false
		}
		for _, op := range opElems {
			if op.Key() == "$exists" {
				want, ok := op.Value().BooleanOK()
				if !ok {
					return false, false
				}
				match = match && present == want
				continue
			}
			m, ok := compareOp(op.Key(), have, present, op.Value())
			if !ok {
				return false, false
			}
			match = match && m
		}
	}
	return match, true
}

// compareOp evaluates "have op want" for the operators matchScalars knows;
// ok is false when it cannot.
func compareOp(op string, have bsoncore.Value, present bool, want bsoncore.Value) (match, ok bool) {
	switch op {
	case "$eq", "$lt", "$lte", "$gt", "$gte":
	default:
		return false, false
	}
	if !scalar(want) {
		return false, false
	}
	if !present {
		// A missing field equals nothing but null and compares with no
		// scalar: every one of these conditions is false.
		return false, true
	}
	c, ok := compareScalars(have, want)
	if !ok {
		return false, false
	}
	switch op {
	case "$eq":
		return c == 0, true
	case "$lt":
		return c < 0, true
	case "$lte":
		return c <= 0, true
	case "$gt":
		return c > 0, true
	default:
		return c >= 0, true
	}
}

// scalar reports whether v is of a kind compareScalars compares.
func scalar(v bsoncore.Value) bool {
	switch v.Type {
	case bsoncore.TypeString, bsoncore.TypeObjectID, bsoncore.TypeBoolean, bsoncore.TypeDateTime,
		bsoncore.TypeInt32, bsoncore.TypeInt64, bsoncore.TypeDouble:
		return true
	}
	return false
}

// compareScalars compares two scalars of the same kind (numbers are one
// kind), as MongoDB does without a collation; ok is false for anything
// else.
func compareScalars(a, b bsoncore.Value) (c int, ok bool) {
	if !scalar(a) || !scalar(b) {
		return 0, false
	}
	if an, aok := number(a); aok {
		bn, bok := number(b)
		if !bok {
			return 0, false
		}
		return cmpOrdered(an, bn), true
	}
	if a.Type != b.Type {
		return 0, false
	}
	switch a.Type {
	case bsoncore.TypeString:
		return strings.Compare(a.StringValue(), b.StringValue()), true
	case bsoncore.TypeObjectID:
		x, y := a.ObjectID(), b.ObjectID()
		return bytes.Compare(x[:], y[:]), true
	case bsoncore.TypeBoolean:
		x, y := a.Boolean(), b.Boolean()
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		default:
			return 1, true
		}
	case bsoncore.TypeDateTime:
		return cmpOrdered(a.DateTime(), b.DateTime()), true
	}
	return 0, false
}

// number returns a numeric value as a float64 when that is exact
// (integers beyond 2^53 are not compared here).
func number(v bsoncore.Value) (float64, bool) {
	switch v.Type {
	case bsoncore.TypeInt32:
		return float64(v.Int32()), true
	case bsoncore.TypeInt64:
		n := v.Int64()
		if n > 1<<53 || n < -(1<<53) {
			return 0, false
		}
		return float64(n), true
	case bsoncore.TypeDouble:
		f := v.Double()
		if f != f { // NaN
			return 0, false
		}
		return f, true
	}
	return 0, false
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
