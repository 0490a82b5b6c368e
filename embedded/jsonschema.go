package embedded

// A $jsonSchema validator engine: FerretDB v1 has no collection validators,
// so the front compiles each collection's validator with compileValidator
// and checks every document it would write with validator.check.
//
// Semantics follow MongoDB's $jsonSchema (draft 4 with MongoDB's bsonType
// extension and omissions): keywords apply only to values of their type,
// additionalProperties does not exempt _id, numbers compare by value across
// BSON types, and enum/uniqueItems compare documents ignoring field order
// (MongoDB's UnorderedFieldsBSONElementComparator). Known approximations:
// pattern uses Go's RE2 instead of PCRE (a pattern RE2 cannot compile
// refuses the validator; `$` only matches at the very end), and multipleOf
// divides exact rationals, with doubles first rounded to 15 significant
// digits as MongoDB's Decimal128 conversion does.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

const (
	// schemaMaxDepth bounds the nesting of validators and checked documents;
	// it is MongoDB's default maxBSONDepth, so recursion stays shallow.
	schemaMaxDepth = 200
	// schemaMaxConsidered bounds the size of a consideredValue copied into
	// error details, so an error reply stays far below the message limit.
	schemaMaxConsidered = 4096
)

// validator is a compiled collection validator. It is immutable once
// compiled and safe for concurrent use.
type validator struct {
	root  *schemaNode // nil: the empty validator {}, which accepts every document
	title string      // the top-level title, echoed in error details
}

// schemaViolation describes why a document failed.
type schemaViolation struct {
	// Reasons lists each rule not satisfied, with the path, e.g.
	// `properties.datasets: bsonType is null, want array`.
	Reasons []string

	title    string          // the top-level schema title, if any
	failures []schemaFailure // the same rules, structured for details
}

// schemaNode is one compiled (sub)schema. Absent count limits are -1.
type schemaNode struct {
	spec        bsoncore.Document // the schema as given, for specifiedAs
	description string

	types *schemaTypes // bsonType or type
	enum  map[string]struct{}

	minLength, maxLength int64
	pattern              *regexp.Regexp
	minimum, maximum     *schemaBound
	multipleOf           *big.Rat

	minItems, maxItems int64
	uniqueItems        bool
	items              *schemaNode   // items given as one schema
	tuple              []*schemaNode // items given as an array of schemas
	additionalItems    *schemaNode
	noAdditionalItems  bool

	required               []string
	minProperties          int64
	maxProperties          int64
	properties             map[string]*schemaNode
	patternProperties      []schemaPattern
	additionalProperties   *schemaNode
	noAdditionalProperties bool
	dependencies           []schemaDependency
	allOf, anyOf, oneOf    []*schemaNode
	not                    *schemaNode
}

// schemaTypes is a compiled bsonType or type keyword.
type schemaTypes struct {
	keyword string          // "bsonType" or "type"
	names   []string        // the aliases as given
	types   []bsoncore.Type // the BSON types they admit
}

// schemaBound is a compiled minimum or maximum.
type schemaBound struct {
	num       schemaNumber
	exclusive bool
}

// schemaPattern is one patternProperties entry.
type schemaPattern struct {
	re   *regexp.Regexp
	node *schemaNode
}

// schemaDependency is one dependencies entry: when property is present,
// the object must have every requires property, or match node.
type schemaDependency struct {
	property string
	requires []string
	node     *schemaNode
}

// schemaFailure is one unsatisfied keyword, shaped after an entry of
// MongoDB's schemaRulesNotSatisfied.
type schemaFailure struct {
	keyword   string // operatorName
	text      string // human-readable reason; empty when groups explain it
	info      bson.D // further detail fields: specifiedAs, reason, consideredValue, ...
	groupsKey string // detail array holding groups; empty: one group, inlined
	groups    []schemaFailureGroup
}

// schemaFailureGroup gathers the failures at one nested location: a
// property, an array item, or a subschema of allOf/anyOf/oneOf.
type schemaFailureGroup struct {
	step     string // path step for Reasons, e.g. "properties.name" or "items.3"
	label    bson.D // identifying detail fields, e.g. {propertyName: "name"}
	failures []schemaFailure
}

// schemaNumber is a numeric BSON value reduced to an exact rational.
type schemaNumber struct {
	nan bool
	inf int      // +1 or -1 for ±Infinity, 0 for finite values
	r   *big.Rat // the value when finite
}

// compileValidator compiles a collection's `validator` option, the document
// given to create/collMod, e.g. {$jsonSchema: {...}}. The empty validator {}
// compiles to one that accepts everything. Any other document whose sole key
// is not $jsonSchema (query-operator validators), unknown or unsupported
// schema keywords, regular expressions Go cannot compile and keywords of the
// wrong type return an error naming the keyword, its schema path and why.
func compileValidator(doc bsoncore.Document) (*validator, error) {
	doc = bytes.Clone(schemaTrim(doc)) // compiled nodes keep slices of it
	if err := schemaWellFormed(doc, 0); err != nil {
		return nil, fmt.Errorf("validator is not well-formed BSON: %w", err)
	}
	elems := schemaElements(doc)
	for _, e := range elems {
		if key := e.Key(); key != "$jsonSchema" {
			return nil, fmt.Errorf("validator key %q is not supported by the embedded server: only {$jsonSchema: {...}} validators are", key)
		}
	}
	switch len(elems) {
	case 0:
		return &validator{}, nil
	case 1:
	default:
		return nil, errors.New("validator gives $jsonSchema more than once")
	}
	schema, ok := elems[0].Value().DocumentOK()
	if !ok {
		return nil, fmt.Errorf("$jsonSchema must be an object, got %s", schemaTypeName(elems[0].Value().Type))
	}
	root, err := compileSchema(schema, "")
	if err != nil {
		return nil, err
	}
	title, _ := schema.Lookup("title").StringValueOK()
	return &validator{root: root, title: title}, nil
}

// check validates doc (a whole document as it would be written). It returns
// nil when it passes, or a *schemaViolation.
func (v *validator) check(doc bsoncore.Document) *schemaViolation {
	if v == nil || v.root == nil {
		return nil
	}
	doc = schemaTrim(doc)
	if err := schemaWellFormed(doc, 0); err != nil {
		return &schemaViolation{title: v.title, Reasons: []string{"document is not well-formed BSON: " + err.Error()}}
	}
	failures := v.root.validate(bsoncore.Value{Type: bsoncore.TypeEmbeddedDocument, Data: doc})
	if len(failures) == 0 {
		return nil
	}
	return &schemaViolation{title: v.title, failures: failures, Reasons: schemaReasons(nil, "", failures)}
}

// Error returns "Document failed validation: " and the reasons.
func (e *schemaViolation) Error() string {
	return "Document failed validation: " + strings.Join(e.Reasons, "; ")
}

// details returns a BSON document shaped like MongoDB 5.0+'s errInfo.details
// for error 121: {operatorName: "$jsonSchema", schemaRulesNotSatisfied: [...]}.
func (e *schemaViolation) details() bsoncore.Document {
	d := bson.D{{Key: "operatorName", Value: "$jsonSchema"}}
	if e.title != "" {
		d = append(d, bson.E{Key: "title", Value: e.title})
	}
	d = append(d, bson.E{Key: "schemaRulesNotSatisfied", Value: schemaRenderFailures(e.failures)})
	if b, err := bson.Marshal(d); err == nil {
		return b
	}
	// Unreachable with well-formed values; keep the reply well-formed anyway.
	return bsoncore.NewDocumentBuilder().AppendString("operatorName", "$jsonSchema").
		AppendArray("schemaRulesNotSatisfied", bsoncore.NewArrayBuilder().Build()).Build()
}

// schemaErr returns a compile error about keyword at schema path.
func schemaErr(path, keyword, format string, args ...any) error {
	where := "at the top level"
	if path != "" {
		where = "at " + path
	}
	return fmt.Errorf("$jsonSchema keyword %q %s %s", keyword, where, fmt.Sprintf(format, args...))
}

// schemaJoin joins schema or document path steps with dots.
func schemaJoin(steps ...string) string {
	var b strings.Builder
	for _, s := range steps {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// compileSchema compiles one schema object found at path.
func compileSchema(d bsoncore.Document, path string) (*schemaNode, error) {
	n := &schemaNode{spec: d, minLength: -1, maxLength: -1, minItems: -1, maxItems: -1, minProperties: -1, maxProperties: -1}
	seen := map[string]bsoncore.Value{}
	for _, e := range schemaElements(d) {
		key, v := e.Key(), e.Value()
		if _, dup := seen[key]; dup {
			return nil, schemaErr(path, key, "is given more than once")
		}
		seen[key] = v
		var err error
		switch key {
		case "bsonType", "type":
			n.types, err = compileTypes(path, key, v)
		case "title", "description":
			s, ok := v.StringValueOK()
			if !ok {
				err = schemaErr(path, key, "must be a string")
			}
			if key == "description" {
				n.description = s
			}
		case "minLength":
			n.minLength, err = compileCount(path, key, v)
		case "maxLength":
			n.maxLength, err = compileCount(path, key, v)
		case "minItems":
			n.minItems, err = compileCount(path, key, v)
		case "maxItems":
			n.maxItems, err = compileCount(path, key, v)
		case "minProperties":
			n.minProperties, err = compileCount(path, key, v)
		case "maxProperties":
			n.maxProperties, err = compileCount(path, key, v)
		case "minimum", "maximum":
			num, ok := schemaNumberOf(v, false)
			if !ok {
				err = schemaErr(path, key, "must be a number")
			} else if key == "minimum" {
				n.minimum = &schemaBound{num: num}
			} else {
				n.maximum = &schemaBound{num: num}
			}
		case "exclusiveMinimum", "exclusiveMaximum", "uniqueItems":
			b, ok := v.BooleanOK()
			if !ok {
				err = schemaErr(path, key, "must be a boolean")
			}
			n.uniqueItems = n.uniqueItems || (key == "uniqueItems" && b)
		case "multipleOf":
			num, ok := schemaNumberOf(v, true)
			if !ok || num.nan || num.inf != 0 || num.r.Sign() <= 0 {
				err = schemaErr(path, key, "must be a positive finite number")
			}
			n.multipleOf = num.r
		case "pattern":
			s, ok := v.StringValueOK()
			if !ok {
				err = schemaErr(path, key, "must be a string")
			} else {
				n.pattern, err = compilePattern(path, key, s)
			}
		case "enum":
			err = n.compileEnum(path, v)
		case "required":
			n.required, err = compileNames(path, key, v)
		case "properties", "patternProperties", "dependencies":
			err = n.compileObjectKeyword(path, key, v)
		case "additionalProperties", "additionalItems":
			err = n.compileAdditional(path, key, v)
		case "items":
			err = n.compileItems(path, v)
		case "allOf", "anyOf", "oneOf":
			var list []*schemaNode
			list, err = compileSchemaList(path, key, v)
			switch key {
			case "allOf":
				n.allOf = list
			case "anyOf":
				n.anyOf = list
			default:
				n.oneOf = list
			}
		case "not":
			sub, ok := v.DocumentOK()
			if !ok {
				err = schemaErr(path, key, "must be an object")
			} else {
				n.not, err = compileSchema(sub, schemaJoin(path, key))
			}
		default:
			err = schemaErr(path, key, "is not supported by the embedded server")
		}
		if err != nil {
			return nil, err
		}
	}
	if _, ok := seen["type"]; ok {
		if _, ok := seen["bsonType"]; ok {
			return nil, schemaErr(path, "type", "cannot be given with bsonType")
		}
	}
	for _, p := range [][3]string{{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"}} {
		v, ok := seen[p[0]]
		if !ok {
			continue
		}
		if _, ok := seen[p[1]]; !ok {
			return nil, schemaErr(path, p[0], "requires %s", p[1])
		}
		excl, _ := v.BooleanOK()
		if p[1] == "minimum" {
			n.minimum.exclusive = excl
		} else {
			n.maximum.exclusive = excl
		}
	}
	return n, nil
}

// compileTypes compiles bsonType (BSON aliases and "number") or type
// (JSON Schema names) given as one alias or an array of aliases.
func compileTypes(path, keyword string, v bsoncore.Value) (*schemaTypes, error) {
	t := &schemaTypes{keyword: keyword}
	if s, ok := v.StringValueOK(); ok {
		t.names = []string{s}
	} else if v.Type == bsoncore.TypeArray {
		for _, a := range schemaValues(v.Data) {
			s, ok := a.StringValueOK()
			if !ok {
				return nil, schemaErr(path, keyword, "array elements must be strings")
			}
			if slices.Contains(t.names, s) {
				return nil, schemaErr(path, keyword, "names %q twice", s)
			}
			t.names = append(t.names, s)
		}
	} else {
		return nil, schemaErr(path, keyword, "must be a string or an array of strings")
	}
	if len(t.names) == 0 {
		return nil, schemaErr(path, keyword, "must name at least one type")
	}
	for _, name := range t.names {
		var types []bsoncore.Type
		if keyword == "type" {
			types = schemaJSONTypes(name)
		} else {
			types = schemaBSONTypes(name)
		}
		if types == nil {
			return nil, schemaErr(path, keyword, "has unknown type %q", name)
		}
		t.types = append(t.types, types...)
	}
	return t, nil
}

// compileCount reads a non-negative integral count (minLength and the like).
func compileCount(path, keyword string, v bsoncore.Value) (int64, error) {
	num, ok := schemaNumberOf(v, false)
	if !ok || num.nan || num.inf != 0 || !num.r.IsInt() || num.r.Sign() < 0 || !num.r.Num().IsInt64() {
		return 0, schemaErr(path, keyword, "must be a non-negative integer")
	}
	return num.r.Num().Int64(), nil
}

// compilePattern compiles a regular expression with Go's RE2 syntax.
func compilePattern(path, keyword, src string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, schemaErr(path, keyword, "has a regular expression the embedded server cannot compile (Go RE2 syntax): %v", err)
	}
	return re, nil
}

// compileNames reads a non-empty array of distinct strings (required, property dependencies).
func compileNames(path, keyword string, v bsoncore.Value) ([]string, error) {
	if v.Type != bsoncore.TypeArray {
		return nil, schemaErr(path, keyword, "must be an array of strings")
	}
	var names []string
	for _, a := range schemaValues(v.Data) {
		s, ok := a.StringValueOK()
		if !ok {
			return nil, schemaErr(path, keyword, "must be an array of strings, found %s", schemaTypeName(a.Type))
		}
		if slices.Contains(names, s) {
			return nil, schemaErr(path, keyword, "names %q twice", s)
		}
		names = append(names, s)
	}
	if len(names) == 0 {
		return nil, schemaErr(path, keyword, "cannot be an empty array")
	}
	return names, nil
}

// compileSchemaList compiles allOf/anyOf/oneOf: a non-empty array of schemas.
func compileSchemaList(path, keyword string, v bsoncore.Value) ([]*schemaNode, error) {
	if v.Type != bsoncore.TypeArray {
		return nil, schemaErr(path, keyword, "must be an array of objects")
	}
	var list []*schemaNode
	for i, a := range schemaValues(v.Data) {
		sub, ok := a.DocumentOK()
		if !ok {
			return nil, schemaErr(path, keyword, "must be an array of objects, found %s", schemaTypeName(a.Type))
		}
		n, err := compileSchema(sub, schemaJoin(path, keyword, strconv.Itoa(i)))
		if err != nil {
			return nil, err
		}
		list = append(list, n)
	}
	if len(list) == 0 {
		return nil, schemaErr(path, keyword, "must be a non-empty array")
	}
	return list, nil
}

// compileEnum records the canonical keys of the allowed values.
func (n *schemaNode) compileEnum(path string, v bsoncore.Value) error {
	if v.Type != bsoncore.TypeArray {
		return schemaErr(path, "enum", "must be an array")
	}
	n.enum = map[string]struct{}{}
	for _, a := range schemaValues(v.Data) {
		k := schemaKey(a)
		if _, dup := n.enum[k]; dup {
			return schemaErr(path, "enum", "cannot contain duplicate values")
		}
		n.enum[k] = struct{}{}
	}
	if len(n.enum) == 0 {
		return schemaErr(path, "enum", "cannot be an empty array")
	}
	return nil
}

// compileObjectKeyword compiles properties, patternProperties and
// dependencies, whose values are objects keyed by property name or pattern.
func (n *schemaNode) compileObjectKeyword(path, keyword string, v bsoncore.Value) error {
	d, ok := v.DocumentOK()
	if !ok {
		return schemaErr(path, keyword, "must be an object")
	}
	if keyword == "properties" {
		n.properties = map[string]*schemaNode{}
	}
	for _, e := range schemaElements(d) {
		name, ev := e.Key(), e.Value()
		sub, isDoc := ev.DocumentOK()
		subPath := schemaJoin(path, keyword, name)
		switch {
		case keyword == "dependencies" && ev.Type == bsoncore.TypeArray:
			req, err := compileNames(subPath, keyword, ev)
			if err != nil {
				return err
			}
			n.dependencies = append(n.dependencies, schemaDependency{property: name, requires: req})
			continue
		case !isDoc:
			return schemaErr(path, keyword, "entry %q must be an object", name)
		}
		node, err := compileSchema(sub, subPath)
		if err != nil {
			return err
		}
		switch keyword {
		case "properties":
			n.properties[name] = node
		case "dependencies":
			n.dependencies = append(n.dependencies, schemaDependency{property: name, node: node})
		default:
			re, err := compilePattern(subPath, keyword, name)
			if err != nil {
				return err
			}
			n.patternProperties = append(n.patternProperties, schemaPattern{re: re, node: node})
		}
	}
	return nil
}

// compileAdditional compiles additionalProperties or additionalItems: a
// boolean or a schema.
func (n *schemaNode) compileAdditional(path, keyword string, v bsoncore.Value) error {
	var node *schemaNode
	allowed := true
	if b, ok := v.BooleanOK(); ok {
		allowed = b
	} else if sub, ok := v.DocumentOK(); ok {
		var err error
		if node, err = compileSchema(sub, schemaJoin(path, keyword)); err != nil {
			return err
		}
	} else {
		return schemaErr(path, keyword, "must be an object or a boolean")
	}
	if keyword == "additionalProperties" {
		n.additionalProperties, n.noAdditionalProperties = node, !allowed
	} else {
		n.additionalItems, n.noAdditionalItems = node, !allowed
	}
	return nil
}

// compileItems compiles items: one schema for every element, or an array of
// schemas applying by position (after which additionalItems applies).
func (n *schemaNode) compileItems(path string, v bsoncore.Value) error {
	if sub, ok := v.DocumentOK(); ok {
		var err error
		n.items, err = compileSchema(sub, schemaJoin(path, "items"))
		return err
	}
	if v.Type != bsoncore.TypeArray {
		return schemaErr(path, "items", "must be an object or an array of objects")
	}
	n.tuple = []*schemaNode{} // non-nil: additionalItems applies
	for i, a := range schemaValues(v.Data) {
		sub, ok := a.DocumentOK()
		if !ok {
			return schemaErr(path, "items", "array elements must be objects, found %s", schemaTypeName(a.Type))
		}
		node, err := compileSchema(sub, schemaJoin(path, "items", strconv.Itoa(i)))
		if err != nil {
			return err
		}
		n.tuple = append(n.tuple, node)
	}
	return nil
}

// validate returns the rules v does not satisfy.
func (n *schemaNode) validate(v bsoncore.Value) []schemaFailure {
	var out []schemaFailure
	if t := n.types; t != nil && !slices.Contains(t.types, v.Type) {
		want := t.names[0]
		if len(t.names) > 1 {
			want = "one of [" + strings.Join(t.names, ", ") + "]"
		}
		out = append(out, n.fail(t.keyword, "type did not match", fmt.Sprintf("%s is %s, want %s", t.keyword, schemaTypeName(v.Type), want), v,
			bson.E{Key: "consideredType", Value: schemaTypeName(v.Type)}))
	}
	if n.enum != nil {
		if _, ok := n.enum[schemaKey(v)]; !ok {
			out = append(out, n.fail("enum", "value was not found in enum", fmt.Sprintf("enum does not allow %s", schemaShort(v)), v))
		}
	}
	switch v.Type {
	case bsoncore.TypeString:
		out = n.validateString(v, out)
	case bsoncore.TypeDouble, bsoncore.TypeInt32, bsoncore.TypeInt64, bsoncore.TypeDecimal128:
		out = n.validateNumber(v, out)
	case bsoncore.TypeArray:
		out = n.validateArray(v, out)
	case bsoncore.TypeEmbeddedDocument:
		out = n.validateObject(v, out)
	}
	return n.validateLogic(v, out)
}

// fail builds a failure of keyword with MongoDB's specifiedAs, reason and,
// when small enough, consideredValue fields.
func (n *schemaNode) fail(keyword, reason, text string, considered bsoncore.Value, extra ...bson.E) schemaFailure {
	info := bson.D{{Key: "specifiedAs", Value: n.specified(keyword)}, {Key: "reason", Value: reason}}
	if len(considered.Data) <= schemaMaxConsidered && considered.Type != 0 {
		info = append(info, bson.E{Key: "consideredValue", Value: schemaRaw(considered)})
	}
	return schemaFailure{keyword: keyword, text: text, info: append(info, extra...)}
}

// specified returns {keyword: <value as given>}, adding the exclusive flag
// to minimum and maximum when given.
func (n *schemaNode) specified(keyword string) bson.D {
	d := bson.D{}
	keys := []string{keyword}
	if keyword == "minimum" || keyword == "maximum" {
		keys = append(keys, "exclusive"+strings.ToUpper(keyword[:1])+keyword[1:])
	}
	for _, k := range keys {
		if v, err := n.spec.LookupErr(k); err == nil {
			d = append(d, bson.E{Key: k, Value: schemaRaw(v)})
		}
	}
	return d
}

// validateString applies minLength, maxLength (in code points) and pattern.
func (n *schemaNode) validateString(v bsoncore.Value, out []schemaFailure) []schemaFailure {
	s, _ := v.StringValueOK()
	length := int64(utf8.RuneCountInString(s))
	if n.minLength >= 0 && length < n.minLength {
		out = append(out, n.fail("minLength", "specified string length was not satisfied", fmt.Sprintf("minLength is %d, got length %d", n.minLength, length), v))
	}
	if n.maxLength >= 0 && length > n.maxLength {
		out = append(out, n.fail("maxLength", "specified string length was not satisfied", fmt.Sprintf("maxLength is %d, got length %d", n.maxLength, length), v))
	}
	if n.pattern != nil && !n.pattern.MatchString(s) {
		out = append(out, n.fail("pattern", "regular expression did not match", fmt.Sprintf("pattern %q does not match %s", n.pattern, schemaShort(v)), v))
	}
	return out
}

// validateNumber applies minimum, maximum and multipleOf.
func (n *schemaNode) validateNumber(v bsoncore.Value, out []schemaFailure) []schemaFailure {
	x, ok := schemaNumberOf(v, false)
	if !ok {
		return out
	}
	for _, c := range []struct {
		keyword string
		b       *schemaBound
		side    int
	}{{"minimum", n.minimum, 1}, {"maximum", n.maximum, -1}} {
		if c.b == nil || c.b.allows(x, c.side) {
			continue
		}
		bound := schemaShort(n.spec.Lookup(c.keyword))
		if c.b.exclusive {
			bound += " (exclusive)"
		}
		out = append(out, n.fail(c.keyword, "comparison failed", fmt.Sprintf("%s is %s, got %s", c.keyword, bound, schemaShort(v)), v))
	}
	if n.multipleOf != nil {
		y, _ := schemaNumberOf(v, true)
		if y.nan || y.inf != 0 || !new(big.Rat).Quo(y.r, n.multipleOf).IsInt() {
			out = append(out, n.fail("multipleOf", "considered value is not a multiple of the specified value",
				fmt.Sprintf("multipleOf is %s, got %s", schemaShort(n.spec.Lookup("multipleOf")), schemaShort(v)), v))
		}
	}
	return out
}

// allows reports whether x is on the allowed side of the bound: side +1 for
// a minimum, -1 for a maximum. NaN only satisfies an inclusive NaN bound,
// as in MongoDB comparisons.
func (b *schemaBound) allows(x schemaNumber, side int) bool {
	c, ok := x.cmp(b.num)
	if !ok {
		return x.nan && b.num.nan && !b.exclusive
	}
	return c == side || (c == 0 && !b.exclusive)
}

// validateArray applies minItems, maxItems, items, additionalItems and
// uniqueItems. Like MongoDB, items reports the first failing element only.
func (n *schemaNode) validateArray(v bsoncore.Value, out []schemaFailure) []schemaFailure {
	vals := schemaValues(v.Data)
	count := int64(len(vals))
	if n.minItems >= 0 && count < n.minItems {
		out = append(out, n.fail("minItems", "array did not match specified length", fmt.Sprintf("minItems is %d, got %d items", n.minItems, count), v))
	}
	if n.maxItems >= 0 && count > n.maxItems {
		out = append(out, n.fail("maxItems", "array did not match specified length", fmt.Sprintf("maxItems is %d, got %d items", n.maxItems, count), v))
	}
	itemFailure := func(keyword string, i int, f []schemaFailure) schemaFailure {
		return schemaFailure{keyword: keyword, info: bson.D{{Key: "reason", Value: "At least one item did not match the sub-schema"}},
			groups: []schemaFailureGroup{{step: "items." + strconv.Itoa(i), label: bson.D{{Key: "itemIndex", Value: int32(i)}}, failures: f}}}
	}
	for i, item := range vals {
		sub := n.items // nil when items is an array of schemas
		if i < len(n.tuple) {
			sub = n.tuple[i]
		}
		if sub == nil {
			continue
		}
		if f := sub.validate(item); len(f) > 0 {
			out = append(out, itemFailure("items", i, f))
			break
		}
	}
	if n.tuple != nil && len(vals) > len(n.tuple) {
		if n.noAdditionalItems {
			out = append(out, n.fail("additionalItems", "found additional items",
				fmt.Sprintf("additionalItems: at most %d items allowed, got %d", len(n.tuple), len(vals)), v))
		} else if n.additionalItems != nil {
			for i := len(n.tuple); i < len(vals); i++ {
				if f := n.additionalItems.validate(vals[i]); len(f) > 0 {
					out = append(out, itemFailure("additionalItems", i, f))
					break
				}
			}
		}
	}
	if n.uniqueItems {
		seen := make(map[string]int, len(vals))
		for i, item := range vals {
			k := schemaKey(item)
			if j, dup := seen[k]; dup {
				out = append(out, n.fail("uniqueItems", "found a duplicate item", fmt.Sprintf("uniqueItems: items %d and %d are equal", j, i), v,
					bson.E{Key: "duplicatedValue", Value: schemaRaw(item)}))
				break
			}
			seen[k] = i
		}
	}
	return out
}

// validateObject applies the object keywords.
func (n *schemaNode) validateObject(v bsoncore.Value, out []schemaFailure) []schemaFailure {
	elems := schemaElements(v.Data)
	keys := make(map[string]struct{}, len(elems))
	for _, e := range elems {
		keys[e.Key()] = struct{}{}
	}
	if missing := schemaMissing(keys, n.required); len(missing) > 0 {
		out = append(out, schemaFailure{keyword: "required", text: "required: missing " + schemaQuote(missing),
			info: bson.D{{Key: "specifiedAs", Value: n.specified("required")}, {Key: "missingProperties", Value: missing}}})
	}
	count := int64(len(elems))
	if (n.minProperties >= 0 && count < n.minProperties) || (n.maxProperties >= 0 && count > n.maxProperties) {
		keyword, limit := "minProperties", n.minProperties
		if n.maxProperties >= 0 && count > n.maxProperties {
			keyword, limit = "maxProperties", n.maxProperties
		}
		f := n.fail(keyword, "specified number of properties was not satisfied", fmt.Sprintf("%s is %d, got %d properties", keyword, limit, count), bsoncore.Value{})
		f.info = append(f.info, bson.E{Key: "numberOfProperties", Value: count})
		out = append(out, f)
	}
	var props, patterns, additional []schemaFailureGroup
	var extra []string
	for _, e := range elems {
		key, val := e.Key(), e.Value()
		step := "properties." + key
		sub, named := n.properties[key]
		if named {
			if f := sub.validate(val); len(f) > 0 {
				label := bson.D{{Key: "propertyName", Value: key}}
				if sub.description != "" {
					label = append(label, bson.E{Key: "description", Value: sub.description})
				}
				props = append(props, schemaFailureGroup{step: step, label: label, failures: f})
			}
		}
		matched := false
		for _, p := range n.patternProperties {
			if !p.re.MatchString(key) {
				continue
			}
			matched = true
			if f := p.node.validate(val); len(f) > 0 {
				patterns = append(patterns, schemaFailureGroup{step: step, failures: f,
					label: bson.D{{Key: "propertyName", Value: key}, {Key: "regexMatched", Value: p.re.String()}}})
			}
		}
		switch {
		case named || matched:
		case n.noAdditionalProperties:
			extra = append(extra, key)
		case n.additionalProperties != nil:
			if f := n.additionalProperties.validate(val); len(f) > 0 {
				additional = append(additional, schemaFailureGroup{step: step, label: bson.D{{Key: "propertyName", Value: key}}, failures: f})
			}
		}
	}
	if len(props) > 0 {
		out = append(out, schemaFailure{keyword: "properties", groupsKey: "propertiesNotSatisfied", groups: props})
	}
	if len(patterns) > 0 {
		out = append(out, schemaFailure{keyword: "patternProperties", groupsKey: "details", groups: patterns})
	}
	if len(extra) > 0 {
		out = append(out, schemaFailure{keyword: "additionalProperties", text: "additionalProperties: " + schemaQuote(extra) + " not allowed",
			info: bson.D{{Key: "specifiedAs", Value: n.specified("additionalProperties")}, {Key: "additionalProperties", Value: extra}}})
	}
	if len(additional) > 0 {
		out = append(out, schemaFailure{keyword: "additionalProperties", groupsKey: "details", groups: additional,
			info: bson.D{{Key: "reason", Value: "at least one additional property did not match the subschema"}}})
	}
	var deps []schemaFailureGroup
	var texts []string
	for _, d := range n.dependencies {
		if _, ok := keys[d.property]; !ok {
			continue
		}
		label := bson.D{{Key: "conditionalProperty", Value: d.property}}
		if d.node != nil {
			if f := d.node.validate(v); len(f) > 0 {
				deps = append(deps, schemaFailureGroup{step: "dependencies." + d.property, label: label, failures: f})
			}
		} else if missing := schemaMissing(keys, d.requires); len(missing) > 0 {
			deps = append(deps, schemaFailureGroup{label: append(label, bson.E{Key: "missingProperties", Value: missing})})
			texts = append(texts, fmt.Sprintf("%q requires %s", d.property, schemaQuote(missing)))
		}
	}
	if len(deps) > 0 {
		text := ""
		if len(texts) > 0 {
			text = "dependencies: " + strings.Join(texts, ", ")
		}
		out = append(out, schemaFailure{keyword: "dependencies", text: text, groupsKey: "failingDependencies", groups: deps})
	}
	return out
}

// validateLogic applies allOf, anyOf, oneOf and not.
func (n *schemaNode) validateLogic(v bsoncore.Value, out []schemaFailure) []schemaFailure {
	for _, c := range []struct {
		keyword string
		list    []*schemaNode
	}{{"allOf", n.allOf}, {"anyOf", n.anyOf}, {"oneOf", n.oneOf}} {
		if len(c.list) == 0 {
			continue
		}
		var groups []schemaFailureGroup
		var matching []int32
		for i, sub := range c.list {
			if f := sub.validate(v); len(f) > 0 {
				groups = append(groups, schemaFailureGroup{step: c.keyword + "." + strconv.Itoa(i), label: bson.D{{Key: "index", Value: int32(i)}}, failures: f})
			} else {
				matching = append(matching, int32(i))
			}
		}
		switch {
		case c.keyword == "allOf" && len(groups) > 0:
			out = append(out, schemaFailure{keyword: c.keyword, groupsKey: "schemasNotSatisfied", groups: groups})
		case c.keyword != "allOf" && len(matching) == 0:
			out = append(out, schemaFailure{keyword: c.keyword, groupsKey: "schemasNotSatisfied", groups: groups,
				text: fmt.Sprintf("%s: matched none of %d schemas", c.keyword, len(c.list))})
		case c.keyword == "oneOf" && len(matching) > 1:
			out = append(out, schemaFailure{keyword: c.keyword, text: fmt.Sprintf("oneOf: matched schemas %v, want exactly one", matching),
				info: bson.D{{Key: "reason", Value: "more than one subschema matched"}, {Key: "matchingSchemaIndexes", Value: matching}}})
		}
	}
	if n.not != nil && len(n.not.validate(v)) == 0 {
		out = append(out, schemaFailure{keyword: "not", text: "not: matched the schema",
			info: bson.D{{Key: "reason", Value: "child expression matched"}}})
	}
	return out
}

// schemaReasons flattens failures into "path: text" lines.
func schemaReasons(out []string, path string, failures []schemaFailure) []string {
	for _, f := range failures {
		if f.text != "" {
			if path == "" {
				out = append(out, f.text)
			} else {
				out = append(out, path+": "+f.text)
			}
		}
		for _, g := range f.groups {
			out = schemaReasons(out, schemaJoin(path, g.step), g.failures)
		}
	}
	return out
}

// schemaRenderFailures renders failures as MongoDB-shaped detail documents.
func schemaRenderFailures(failures []schemaFailure) bson.A {
	a := bson.A{}
	for _, f := range failures {
		d := append(bson.D{{Key: "operatorName", Value: f.keyword}}, f.info...)
		if f.groupsKey == "" {
			for _, g := range f.groups { // at most one, inlined
				d = append(d, g.label...)
				d = append(d, bson.E{Key: "details", Value: schemaRenderFailures(g.failures)})
			}
		} else if len(f.groups) > 0 {
			groups := bson.A{}
			for _, g := range f.groups {
				gd := append(bson.D{}, g.label...)
				if len(g.failures) > 0 {
					gd = append(gd, bson.E{Key: "details", Value: schemaRenderFailures(g.failures)})
				}
				groups = append(groups, gd)
			}
			d = append(d, bson.E{Key: f.groupsKey, Value: groups})
		}
		a = append(a, d)
	}
	return a
}

// schemaMissing returns the names absent from keys.
func schemaMissing(keys map[string]struct{}, names []string) []string {
	var missing []string
	for _, name := range names {
		if _, ok := keys[name]; !ok {
			missing = append(missing, name)
		}
	}
	return missing
}

// schemaQuote renders names as a comma-separated list of quoted strings.
func schemaQuote(names []string) string {
	q := make([]string, len(names))
	for i, name := range names {
		q[i] = strconv.Quote(name)
	}
	return strings.Join(q, ", ")
}

// schemaShort renders a value for messages: numbers and strings plainly,
// other values as extended JSON, truncated.
func schemaShort(v bsoncore.Value) string {
	if i, ok := v.Int32OK(); ok {
		return strconv.Itoa(int(i))
	}
	if i, ok := v.Int64OK(); ok {
		return strconv.FormatInt(i, 10)
	}
	if f, ok := v.DoubleOK(); ok {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	if h, l, ok := v.Decimal128OK(); ok {
		return bson.NewDecimal128(h, l).String()
	}
	s, truncated := v.StringN(80)
	if str, ok := v.StringValueOK(); ok {
		s, truncated = strconv.Quote(str), len(str) > 80
		if truncated {
			s = strconv.Quote(strings.ToValidUTF8(str[:80], "")) // cut at a byte, drop a split rune
		}
	}
	if truncated {
		s += "…"
	}
	return s
}

// schemaRaw converts a bsoncore value for use in a bson.D.
func schemaRaw(v bsoncore.Value) bson.RawValue {
	return bson.RawValue{Type: bson.Type(v.Type), Value: v.Data}
}

// schemaTrim drops bytes after a document's declared length.
func schemaTrim(doc []byte) []byte {
	if length, _, ok := bsoncore.ReadLength(doc); ok && length >= 0 && int(length) < len(doc) {
		return doc[:length]
	}
	return doc
}

// schemaWellFormed checks that d is a BSON document whose nested documents
// and arrays are well-formed too, nested at most schemaMaxDepth deep; after
// it passes, walking d cannot fail.
func schemaWellFormed(d []byte, depth int) error {
	if depth > schemaMaxDepth {
		return fmt.Errorf("nested more than %d levels deep", schemaMaxDepth)
	}
	if err := bsoncore.Document(d).Validate(); err != nil {
		return err
	}
	elems, err := bsoncore.Document(d).Elements()
	if err != nil {
		return err
	}
	for _, e := range elems {
		if v := e.Value(); v.Type == bsoncore.TypeEmbeddedDocument || v.Type == bsoncore.TypeArray {
			if err := schemaWellFormed(v.Data, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// schemaElements returns the elements of a document checked by schemaWellFormed.
func schemaElements(d []byte) []bsoncore.Element {
	elems, _ := bsoncore.Document(d).Elements()
	return elems
}

// schemaValues returns the values of an array (or document) checked by schemaWellFormed.
func schemaValues(d []byte) []bsoncore.Value {
	vals, _ := bsoncore.Array(d).Values()
	return vals
}

// schemaNumberOf converts a numeric BSON value. With round15, doubles are
// first rounded to 15 significant digits, as MongoDB does when it converts
// them to Decimal128 for multipleOf.
func schemaNumberOf(v bsoncore.Value, round15 bool) (schemaNumber, bool) {
	switch v.Type {
	case bsoncore.TypeInt32:
		i, ok := v.Int32OK()
		return schemaNumber{r: new(big.Rat).SetInt64(int64(i))}, ok
	case bsoncore.TypeInt64:
		i, ok := v.Int64OK()
		return schemaNumber{r: new(big.Rat).SetInt64(i)}, ok
	case bsoncore.TypeDouble:
		f, ok := v.DoubleOK()
		switch {
		case !ok:
			return schemaNumber{}, false
		case f != f:
			return schemaNumber{nan: true}, true
		case math.IsInf(f, 0):
			return schemaNumber{inf: int(math.Copysign(1, f))}, true
		case round15:
			r, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', 15, 64))
			return schemaNumber{r: r}, ok
		}
		return schemaNumber{r: new(big.Rat).SetFloat64(f)}, true
	case bsoncore.TypeDecimal128:
		h, l, ok := v.Decimal128OK()
		if !ok {
			return schemaNumber{}, false
		}
		coef, exp, err := bson.NewDecimal128(h, l).BigInt()
		switch {
		case errors.Is(err, bson.ErrParseNaN):
			return schemaNumber{nan: true}, true
		case errors.Is(err, bson.ErrParseInf):
			return schemaNumber{inf: 1}, true
		case errors.Is(err, bson.ErrParseNegInf):
			return schemaNumber{inf: -1}, true
		case err != nil:
			return schemaNumber{}, false
		}
		r := new(big.Rat).SetInt(coef)
		scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(exp, -exp))), nil))
		if exp >= 0 {
			return schemaNumber{r: r.Mul(r, scale)}, true
		}
		return schemaNumber{r: r.Quo(r, scale)}, true
	}
	return schemaNumber{}, false
}

// cmp compares two numbers; ok is false when either is NaN.
func (a schemaNumber) cmp(b schemaNumber) (c int, ok bool) {
	switch {
	case a.nan || b.nan:
		return 0, false
	case a.inf != 0 || b.inf != 0:
		return max(-1, min(1, a.inf-b.inf)), true
	}
	return a.r.Cmp(b.r), true
}

// schemaKey returns a canonical encoding of v such that two values have the
// same key exactly when MongoDB's UnorderedFieldsBSONElementComparator finds
// them equal: numbers by value whatever their BSON type, strings and symbols
// by content, documents by their fields regardless of order, arrays
// element-wise, other types by type and bytes.
func schemaKey(v bsoncore.Value) string {
	return string(schemaAppendKey(nil, v))
}

// schemaAppendKey appends v's canonical encoding to b. Every encoding is a
// tag followed by length-prefixed or counted parts, so none is a prefix of
// another and concatenations stay unambiguous.
func schemaAppendKey(b []byte, v bsoncore.Value) []byte {
	lp := func(b []byte, s []byte) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	switch v.Type {
	case bsoncore.TypeDouble, bsoncore.TypeInt32, bsoncore.TypeInt64, bsoncore.TypeDecimal128:
		if num, ok := schemaNumberOf(v, false); ok {
			s := "NaN"
			switch {
			case num.inf != 0:
				s = strconv.Itoa(num.inf) + "Inf"
			case !num.nan:
				s = num.r.RatString()
			}
			return lp(append(b, 'n'), []byte(s))
		}
	case bsoncore.TypeString, bsoncore.TypeSymbol:
		s, ok := v.StringValueOK()
		if !ok {
			s, ok = v.SymbolOK()
		}
		if ok {
			return lp(append(b, 's'), []byte(s))
		}
	case bsoncore.TypeEmbeddedDocument:
		elems := schemaElements(v.Data)
		fields := make([][]byte, len(elems))
		for i, e := range elems {
			fields[i] = schemaAppendKey(lp(nil, e.KeyBytes()), e.Value())
		}
		slices.SortFunc(fields, bytes.Compare)
		b = binary.AppendUvarint(append(b, 'o'), uint64(len(fields)))
		for _, f := range fields {
			b = append(b, f...)
		}
		return b
	case bsoncore.TypeArray:
		vals := schemaValues(v.Data)
		b = binary.AppendUvarint(append(b, 'a'), uint64(len(vals)))
		for _, item := range vals {
			b = schemaAppendKey(b, item)
		}
		return b
	}
	return lp(append(b, byte(v.Type)), v.Data) // BSON type bytes never collide with the tags above
}

// schemaBSONTypes maps a bsonType alias to the BSON types it admits, or nil.
func schemaBSONTypes(alias string) []bsoncore.Type {
	if alias == "number" {
		return []bsoncore.Type{bsoncore.TypeDouble, bsoncore.TypeInt32, bsoncore.TypeInt64, bsoncore.TypeDecimal128}
	}
	for _, a := range schemaAliases() {
		if a.alias == alias {
			return []bsoncore.Type{a.t}
		}
	}
	return nil
}

// schemaJSONTypes maps a JSON Schema type name to the BSON types it admits,
// or nil; like MongoDB, "integer" is not supported.
func schemaJSONTypes(name string) []bsoncore.Type {
	switch name {
	case "object", "array", "string", "null", "number":
		return schemaBSONTypes(name)
	case "boolean":
		return schemaBSONTypes("bool")
	}
	return nil
}

// schemaTypeName returns MongoDB's alias of a BSON type.
func schemaTypeName(t bsoncore.Type) string {
	for _, a := range schemaAliases() {
		if a.t == t {
			return a.alias
		}
	}
	return fmt.Sprintf("type 0x%02x", byte(t))
}

// schemaAlias pairs a BSON type with its MongoDB alias.
type schemaAlias struct {
	t     bsoncore.Type
	alias string
}

// schemaAliases lists the BSON types under the aliases $type and bsonType use.
func schemaAliases() []schemaAlias {
	return []schemaAlias{
		{bsoncore.TypeDouble, "double"}, {bsoncore.TypeString, "string"}, {bsoncore.TypeEmbeddedDocument, "object"},
		{bsoncore.TypeArray, "array"}, {bsoncore.TypeBinary, "binData"}, {bsoncore.TypeUndefined, "undefined"},
		{bsoncore.TypeObjectID, "objectId"}, {bsoncore.TypeBoolean, "bool"}, {bsoncore.TypeDateTime, "date"},
		{bsoncore.TypeNull, "null"}, {bsoncore.TypeRegex, "regex"}, {bsoncore.TypeDBPointer, "dbPointer"},
		{bsoncore.TypeJavaScript, "javascript"}, {bsoncore.TypeSymbol, "symbol"},
		{bsoncore.TypeCodeWithScope, "javascriptWithScope"}, {bsoncore.TypeInt32, "int"},
		{bsoncore.TypeTimestamp, "timestamp"}, {bsoncore.TypeInt64, "long"}, {bsoncore.TypeDecimal128, "decimal"},
		{bsoncore.TypeMinKey, "minKey"}, {bsoncore.TypeMaxKey, "maxKey"},
	}
}
