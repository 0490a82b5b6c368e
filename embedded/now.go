package embedded

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// The front evaluates $$NOW, MongoDB's variable for the server's clock
// (4.2+), in the forms that take lease times from the server's clock,
// which FerretDB v1 refuses ($expr and update pipelines). It rewrites
// the command before anything else sees it, with one $$NOW per command:
//
//   - In the filter of find, count, distinct, update, delete and
//     findAndModify, and in an aggregation's $match stages (at the top level or under $and, $or, $nor), an $expr
//     that compares a field path with $$NOW ($eq, $ne, $lt, $lte, $gt,
//     $gte, either side) becomes the query condition on that field.
//     Unlike MongoDB's $expr, it matches only documents whose field is a
//     date: a missing or non-date field never compares.
//   - An update pipeline (update statements' u, findAndModify's update)
//     of $set or $addFields stages and $unset stages becomes an operator
//     update, where each field a stage sets is one of: a constant (a
//     scalar, or {$literal: v}); $$NOW; {$add: ["$$NOW", ms]};
//     {$add: [{$ifNull: ["$f", 0]}, n]} on its own field f (an $inc); or
//     {$concatArrays: [{$ifNull: ["$f", []]}, [v, ...]]} on its own field
//     (a $push). A pipeline outside these forms, one that touches a field
//     twice, or another use of $$NOW, is refused with NotImplemented.
//
// As on MongoDB, an upsert whose filter has an $expr is refused, with
// QueryFeatureNotAllowed (224): the server could not build the document
// to insert from it. (MongoDB reports it as the statement's write error;
// the front refuses the whole command.)

// nowShape says where a command keeps its filters and update pipelines:
// in each statement, which is a document of the array named list, or the
// command itself when list is "", under the keys filter and update ("" for
// none). An aggregation's stages are its statements, and $match their
// filter.
type nowShape struct{ list, filter, update string }

var nowShapes = map[string]nowShape{
	"find": {filter: "filter"}, "count": {filter: "query"}, "distinct": {filter: "query"},
	"findAndModify": {filter: "query", update: "update"},
	"update":        {list: "updates", filter: "q", update: "u"},
	"delete":        {list: "deletes", filter: "q"},
	"aggregate":     {list: "pipeline", filter: "$match"},
}

// rewriteNow rewrites cmd's $$NOW and update pipelines as described
// above. It leaves cmd alone when neither occurs.
func (f *front) rewriteNow(cmd *command) *cmdError {
	shape, ok := nowShapes[cmd.name]
	if !ok || !needsNow(cmd, shape) {
		return nil
	}
	var d bson.D
	if err := bson.Unmarshal(cmd.doc, &d); err != nil {
		return errorf(codeBadValue, "%s: %v", cmd.name, err)
	}
	now := bson.NewDateTimeFromTime(f.cfg.now())
	var err *cmdError
	if shape.list == "" {
		d, err = rewriteStatement(d, shape, now)
	} else if i := slices.IndexFunc(d, func(e bson.E) bool { return e.Key == shape.list }); i >= 0 {
		stmts, _ := d[i].Value.(bson.A)
		for j := range stmts {
			if stmt, ok := stmts[j].(bson.D); ok && err == nil {
				stmts[j], err = rewriteStatement(stmt, shape, now)
			}
		}
	}
	if err != nil {
		return err
	}
	b, merr := bson.Marshal(d)
	if merr != nil {
		return errorf(codeBadValue, "%s: %v", cmd.name, merr)
	}
	cmd.doc, cmd.raw = b, nil
	return nil
}

// needsNow reports whether cmd mentions $$NOW or carries an update
// pipeline.
func needsNow(cmd *command, shape nowShape) bool {
	if bytes.Contains(cmd.doc, []byte("$$NOW")) {
		return true
	}
	switch {
	case shape.update == "":
		return false
	case shape.list == "":
		return cmd.lookup(shape.update).Type == bsoncore.TypeArray
	}
	stmts, _ := cmd.lookup(shape.list).ArrayOK()
	vals, _ := stmts.Values()
	for _, v := range vals {
		if doc, ok := v.DocumentOK(); ok && doc.Lookup(shape.update).Type == bsoncore.TypeArray {
			return true
		}
	}
	return false
}

// rewriteStatement rewrites the filter and update pipeline of one
// statement, refusing an upsert whose filter has an $expr.
func rewriteStatement(stmt bson.D, shape nowShape, now bson.DateTime) (bson.D, *cmdError) {
	var err *cmdError
	for i := range stmt {
		switch e := &stmt[i]; {
		case e.Key == shape.filter:
			if hasExpr(e.Value) && isUpsert(stmt) {
				return nil, upsertExpr()
			}
			e.Value, err = nowFilter(e.Value, now)
		case e.Key == shape.update && shape.update != "":
			if stages, ok := e.Value.(bson.A); ok {
				e.Value, err = pipelineUpdate(stages, now)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return stmt, nil
}

// isUpsert reports the statement's upsert option.
func isUpsert(stmt bson.D) bool {
	for _, e := range stmt {
		if e.Key != "upsert" {
			continue
		}
		switch v := e.Value.(type) {
		case bool:
			return v
		case int32:
			return v != 0
		case int64:
			return v != 0
		case float64:
			return v != 0
		}
		return false
	}
	return false
}

// hasExpr reports whether the filter v has an $expr, at its top level or
// under $and, $or or $nor.
func hasExpr(v any) bool {
	filter, _ := v.(bson.D)
	for _, e := range filter {
		switch e.Key {
		case "$expr":
			return true
		case "$and", "$or", "$nor":
			branches, _ := e.Value.(bson.A)
			for _, b := range branches {
				if hasExpr(b) {
					return true
				}
			}
		}
	}
	return false
}

func upsertExpr() *cmdError {
	return errorf(codeQueryFeatureNotAllowed, "$expr is not allowed in the query predicate for an upsert")
}

// mirror gives the comparison that holds with its operands swapped.
var mirror = map[string]string{"$eq": "$eq", "$ne": "$ne", "$lt": "$gt", "$lte": "$gte", "$gt": "$lt", "$gte": "$lte"}

// nowFilter rewrites the $expr comparisons with $$NOW of the filter v.
func nowFilter(v any, now bson.DateTime) (any, *cmdError) {
	filter, ok := v.(bson.D)
	if !ok {
		return v, nil
	}
	out := make(bson.D, 0, len(filter))
	var conds bson.D
	for _, e := range filter {
		switch e.Key {
		case "$and", "$or", "$nor":
			branches, _ := e.Value.(bson.A)
			for i := range branches {
				b, err := nowFilter(branches[i], now)
				if err != nil {
					return nil, err
				}
				branches[i] = b
			}
		case "$expr":
			cond, ok := nowComparison(e.Value, now)
			if ok {
				conds = append(conds, cond)
				continue
			}
			if mentionsNow(e.Value) {
				return nil, errorf(codeNotImplemented, "$expr: the embedded server evaluates $$NOW only in a comparison of a field path with $$NOW ($eq, $ne, $lt, $lte, $gt, $gte)")
			}
		}
		out = append(out, e)
	}
	if len(conds) == 0 {
		return out, nil
	}
	for _, c := range conds {
		for _, e := range out {
			if e.Key == c.Key {
				return bson.D{{Key: "$and", Value: bson.A{out, conds}}}, nil
			}
		}
	}
	return append(out, conds...), nil
}

// nowComparison turns the $expr {op: ["$field", "$$NOW"]} (or with the
// operands swapped) into the query condition {field: {op: now}}.
func nowComparison(v any, now bson.DateTime) (bson.E, bool) {
	expr, ok := v.(bson.D)
	if !ok || len(expr) != 1 {
		return bson.E{}, false
	}
	op := expr[0].Key
	args, ok := expr[0].Value.(bson.A)
	if _, known := mirror[op]; !known || !ok || len(args) != 2 {
		return bson.E{}, false
	}
	if isNow(args[0]) {
		args[0], args[1], op = args[1], args[0], mirror[op]
	}
	field, ok := fieldPath(args[0])
	if !ok || !isNow(args[1]) {
		return bson.E{}, false
	}
	return bson.E{Key: field, Value: bson.D{{Key: op, Value: now}}}, true
}

// pipelineUpdate turns an update pipeline into the operator update that
// does the same, for the forms listed at the top of this file.
func pipelineUpdate(stages bson.A, now bson.DateTime) (bson.D, *cmdError) {
	var set, inc, push, unset bson.D
	seen := map[string]bool{}
	touch := func(field string) *cmdError {
		if seen[field] {
			return errorf(codeNotImplemented, "update pipeline: the embedded server runs a pipeline that touches each field once (%q is touched twice)", field)
		}
		seen[field] = true
		return nil
	}
	for _, st := range stages {
		stage, ok := st.(bson.D)
		if !ok || len(stage) != 1 {
			return nil, errorf(codeFailedToParse, "update pipeline: each stage must be a document with one field")
		}
		switch name, body := stage[0].Key, stage[0].Value; name {
		case "$set", "$addFields":
			fields, ok := body.(bson.D)
			if !ok {
				return nil, errorf(codeFailedToParse, "update pipeline: %s takes a document", name)
			}
			for _, e := range fields {
				if err := touch(e.Key); err != nil {
					return nil, err
				}
				switch op, arg := setForm(e.Key, e.Value, now); op {
				case "$set":
					set = append(set, bson.E{Key: e.Key, Value: arg})
				case "$inc":
					inc = append(inc, bson.E{Key: e.Key, Value: arg})
				case "$push":
					push = append(push, bson.E{Key: e.Key, Value: bson.D{{Key: "$each", Value: arg}}})
				default:
					return nil, errorf(codeNotImplemented, "update pipeline: the embedded server cannot evaluate the expression of field %q (it takes constants, {$literal}, $$NOW, {$add: [\"$$NOW\", ms]}, and $inc- and $push-like forms on the field itself)", e.Key)
				}
			}
		case "$unset":
			var fields bson.A
			switch b := body.(type) {
			case string:
				fields = bson.A{b}
			case bson.A:
				fields = b
			}
			if len(fields) == 0 {
				return nil, errorf(codeFailedToParse, "update pipeline: $unset takes a field name or an array of them")
			}
			for _, fv := range fields {
				field, ok := fv.(string)
				if !ok {
					return nil, errorf(codeFailedToParse, "update pipeline: $unset takes field names")
				}
				if err := touch(field); err != nil {
					return nil, err
				}
				unset = append(unset, bson.E{Key: field, Value: ""})
			}
		default:
			return nil, errorf(codeNotImplemented, "update pipeline: the embedded server runs $set, $addFields and $unset stages only (got %s)", name)
		}
	}
	var update bson.D
	for _, op := range []bson.E{{Key: "$set", Value: set}, {Key: "$inc", Value: inc}, {Key: "$push", Value: push}, {Key: "$unset", Value: unset}} {
		if len(op.Value.(bson.D)) > 0 {
			update = append(update, op)
		}
	}
	if len(update) == 0 {
		return nil, errorf(codeFailedToParse, "update pipeline: it changes nothing")
	}
	return update, nil
}

// setForm tells which operator does what field := v does in a $set
// stage, and its argument; op is "" when the expression is not one the
// front evaluates.
func setForm(field string, v any, now bson.DateTime) (op string, arg any) {
	if isNow(v) {
		return "$set", now
	}
	if c, ok := constant(v); ok {
		return "$set", c
	}
	expr, ok := v.(bson.D)
	if !ok || len(expr) != 1 {
		return "", nil
	}
	args, ok := expr[0].Value.(bson.A)
	if !ok || len(args) != 2 {
		return "", nil
	}
	switch expr[0].Key {
	case "$add":
		a, b := args[0], args[1]
		if isNow(b) {
			a, b = b, a
		}
		ms, ok := millis(b)
		switch {
		case !ok:
		case isNow(a):
			return "$set", bson.NewDateTimeFromTime(now.Time().Add(time.Duration(ms) * time.Millisecond))
		case isOwnField(a, field, func(v any) bool { _, ok := millis(v); return ok }):
			return "$inc", b
		}
	case "$concatArrays":
		items, ok := args[1].(bson.A)
		if !ok || !isOwnField(args[0], field, func(v any) bool { a, ok := v.(bson.A); return ok && len(a) == 0 }) {
			return "", nil
		}
		each := make(bson.A, len(items))
		for i, it := range items {
			if each[i], ok = constant(it); !ok {
				return "", nil
			}
		}
		return "$push", each
	}
	return "", nil
}

// isOwnField reports whether v is {$ifNull: ["$field", d]} with d a
// default that empty accepts.
func isOwnField(v any, field string, empty func(any) bool) bool {
	expr, ok := v.(bson.D)
	if !ok || len(expr) != 1 || expr[0].Key != "$ifNull" {
		return false
	}
	args, ok := expr[0].Value.(bson.A)
	if !ok || len(args) != 2 {
		return false
	}
	path, ok := fieldPath(args[0])
	return ok && path == field && empty(args[1])
}

// constant returns the value of a constant expression: a scalar that is
// not a field path or variable, or {$literal: v}.
func constant(v any) (any, bool) {
	switch c := v.(type) {
	case bson.D:
		if len(c) == 1 && c[0].Key == "$literal" {
			return c[0].Value, true
		}
		return nil, false
	case bson.A:
		return nil, false
	case string:
		return c, !strings.HasPrefix(c, "$")
	}
	return v, true
}

// millis returns v as a whole number (of milliseconds).
func millis(v any) (int64, bool) {
	switch n := v.(type) {
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}

// fieldPath returns the field of the field path "$field".
func fieldPath(v any) (string, bool) {
	s, ok := v.(string)
	if !ok || len(s) < 2 || s[0] != '$' || s[1] == '$' {
		return "", false
	}
	return s[1:], true
}

func isNow(v any) bool {
	s, ok := v.(string)
	return ok && s == "$$NOW"
}

// mentionsNow reports whether the expression v uses $$NOW anywhere.
func mentionsNow(v any) bool {
	switch x := v.(type) {
	case string:
		return x == "$$NOW"
	case bson.D:
		for _, e := range x {
			if mentionsNow(e.Value) {
				return true
			}
		}
	case bson.A:
		for _, e := range x {
			if mentionsNow(e) {
				return true
			}
		}
	}
	return false
}
