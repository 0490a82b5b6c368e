package embedded

import (
	"bufio"
	"errors"
	"fmt"
	"net"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// backend is one connection to FerretDB. The front uses one per client
// connection, and one of its own (front.internal) for the commands it
// sends itself: snapshots before a write, undoing a transaction, checking
// that a collection exists.
type backend struct {
	conn net.Conn
	r    *bufio.Reader
}

func newBackend(c net.Conn) *backend { return &backend{conn: c, r: bufio.NewReader(c)} }

// send writes the request m and reads its reply and any replies that
// follow it while moreToCome is set on them. The caller holds front.cmd
// unless m touches no data (hello).
func (b *backend) send(m []byte) ([][]byte, error) {
	if _, err := b.conn.Write(m); err != nil {
		return nil, err
	}
	var replies [][]byte
	for {
		rep, err := readMessage(b.r)
		if err != nil {
			return nil, err
		}
		replies = append(replies, rep)
		if !isMsg(rep) || msgFlags(rep)&flagMoreToCome == 0 {
			return replies, nil
		}
	}
}

// run sends the command doc and returns its reply document.
func (b *backend) run(doc bsoncore.Document) (bsoncore.Document, error) {
	replies, err := b.send(encodeRequest(doc, requestIDs.Add(1)))
	if err != nil {
		return nil, err
	}
	return replyBody(replies[0])
}

// runOK runs doc and turns a reply that is not ok into an error.
func (b *backend) runOK(doc bsoncore.Document) (bsoncore.Document, error) {
	rep, err := b.run(doc)
	if err != nil {
		return nil, err
	}
	if !replyOK(rep) || hasWriteErrors(rep) {
		return nil, fmt.Errorf("embedded: backend refused %s: %s", bsoncore.Document(doc).Index(0).Key(), rep)
	}
	return rep, nil
}

// findBatch is the batch size of the front's own finds. FerretDB sizes
// its buffers by it, so it stays modest.
const findBatch = 1000

// find returns every document of db.coll that matches filter, in the order
// of sort (nil for natural order), at most limit of them (0: all).
func (b *backend) find(db, coll string, filter bsoncore.Document, sort bsoncore.Value, limit int64) ([]bsoncore.Document, error) {
	if filter == nil {
		filter = docOf(bson.D{})
	}
	q := bson.D{{Key: "find", Value: coll}, {Key: "filter", Value: bson.Raw(filter)}}
	if sort.Type == bsoncore.TypeEmbeddedDocument {
		q = append(q, bson.E{Key: "sort", Value: bson.Raw(sort.Document())})
	}
	if limit > 0 {
		q = append(q, bson.E{Key: "limit", Value: limit})
	}
	q = append(q, bson.E{Key: "batchSize", Value: int32(findBatch)}, bson.E{Key: "$db", Value: db})
	rep, err := b.runOK(docOf(q))
	if err != nil {
		return nil, err
	}
	var docs []bsoncore.Document
	batch := "firstBatch"
	for {
		cur, ok := rep.Lookup("cursor").DocumentOK()
		if !ok {
			return nil, errors.New("embedded: find reply without a cursor")
		}
		arr, _ := cur.Lookup(batch).ArrayOK()
		vals, _ := arr.Values()
		for _, v := range vals {
			if d, ok := v.DocumentOK(); ok {
				docs = append(docs, d)
			}
		}
		id, _ := cur.Lookup("id").AsInt64OK()
		if id == 0 {
			return docs, nil
		}
		batch = "nextBatch"
		rep, err = b.runOK(docOf(bson.D{{Key: "getMore", Value: id}, {Key: "collection", Value: coll},
			{Key: "batchSize", Value: int32(findBatch)}, {Key: "$db", Value: db}}))
		if err != nil {
			return nil, err
		}
	}
}

// idsFilter returns {_id: {$in: ids}}, or {_id: id} for one id, which
// FerretDB looks up without scanning the collection.
func idsFilter(ids []bsoncore.Value) bsoncore.Document {
	if len(ids) == 1 {
		return bsoncore.NewDocumentBuilder().AppendValue("_id", ids[0]).Build()
	}
	aidx, arr := bsoncore.AppendArrayStart(nil)
	for i, id := range ids {
		arr = bsoncore.AppendValueElement(arr, fmt.Sprint(i), id)
	}
	arr, _ = bsoncore.AppendArrayEnd(arr, aidx)
	in := bsoncore.NewDocumentBuilder().AppendArray("$in", arr).Build()
	return bsoncore.NewDocumentBuilder().AppendDocument("_id", in).Build()
}

// restore puts the documents of db.coll with the given ids back as they
// were: pre maps an id's key to its former document, nil where it did not
// exist. Every one is deleted first and the former ones inserted again, so
// that unique indexes hold at every step.
func (b *backend) restore(db, coll string, ids []bsoncore.Value, pre map[string]bsoncore.Document) error {
	for start := 0; start < len(ids); start += maxWriteBatch {
		chunk := ids[start:min(start+maxWriteBatch, len(ids))]
		del := bson.D{{Key: "delete", Value: coll}, {Key: "deletes", Value: bson.A{
			bson.D{{Key: "q", Value: bson.Raw(idsFilter(chunk))}, {Key: "limit", Value: 0}},
		}}, {Key: "$db", Value: db}}
		if _, err := b.runOK(docOf(del)); err != nil {
			return err
		}
		var docs bson.A
		for _, id := range chunk {
			if d := pre[idKey(id)]; d != nil {
				docs = append(docs, bson.Raw(d))
			}
		}
		if len(docs) == 0 {
			continue
		}
		ins := bson.D{{Key: "insert", Value: coll}, {Key: "documents", Value: docs}, {Key: "$db", Value: db}}
		if _, err := b.runOK(docOf(ins)); err != nil {
			return err
		}
	}
	return nil
}

// idKey is the map key of an _id value: its type and bytes.
func idKey(v bsoncore.Value) string { return string(append([]byte{byte(v.Type)}, v.Data...)) }
