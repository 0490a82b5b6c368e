package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// command is one OP_MSG request as the front reads it: the body with every
// document sequence folded into it as an array field (an insert's
// "documents", an update's "updates"), which is how FerretDB accepts them
// too.
type command struct {
	requestID int32
	noReply   bool // moreToCome: the client expects no reply
	name      string
	db        string
	doc       bsoncore.Document
	// raw is the request as the client sent it (moreToCome cleared), to
	// forward unchanged; nil once the front has changed doc.
	raw []byte
}

// errNotCommand reports a message the front does not take apart; it is
// forwarded as it is and FerretDB answers it.
var errNotCommand = errors.New("not an OP_MSG command")

// parseCommand reads the OP_MSG m into a command.
func parseCommand(m []byte) (*command, error) {
	if !isMsg(m) {
		return nil, errNotCommand
	}
	flags := msgFlags(m)
	if flags&^(flagChecksumPresent|flagMoreToCome|flagExhaustAllowed) != 0 {
		return nil, errNotCommand
	}
	end := len(m)
	if flags&flagChecksumPresent != 0 {
		end -= 4
	}
	var body bsoncore.Document
	type sequence struct {
		id   string
		docs []bsoncore.Document
	}
	var seqs []sequence
	for at := headerLen + 4; at < end; {
		kind := m[at]
		at++
		switch kind {
		case 0:
			doc, _, ok := bsoncore.ReadDocument(m[at:end])
			if !ok || body != nil {
				return nil, errNotCommand
			}
			body = doc
			at += len(doc)
		case 1:
			if end-at < 4 {
				return nil, errNotCommand
			}
			size := int(int32(binary.LittleEndian.Uint32(m[at:])))
			if size < 4 || size > end-at {
				return nil, errNotCommand
			}
			sec := m[at+4 : at+size]
			at += size
			nul := bytes.IndexByte(sec, 0)
			if nul < 0 {
				return nil, errNotCommand
			}
			id, rest := string(sec[:nul]), sec[nul+1:]
			s := sequence{id: id}
			for len(rest) > 0 {
				doc, r, ok := bsoncore.ReadDocument(rest)
				if !ok {
					return nil, errNotCommand
				}
				s.docs = append(s.docs, doc)
				rest = r
			}
			seqs = append(seqs, s)
		default:
			return nil, errNotCommand
		}
	}
	if body == nil || body.Validate() != nil {
		return nil, errNotCommand
	}
	first, err := body.IndexErr(0)
	if err != nil {
		return nil, errNotCommand
	}
	c := &command{
		requestID: int32(binary.LittleEndian.Uint32(m[4:8])),
		noReply:   flags&flagMoreToCome != 0,
		name:      first.Key(),
		doc:       body,
		raw:       m,
	}
	c.db, _ = body.Lookup("$db").StringValueOK()
	if len(seqs) > 0 {
		elems, _ := body.Elements()
		idx, out := bsoncore.AppendDocumentStart(nil)
		for _, e := range elems {
			out = append(out, e...)
		}
		for _, s := range seqs {
			aidx, o := bsoncore.AppendArrayElementStart(out, s.id)
			for i, d := range s.docs {
				o = bsoncore.AppendDocumentElement(o, fmt.Sprint(i), d)
			}
			out, _ = bsoncore.AppendArrayEnd(o, aidx)
		}
		out, _ = bsoncore.AppendDocumentEnd(out, idx)
		c.doc = out
	}
	return c, nil
}

// lookup returns the value of the top-level field key, or a zero Value.
func (c *command) lookup(key string) bsoncore.Value {
	v, err := c.doc.LookupErr(key)
	if err != nil {
		return bsoncore.Value{}
	}
	return v
}

// collection returns the collection the command names as the value of its
// first field, or "" when that is not a string (a database command).
func (c *command) collection() string {
	if c.name == "getMore" {
		s, _ := c.lookup("collection").StringValueOK()
		return s
	}
	s, _ := c.doc.Index(0).Value().StringValueOK()
	return s
}

// truthy reports whether the field key is present and true or a non-zero number.
func (c *command) truthy(key string) bool { return truthy(c.lookup(key)) }

func truthy(v bsoncore.Value) bool {
	switch v.Type {
	case bsoncore.TypeBoolean:
		return v.Boolean()
	case bsoncore.TypeInt32, bsoncore.TypeInt64, bsoncore.TypeDouble:
		n, _ := v.AsFloat64OK()
		return n != 0
	}
	return false
}

// without returns the command's document without the named top-level fields.
func (c *command) without(drop ...string) bsoncore.Document {
	return editDoc(c.doc, drop, nil)
}

// editDoc returns doc without the fields in drop and with each field of set
// replacing the field of the same name, or appended when doc lacks it.
func editDoc(doc bsoncore.Document, drop []string, set bson.D) bsoncore.Document {
	elems, _ := doc.Elements()
	idx, out := bsoncore.AppendDocumentStart(make([]byte, 0, len(doc)+64))
	done := map[string]bool{}
next:
	for _, e := range elems {
		k := e.Key()
		for _, d := range drop {
			if k == d {
				continue next
			}
		}
		for _, s := range set {
			if s.Key == k {
				out = appendValue(out, k, s.Value)
				done[k] = true
				continue next
			}
		}
		out = append(out, e...)
	}
	for _, s := range set {
		if !done[s.Key] {
			out = appendValue(out, s.Key, s.Value)
		}
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}

// appendValue appends key: v, marshalling v as the bson package does.
func appendValue(dst []byte, key string, v any) []byte {
	if rv, ok := v.(bsoncore.Value); ok {
		return bsoncore.AppendValueElement(dst, key, rv)
	}
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		return bsoncore.AppendNullElement(dst, key)
	}
	return bsoncore.AppendValueElement(dst, key, bsoncore.Value{Type: bsoncore.Type(t), Data: data})
}

// rawValue converts v for use inside a bson.D.
func rawValue(v bsoncore.Value) bson.RawValue {
	return bson.RawValue{Type: bson.Type(v.Type), Value: v.Data}
}

// docOf marshals d, which the front builds itself and so always marshals.
func docOf(d bson.D) bsoncore.Document {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("embedded: marshal %v: %v", d, err)) // a bug in the front, not bad input
	}
	return b
}

// requestIDs numbers the messages the front sends itself.
var requestIDs atomic.Int32

// encodeMsg returns an OP_MSG with doc as its body, answering responseTo.
func encodeMsg(doc bsoncore.Document, responseTo int32) []byte {
	m := make([]byte, 0, headerLen+5+len(doc))
	m = binary.LittleEndian.AppendUint32(m, 0)
	m = binary.LittleEndian.AppendUint32(m, uint32(requestIDs.Add(1)))
	m = binary.LittleEndian.AppendUint32(m, uint32(responseTo))
	m = binary.LittleEndian.AppendUint32(m, opCodeMsg)
	m = binary.LittleEndian.AppendUint32(m, 0)
	m = append(m, 0)
	m = append(m, doc...)
	return setLength(m)
}

// encodeRequest returns an OP_MSG request with doc as its body and the
// given request id.
func encodeRequest(doc bsoncore.Document, requestID int32) []byte {
	m := encodeMsg(doc, 0)
	binary.LittleEndian.PutUint32(m[4:8], uint32(requestID))
	return m
}

// replyBody returns the body document of the reply m, or an error.
func replyBody(m []byte) (bsoncore.Document, error) {
	switch opCode(m) {
	case opCodeMsg:
		if doc, _ := msgBody(m); doc != nil {
			return doc, nil
		}
	case opCodeReply:
		if len(m) >= replyDocsOffset {
			if doc, _, ok := bsoncore.ReadDocument(m[replyDocsOffset:]); ok {
				return doc, nil
			}
		}
	}
	return nil, errors.New("embedded: malformed reply from the backend")
}

// Server error codes the front answers with, as MongoDB's
// src/mongo/base/error_codes.yml numbers them.
const (
	codeBadValue                           = 2
	codeFailedToParse                      = 9
	codeAlreadyInitialized                 = 23
	codeNamespaceNotFound                  = 26
	codeCommandNotFound                    = 59
	codeWriteConflict                      = 112
	codeConflictingOperationInProgress     = 117
	codeDocumentValidationFailure          = 121
	codeQueryFeatureNotAllowed             = 224
	codeTransactionTooOld                  = 225
	codeNotImplemented                     = 238
	codeNoSuchTransaction                  = 251
	codeTransactionCommitted               = 256
	codeOperationNotSupportedInTransaction = 263
	codeTransactionExceededLifetimeLimit   = 290
)

// Error labels, as the transactions specification names them.
const (
	labelTransient     = "TransientTransactionError"
	labelUnknownCommit = "UnknownTransactionCommitResult"
)

// cmdError is a command error reply the front makes itself.
type cmdError struct {
	code   int32
	msg    string
	labels []string
	extra  bson.D // further fields, such as errInfo
}

func (e *cmdError) Error() string { return fmt.Sprintf("%s (%d)", e.msg, e.code) }

func errorf(code int32, format string, args ...any) *cmdError {
	return &cmdError{code: code, msg: fmt.Sprintf(format, args...)}
}

// doc returns the reply document of e.
func (e *cmdError) doc() bsoncore.Document {
	d := bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: e.msg}, {Key: "code", Value: e.code}}
	if name, ok := codeNames[e.code]; ok {
		d = append(d, bson.E{Key: "codeName", Value: name})
	}
	if len(e.labels) > 0 {
		d = append(d, bson.E{Key: "errorLabels", Value: e.labels})
	}
	return docOf(append(d, e.extra...))
}

// okDoc is the reply {ok: 1} with the given fields before ok.
func okDoc(fields ...bson.E) bsoncore.Document {
	return docOf(append(bson.D(fields), bson.E{Key: "ok", Value: 1.0}))
}

// replyOK reports whether the reply document says ok: 1.
func replyOK(doc bsoncore.Document) bool { return truthy(doc.Lookup("ok")) }

// hasWriteErrors reports whether a write's reply carries writeErrors or a
// writeConcernError.
func hasWriteErrors(doc bsoncore.Document) bool {
	if arr, ok := doc.Lookup("writeErrors").ArrayOK(); ok {
		if vals, _ := arr.Values(); len(vals) > 0 {
			return true
		}
	}
	_, err := doc.LookupErr("writeConcernError")
	return err == nil
}
