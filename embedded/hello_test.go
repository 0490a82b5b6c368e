package embedded

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// helloReply is a hello reply the way FerretDB v1.24.2 writes it.
func helloReply(batch any) bson.D {
	return bson.D{
		{Key: "isWritablePrimary", Value: true},
		{Key: "maxBsonObjectSize", Value: int32(16777216)},
		{Key: "maxMessageSizeBytes", Value: int32(48000000)},
		{Key: "maxWriteBatchSize", Value: batch},
		{Key: "maxWireVersion", Value: int32(21)},
		{Key: "ok", Value: 1.0},
	}
}

// cappedReply is helloReply(100000) with its batch size capped.
func cappedReply() bson.D { return helloReply(int32(maxWriteBatch)) }

func marshal(t *testing.T, d bson.D) []byte {
	t.Helper()
	b, err := bson.Marshal(d)
	require.NoError(t, err)
	return b
}

// opMsgSections encodes an OP_MSG from raw sections (kind byte included),
// with a valid checksum when flags say so.
func opMsgSections(requestID, responseTo int32, flags uint32, sections ...[]byte) []byte {
	m := header(0, requestID, responseTo, opCodeMsg)
	m = appendUint32(m, flags)
	for _, s := range sections {
		m = append(m, s...)
	}
	if flags&flagChecksumPresent != 0 {
		m = appendUint32(m, 0)
	}
	binary.LittleEndian.PutUint32(m, uint32(len(m)))
	if flags&flagChecksumPresent != 0 {
		binary.LittleEndian.PutUint32(m[len(m)-4:], crc32.Checksum(m[:len(m)-4], castagnoli))
	}
	return m
}

func bodySection(doc []byte) []byte { return append([]byte{0}, doc...) }

// seqSection encodes a kind 1 section.
func seqSection(id string, docs ...[]byte) []byte {
	size := 4 + len(id) + 1
	for _, d := range docs {
		size += len(d)
	}
	s := appendUint32([]byte{1}, uint32(size))
	s = append(s, id...)
	s = append(s, 0)
	for _, d := range docs {
		s = append(s, d...)
	}
	return s
}

// opQuery encodes an OP_QUERY.
func opQuery(requestID int32, coll string, query []byte) []byte {
	m := header(0, requestID, 0, opCodeQuery)
	m = appendUint32(m, 0) // flags
	m = append(m, coll...)
	m = append(m, 0)
	m = appendUint32(m, 0) // numberToSkip
	m = appendUint32(m, 1) // numberToReturn
	m = append(m, query...)
	binary.LittleEndian.PutUint32(m, uint32(len(m)))
	return m
}

// opReply encodes an OP_REPLY carrying docs.
func opReply(requestID, responseTo int32, docs ...[]byte) []byte {
	m := header(0, requestID, responseTo, opCodeReply)
	m = appendUint32(m, 8)                     // responseFlags: AwaitCapable
	m = binary.LittleEndian.AppendUint64(m, 0) // cursorID
	m = appendUint32(m, 0)                     // startingFrom
	m = appendUint32(m, uint32(len(docs)))     // numberReturned
	for _, d := range docs {
		m = append(m, d...)
	}
	binary.LittleEndian.PutUint32(m, uint32(len(m)))
	return m
}

// requireValidMsg checks the framing of an OP_MSG: its length and, if it
// has one, its checksum.
func requireValidMsg(t *testing.T, m []byte) {
	t.Helper()
	require.EqualValues(t, len(m), binary.LittleEndian.Uint32(m[0:4]), "messageLength")
	if msgFlags(m)&flagChecksumPresent != 0 {
		sum := crc32.Checksum(m[:len(m)-4], castagnoli)
		require.Equal(t, sum, binary.LittleEndian.Uint32(m[len(m)-4:]), "checksum")
	}
}

func TestEmbeddedIsHello(t *testing.T) {
	cmd := func(name string) []byte {
		return marshal(t, bson.D{{Key: name, Value: 1}, {Key: "$db", Value: "admin"}})
	}
	garbage := []byte{5, 0, 0, 0} // a document without its terminating NUL
	for name, tc := range map[string]struct {
		m    []byte
		want bool
	}{
		"OP_MSG hello":               {opMsgSections(1, 0, 0, bodySection(cmd("hello"))), true},
		"OP_MSG isMaster":            {opMsgSections(1, 0, 0, bodySection(cmd("isMaster"))), true},
		"OP_MSG ismaster":            {opMsgSections(1, 0, 0, bodySection(cmd("ismaster"))), true},
		"OP_MSG hello with checksum": {opMsgSections(1, 0, flagChecksumPresent, bodySection(cmd("hello"))), true},
		"OP_MSG sequence then body":  {opMsgSections(1, 0, 0, seqSection("documents", cmd("x")), bodySection(cmd("hello"))), true},
		"OP_MSG ping":                {opMsgSections(1, 0, 0, bodySection(cmd("ping"))), false},
		"OP_MSG HELLO":               {opMsgSections(1, 0, 0, bodySection(cmd("HELLO"))), false},
		"OP_MSG hello not first":     {opMsgSections(1, 0, 0, bodySection(marshal(t, bson.D{{Key: "$db", Value: "admin"}, {Key: "hello", Value: 1}}))), false},
		"OP_MSG empty body":          {opMsgSections(1, 0, 0, bodySection(marshal(t, bson.D{}))), false},
		"OP_MSG unknown flag":        {opMsgSections(1, 0, 1<<5, bodySection(cmd("hello"))), false},
		"OP_MSG bad section kind":    {opMsgSections(1, 0, 0, append([]byte{2}, cmd("hello")...)), false},
		"OP_MSG bad document":        {opMsgSections(1, 0, 0, bodySection(garbage)), false},
		"OP_MSG no sections":         {opMsgSections(1, 0, 0), false},
		"OP_MSG cut":                 {opMsgSections(1, 0, 0, bodySection(cmd("hello")))[:30], false},
		"opaque OP_MSG":              {msg(1, 0, 0, "hello"), false},
		"OP_QUERY isMaster":          {opQuery(1, "admin.$cmd", cmd("isMaster")), true},
		"OP_QUERY hello":             {opQuery(1, "admin.$cmd", cmd("hello")), true},
		"OP_QUERY find":              {opQuery(1, "db.coll", cmd("x")), false},
		"OP_QUERY cut":               {opQuery(1, "admin.$cmd", cmd("isMaster"))[:30], false},
		"OP_QUERY no NUL":            {append(header(24, 1, 0, opCodeQuery), 0, 0, 0, 0, 'a', 'b'), false},
		"OP_REPLY":                   {opReply(1, 0, cmd("hello")), false},
		"short":                      {[]byte{1, 2, 3}, false},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, isHello(tc.m))
		})
	}
}

func TestEmbeddedCapHelloReplyMsg(t *testing.T) {
	in := opMsgSections(7, 3, 0, bodySection(marshal(t, helloReply(int32(100000)))))
	orig := append([]byte(nil), in...)
	out := capHelloReply(in)
	assert.Equal(t, orig, in, "the input is left alone")
	requireValidMsg(t, out)
	assert.Equal(t, in[4:20], out[4:20], "requestID, responseTo, opCode and flags")
	assert.Equal(t, opMsgSections(7, 3, 0, bodySection(marshal(t, cappedReply()))), out)

	// What the driver reads from it.
	body, _ := msgBody(out)
	require.NotNil(t, body)
	n, ok := body.Lookup("maxWriteBatchSize").AsInt64OK()
	require.True(t, ok)
	assert.EqualValues(t, maxWriteBatch, n)
}

func TestEmbeddedCapHelloReplyMsgChecksumAndSequence(t *testing.T) {
	seq := seqSection("extra", marshal(t, bson.D{{Key: "a", Value: 1}}), marshal(t, bson.D{{Key: "b", Value: 2}}))
	for _, flags := range []uint32{0, flagChecksumPresent} {
		in := opMsgSections(7, 3, flags, seq, bodySection(marshal(t, helloReply(int64(100000)))), seq)
		out := capHelloReply(in)
		requireValidMsg(t, out)
		assert.Equal(t, opMsgSections(7, 3, flags, seq, bodySection(marshal(t, cappedReply())), seq), out, "flags %#x", flags)
	}
}

func TestEmbeddedCapHelloReplyOpReply(t *testing.T) {
	in := opReply(9, 4, marshal(t, helloReply(int32(100000))))
	out := capHelloReply(in)
	want := opReply(9, 4, marshal(t, cappedReply()))
	assert.Equal(t, want, out)
	assert.EqualValues(t, len(out), binary.LittleEndian.Uint32(out[0:4]))

	doc, rem, ok := bsoncore.ReadDocument(out[replyDocsOffset:])
	require.True(t, ok)
	require.Empty(t, rem)
	n, ok := doc.Lookup("maxWriteBatchSize").AsInt64OK()
	require.True(t, ok)
	assert.EqualValues(t, maxWriteBatch, n)
}

func TestEmbeddedCapHelloReplyValues(t *testing.T) {
	for name, tc := range map[string]struct {
		batch  any
		capped bool
	}{
		"int32 100000":  {int32(100000), true},
		"int64 100000":  {int64(100000), true},
		"double 100000": {100000.0, true},
		"51":            {int32(51), true},
		"0":             {int32(0), true},
		"-1":            {int32(-1), true},
		"50":            {int32(50), false},
		"10":            {int32(10), false},
		"1":             {int32(1), false},
		"a string":      {"100000", false},
	} {
		t.Run(name, func(t *testing.T) {
			for _, in := range [][]byte{
				opMsgSections(1, 0, 0, bodySection(marshal(t, helloReply(tc.batch)))),
				opReply(1, 0, marshal(t, helloReply(tc.batch))),
			} {
				out := capHelloReply(in)
				if !tc.capped {
					assert.Equal(t, in, out)
					continue
				}
				switch opCode(in) {
				case opCodeMsg:
					assert.Equal(t, opMsgSections(1, 0, 0, bodySection(marshal(t, cappedReply()))), out)
				case opCodeReply:
					assert.Equal(t, opReply(1, 0, marshal(t, cappedReply())), out)
				}
			}
		})
	}
}

// Whatever the front does not understand reaches the client unchanged.
func TestEmbeddedCapHelloReplyPassThrough(t *testing.T) {
	hello := marshal(t, helloReply(int32(100000)))
	badDoc := append([]byte(nil), hello...)
	badDoc[len(badDoc)-1] = 1 // no terminating NUL
	errReply := marshal(t, bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: "no"}, {Key: "code", Value: int32(2)}})
	for name, m := range map[string][]byte{
		"OP_MSG error reply":       opMsgSections(1, 0, 0, bodySection(errReply)),
		"OP_MSG bad document":      opMsgSections(1, 0, 0, bodySection(badDoc)),
		"OP_MSG cut":               opMsgSections(1, 0, 0, bodySection(hello))[:40],
		"OP_MSG unknown flag":      opMsgSections(1, 0, 1<<3, bodySection(hello)),
		"OP_MSG bad section kind":  opMsgSections(1, 0, 0, append([]byte{7}, hello...)),
		"OP_MSG sequence only":     opMsgSections(1, 0, 0, seqSection("documents", hello)),
		"OP_MSG bad sequence size": opMsgSections(1, 0, 0, append(appendUint32([]byte{1}, 1000), hello...)),
		"opaque OP_MSG":            msg(1, 0, 0, "reply"),
		"OP_REPLY error reply":     opReply(1, 0, errReply),
		"OP_REPLY two documents":   opReply(1, 0, hello, hello),
		"OP_REPLY trailing bytes":  append(opReply(1, 0, hello), 0),
		"OP_REPLY bad document":    opReply(1, 0, badDoc),
		"OP_REPLY cut":             opReply(1, 0, hello)[:30],
		"OP_COMPRESSED":            append(header(headerLen+9, 1, 0, 2012), make([]byte, 9)...),
		"header only":              header(headerLen, 1, 0, opCodeMsg),
		"shorter than a header":    {1, 2, 3},
	} {
		t.Run(name, func(t *testing.T) {
			orig := append([]byte(nil), m...)
			out := capHelloReply(m)
			assert.Equal(t, orig, out)
			assert.Equal(t, orig, m)
		})
	}
}

// The front caps hello replies only.
func TestEmbeddedFrontCapsHelloReplies(t *testing.T) {
	f, b := startFront(t)
	c := dialFront(t, f)
	be := b.next()

	helloCmd := marshal(t, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})
	findCmd := marshal(t, bson.D{{Key: "find", Value: "c"}, {Key: "$db", Value: "db"}})
	reply := marshal(t, helloReply(int32(100000)))
	for name, tc := range map[string]struct {
		req, rep, want []byte
	}{
		"OP_QUERY isMaster": {
			opQuery(1, "admin.$cmd", marshal(t, bson.D{{Key: "isMaster", Value: 1}, {Key: "helloOk", Value: true}})),
			opReply(2, 1, reply),
			opReply(2, 1, marshal(t, cappedReply())),
		},
		"OP_MSG hello": {
			opMsgSections(3, 0, 0, bodySection(helloCmd)),
			opMsgSections(4, 3, 0, bodySection(reply)),
			opMsgSections(4, 3, 0, bodySection(marshal(t, cappedReply()))),
		},
		"OP_MSG hello, checksum": {
			opMsgSections(5, 0, flagChecksumPresent, bodySection(helloCmd)),
			opMsgSections(6, 5, flagChecksumPresent, bodySection(reply)),
			opMsgSections(6, 5, flagChecksumPresent, bodySection(marshal(t, cappedReply()))),
		},
		"not a hello": {
			opMsgSections(7, 0, 0, bodySection(findCmd)),
			opMsgSections(8, 7, 0, bodySection(reply)),
			opMsgSections(8, 7, 0, bodySection(reply)),
		},
	} {
		t.Run(name, func(t *testing.T) {
			write(t, c, tc.req)
			require.Equal(t, tc.req, read(t, be))
			write(t, be, tc.rep)
			assert.Equal(t, tc.want, read(t, c))
		})
	}
	requireRoundTripOn(t, c, be)
}
