package embedded

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// maxWriteBatch is the largest maxWriteBatchSize the front lets through in
// a hello reply, so that drivers split a bulk write into commands of at
// most this many statements.
//
// FerretDB v1.24.2 reports 100,000, but its update command keeps each
// statement's SQLite query open until the whole command returns (a defer
// inside the loop over the statements, in updateDocument), and each open
// query holds one of the 100 connections of its SQLite pool. One update
// command with about 100 statements or more, such as a BulkWrite of 100
// UpdateOne models, then waits forever for a connection. 50 leaves the
// pool room to spare: the update of each statement needs a connection of
// its own too.
const maxWriteBatch = 50

// Wire protocol facts the hello rewrite relies on.
const (
	opCodeReply = 1    // OP_REPLY, the answer to an OP_QUERY
	opCodeQuery = 2004 // OP_QUERY, still used by drivers for their first hello

	// replyDocsOffset is where the documents of an OP_REPLY start: after
	// the header, responseFlags, cursorID, startingFrom and numberReturned.
	replyDocsOffset = headerLen + 4 + 8 + 4 + 4

	// flagExhaustAllowed is the last OP_MSG flag defined; any other bit set
	// means a message the front does not understand.
	flagExhaustAllowed = 1 << 16
)

// isHello reports whether the request m is a hello command (or its legacy
// names isMaster and ismaster): an OP_MSG whose body document's first key
// is one of them, or an OP_QUERY whose query document's first key is.
func isHello(m []byte) bool {
	var doc bsoncore.Document
	switch opCode(m) {
	case opCodeMsg:
		doc, _ = msgBody(m)
	case opCodeQuery:
		doc = queryDocument(m)
	}
	if doc == nil {
		return false
	}
	elem, err := doc.IndexErr(0)
	if err != nil {
		return false
	}
	key, err := elem.KeyErr()
	if err != nil {
		return false
	}
	switch key {
	case "hello", "isMaster", "ismaster":
		return true
	}
	return false
}

// capHelloReply returns the reply m to a hello request with its
// maxWriteBatchSize lowered to maxWriteBatch, and with its length and, for
// an OP_MSG that carries one, its checksum updated. It returns m itself
// when it needs no change or cannot be parsed: a reply the front does not
// understand goes to the client as FerretDB sent it.
func capHelloReply(m []byte) []byte { return rewriteHelloReply(m, capDocument) }

// helloReply returns the reply m to a hello request as the front answers
// it: capped (see capHelloReply) and, in the replica-set mode, saying that
// this server is the primary of a one-member replica set.
func (f *front) helloReply(m []byte) []byte {
	if f.cfg.replSet == "" {
		return capHelloReply(m)
	}
	return rewriteHelloReply(m, f.replSetHello)
}

// rewriteHelloReply returns m with its document rewritten by edit, which
// reports false when the document needs no change.
func rewriteHelloReply(m []byte, edit func(bsoncore.Document) (bsoncore.Document, bool)) []byte {
	switch opCode(m) {
	case opCodeMsg:
		return capMsgReply(m, edit)
	case opCodeReply:
		return capReplyReply(m, edit)
	}
	return m
}

// capReplyReply caps the single document of an OP_REPLY.
func capReplyReply(m []byte, edit func(bsoncore.Document) (bsoncore.Document, bool)) []byte {
	if len(m) < replyDocsOffset || binary.LittleEndian.Uint32(m[replyDocsOffset-4:]) != 1 {
		return m
	}
	doc, rem, ok := bsoncore.ReadDocument(m[replyDocsOffset:])
	if !ok || len(rem) != 0 {
		return m
	}
	capped, ok := edit(doc)
	if !ok {
		return m
	}
	out := append(bytes.Clone(m[:replyDocsOffset]), capped...)
	return setLength(out)
}

// capMsgReply caps the body section of an OP_MSG and copies its other
// sections unchanged.
func capMsgReply(m []byte, edit func(bsoncore.Document) (bsoncore.Document, bool)) []byte {
	body, at := msgBody(m)
	if body == nil {
		return m
	}
	capped, ok := edit(body)
	if !ok {
		return m
	}
	flags := msgFlags(m)
	end := len(m)
	if flags&flagChecksumPresent != 0 {
		end -= 4
	}
	out := make([]byte, 0, len(m)+8)
	out = append(out, m[:at]...)
	out = append(out, capped...)
	out = append(out, m[at+len(body):end]...)
	if flags&flagChecksumPresent != 0 {
		out = append(out, 0, 0, 0, 0) // room for the checksum, computed once the length is right
	}
	out = setLength(out)
	if flags&flagChecksumPresent != 0 {
		binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.Checksum(out[:len(out)-4], castagnoli))
	}
	return out
}

// capDocument returns doc with its maxWriteBatchSize set to maxWriteBatch
// when it is a number above maxWriteBatch or below 1, keeping the field's
// place. It reports false, and returns nothing, when doc needs no change or
// is not valid BSON.
func capDocument(doc bsoncore.Document) (bsoncore.Document, bool) {
	if doc.Validate() != nil {
		return nil, false
	}
	elems, err := doc.Elements()
	if err != nil {
		return nil, false
	}
	at := -1
	for i, e := range elems {
		if e.Key() == "maxWriteBatchSize" {
			at = i
			break
		}
	}
	if at < 0 {
		return nil, false
	}
	n, ok := elems[at].Value().AsInt64OK()
	if !ok || (1 <= n && n <= maxWriteBatch) {
		return nil, false
	}
	idx, out := bsoncore.AppendDocumentStart(make([]byte, 0, len(doc)))
	for i, e := range elems {
		if i == at {
			out = bsoncore.AppendInt32Element(out, "maxWriteBatchSize", maxWriteBatch)
			continue
		}
		out = append(out, e...)
	}
	out, err = bsoncore.AppendDocumentEnd(out, idx)
	if err != nil {
		return nil, false
	}
	return out, true
}

// msgBody returns the body (kind 0) section's document of the OP_MSG m and
// its offset in m, or nil when m has no such section or is malformed.
func msgBody(m []byte) (bsoncore.Document, int) {
	if !isMsg(m) {
		return nil, 0
	}
	flags := msgFlags(m)
	if flags&^(flagChecksumPresent|flagMoreToCome|flagExhaustAllowed) != 0 {
		return nil, 0
	}
	end := len(m)
	if flags&flagChecksumPresent != 0 {
		end -= 4
	}
	for at := headerLen + 4; at < end; {
		kind := m[at]
		at++
		switch kind {
		case 0: // body: one document
			doc, _, ok := bsoncore.ReadDocument(m[at:end])
			if !ok {
				return nil, 0
			}
			return doc, at
		case 1: // document sequence: int32 size (itself included), identifier, documents
			if end-at < 4 {
				return nil, 0
			}
			size := int(int32(binary.LittleEndian.Uint32(m[at:])))
			if size < 4 || size > end-at {
				return nil, 0
			}
			at += size
		default:
			return nil, 0
		}
	}
	return nil, 0
}

// queryDocument returns the query document of the OP_QUERY m, or nil when
// m is malformed.
func queryDocument(m []byte) bsoncore.Document {
	at := headerLen + 4 // flags
	if len(m) < at {
		return nil
	}
	nul := bytes.IndexByte(m[at:], 0) // fullCollectionName
	if nul < 0 {
		return nil
	}
	at += nul + 1 + 4 + 4 // numberToSkip, numberToReturn
	if len(m) < at {
		return nil
	}
	doc, _, ok := bsoncore.ReadDocument(m[at:])
	if !ok {
		return nil
	}
	return doc
}

func opCode(m []byte) int32 {
	if len(m) < headerLen {
		return 0
	}
	return int32(binary.LittleEndian.Uint32(m[12:16]))
}

// setLength writes len(m) into m's messageLength and returns m.
func setLength(m []byte) []byte {
	binary.LittleEndian.PutUint32(m[0:4], uint32(len(m)))
	return m
}
