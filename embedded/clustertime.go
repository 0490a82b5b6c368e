package embedded

import (
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// clusterClock is the server's cluster time: a Timestamp that every write
// advances and that never goes back, as mongod's logical clock. It also
// remembers when each collection was last written, which decides whether
// a snapshot read can be served (see snapshotRead).
type clusterClock struct {
	mu        sync.Mutex
	now       func() time.Time
	last      bson.Timestamp
	lastWrite map[resource]bson.Timestamp
	// snapshots are the open cursors of snapshot reads outside a
	// transaction, by cursor id: what they read and at what time.
	snapshots map[int64]snapshotCursor
}

// snapshotCursor is what a snapshot read's cursor reads, and when.
type snapshotCursor struct {
	res resource
	at  bson.Timestamp
}

func newClusterClock(now func() time.Time) *clusterClock {
	return &clusterClock{now: now, lastWrite: map[resource]bson.Timestamp{}, snapshots: map[int64]snapshotCursor{}}
}

// current returns the cluster time, starting it from the wall clock.
func (c *clusterClock) current() bson.Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last.T == 0 {
		c.last = bson.Timestamp{T: uint32(c.now().Unix()), I: 1}
	}
	return c.last
}

// tickLocked returns a new cluster time, later than every earlier one.
// The caller holds c.mu.
func (c *clusterClock) tickLocked() bson.Timestamp {
	secs := uint32(c.now().Unix())
	if secs > c.last.T {
		c.last = bson.Timestamp{T: secs, I: 1}
	} else {
		c.last.I++
	}
	return c.last
}

// wrote advances the cluster time for a write to each of rs and returns it.
func (c *clusterClock) wrote(rs ...resource) bson.Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.tickLocked()
	for _, r := range rs {
		c.lastWrite[r] = ts
	}
	return ts
}

// advance moves the cluster time up to ts, as mongod does with the
// $clusterTime a client gossips (without authentication it takes any).
func (c *clusterClock) advance(ts bson.Timestamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts.After(c.last) {
		c.last = ts
	}
}

// writtenAfter reports whether anything that r overlaps was written after ts.
func (c *clusterClock) writtenAfter(r resource, ts bson.Timestamp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for w, at := range c.lastWrite {
		if w.conflicts(r) && at.After(ts) {
			return true
		}
	}
	return false
}

// openedSnapshot records the cursor of a snapshot read's reply rep.
func (c *clusterClock) openedSnapshot(rep bsoncore.Document, res resource, at bson.Timestamp) {
	if id, ok := rep.Lookup("cursor", "id").AsInt64OK(); ok && id != 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.snapshots[id] = snapshotCursor{res: res, at: at}
	}
}

// checkGetMore refuses, with SnapshotTooOld, a getMore of a snapshot
// cursor whose collection changed after its snapshot, and forgets the
// cursors that getMore or killCursors ends.
func (c *clusterClock) checkGetMore(cmd *command) *cmdError {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.snapshots) == 0 {
		return nil
	}
	switch cmd.name {
	case "killCursors":
		arr, _ := cmd.lookup("cursors").ArrayOK()
		vals, _ := arr.Values()
		for _, v := range vals {
			if id, ok := v.AsInt64OK(); ok {
				delete(c.snapshots, id)
			}
		}
	case "getMore":
		id, _ := cmd.lookup("getMore").AsInt64OK()
		sc, ok := c.snapshots[id]
		if !ok {
			return nil
		}
		for w, at := range c.lastWrite {
			if w.conflicts(sc.res) && at.After(sc.at) {
				delete(c.snapshots, id)
				return errorf(codeSnapshotTooOld, "Read timestamp %v is older than the oldest available timestamp: the embedded server keeps no history, and %s changed since", sc.at, sc.res)
			}
		}
	}
	return nil
}

// closedSnapshot forgets the snapshot cursor of a getMore whose reply
// says it is exhausted.
func (c *clusterClock) closedSnapshot(cmd *command, rep bsoncore.Document) {
	if cmd.name != "getMore" {
		return
	}
	if id, ok := rep.Lookup("cursor", "id").AsInt64OK(); ok && id == 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		old, _ := cmd.lookup("getMore").AsInt64OK()
		delete(c.snapshots, old)
	}
}

// writeCommands are the commands that change data or the catalog; each
// advances the cluster time.
var writeCommands = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true,
	"create": true, "createIndexes": true, "drop": true, "dropDatabase": true,
	"dropIndexes": true, "renameCollection": true, "collMod": true,
}

// writtenResources returns what the write command cmd changes.
func writtenResources(cmd *command) []resource {
	switch cmd.name {
	case "dropDatabase":
		return []resource{{db: cmd.db}}
	case "renameCollection":
		var rs []resource
		for _, key := range []string{"renameCollection", "to"} {
			if ns, ok := cmd.lookup(key).StringValueOK(); ok {
				db, coll, _ := strings.Cut(ns, ".")
				rs = append(rs, resource{db: db, coll: coll})
			}
		}
		return rs
	}
	return []resource{resourceOf(cmd)}
}

// readConcern is the readConcern of a command, as the front reads it.
type readConcern struct {
	level            string
	afterClusterTime *bson.Timestamp
	atClusterTime    *bson.Timestamp
}

func readConcernOf(cmd *command) readConcern {
	var rc readConcern
	d, ok := cmd.lookup("readConcern").DocumentOK()
	if !ok {
		return rc
	}
	rc.level, _ = d.Lookup("level").StringValueOK()
	if t, i, ok := d.Lookup("afterClusterTime").TimestampOK(); ok {
		rc.afterClusterTime = &bson.Timestamp{T: t, I: i}
	}
	if t, i, ok := d.Lookup("atClusterTime").TimestampOK(); ok {
		rc.atClusterTime = &bson.Timestamp{T: t, I: i}
	}
	return rc
}

// snapshotCommands are the commands that take readConcern snapshot
// outside a transaction (MongoDB 5.0 and later).
var snapshotCommands = map[string]bool{"find": true, "aggregate": true, "distinct": true}

// checkReadConcern takes the $clusterTime cmd gossips and decides its
// readConcern before it runs, as mongod does:
//   - afterClusterTime or atClusterTime later than the cluster time is
//     refused with InvalidOptions (72); any earlier time is satisfied,
//     since commands run one at a time and every write before it is done;
//   - snapshot outside a transaction is refused with InvalidOptions on a
//     command other than find, aggregate and distinct, and with
//     SnapshotTooOld (239) when what the command reads was written after
//     atClusterTime: the server keeps no history, so it can serve a
//     snapshot only while the current data still is that snapshot.
//
// It returns the snapshot time the reply must report (zero when the
// command is no snapshot read), or an error.
func (f *front) checkReadConcern(cmd *command, inTxn bool) (bson.Timestamp, *cmdError) {
	if ct, ok := cmd.lookup("$clusterTime").DocumentOK(); ok {
		if t, i, ok := ct.Lookup("clusterTime").TimestampOK(); ok {
			f.clock.advance(bson.Timestamp{T: t, I: i})
		}
	}
	rc := readConcernOf(cmd)
	now := f.clock.current()
	for _, at := range []struct {
		name string
		ts   *bson.Timestamp
	}{{"afterClusterTime", rc.afterClusterTime}, {"atClusterTime", rc.atClusterTime}} {
		if at.ts != nil && at.ts.After(now) {
			return bson.Timestamp{}, errorf(codeInvalidOptions,
				"readConcern %s value must not be greater than the current clusterTime. Requested clusterTime: %v; current clusterTime: %v",
				at.name, *at.ts, now)
		}
	}
	if rc.level != "snapshot" || inTxn {
		if rc.atClusterTime != nil && !inTxn {
			return bson.Timestamp{}, errorf(codeInvalidOptions, "atClusterTime is only used with readConcern level snapshot")
		}
		return bson.Timestamp{}, nil
	}
	if !snapshotCommands[cmd.name] {
		return bson.Timestamp{}, errorf(codeInvalidOptions, "Command %s does not support { readConcern: { level: \"snapshot\" } }", cmd.name)
	}
	at := now
	if rc.atClusterTime != nil {
		at = *rc.atClusterTime
	}
	if f.clock.writtenAfter(resourceOf(cmd), at) {
		return bson.Timestamp{}, errorf(codeSnapshotTooOld,
			"Read timestamp %v is older than the oldest available timestamp: the embedded server keeps no history, and %s changed since", at, resourceOf(cmd))
	}
	return at, nil
}

// withClusterTime returns rep with operationTime and $clusterTime, as a
// replica-set member without authentication sends them: the signature's
// hash is 20 zero bytes and its keyId 0. A snapshot read's cursor (or a
// distinct's reply) also reports the time it read at.
func (f *front) withClusterTime(rep bsoncore.Document, snapshotAt bson.Timestamp) bsoncore.Document {
	ts := f.clock.current()
	set := bson.D{
		{Key: "operationTime", Value: ts},
		{Key: "$clusterTime", Value: bson.D{
			{Key: "clusterTime", Value: ts},
			{Key: "signature", Value: bson.D{
				{Key: "hash", Value: bson.Binary{Subtype: 0, Data: make([]byte, 20)}},
				{Key: "keyId", Value: int64(0)},
			}},
		}},
	}
	if !snapshotAt.IsZero() && replyOK(rep) {
		if cur, ok := rep.Lookup("cursor").DocumentOK(); ok {
			set = append(set, bson.E{Key: "cursor", Value: bson.Raw(editDoc(cur, nil, bson.D{{Key: "atClusterTime", Value: snapshotAt}}))})
		} else {
			set = append(set, bson.E{Key: "atClusterTime", Value: snapshotAt})
		}
	}
	out := editDoc(rep, []string{"ok"}, set)
	ok := rep.Lookup("ok")
	if ok.Type == 0 {
		return out
	}
	return editDoc(out, nil, bson.D{{Key: "ok", Value: ok}})
}
