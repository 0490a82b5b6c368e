package embedded

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// logicalSessionTimeout is the logicalSessionTimeoutMinutes the server
// reports, MongoDB's default.
const logicalSessionTimeout = 30 * time.Minute

// replSetHello returns the hello reply doc as the primary of a one-member
// replica set answers it: capped like every hello reply, with the set's
// name, its one host (the address clients reach the front at) as hosts,
// primary and me, and isWritablePrimary (or ismaster for isMaster).
func (f *front) replSetHello(doc bsoncore.Document) (bsoncore.Document, bool) {
	if doc.Validate() != nil || !replyOK(doc) {
		return nil, false
	}
	if capped, ok := capDocument(doc); ok {
		doc = capped
	}
	set := bson.D{
		{Key: "setName", Value: f.cfg.replSet},
		{Key: "setVersion", Value: int32(1)},
		{Key: "hosts", Value: bson.A{f.cfg.host}},
		{Key: "primary", Value: f.cfg.host},
		{Key: "me", Value: f.cfg.host},
		{Key: "secondary", Value: false},
		{Key: "electionId", Value: f.cfg.electionID},
		{Key: "logicalSessionTimeoutMinutes", Value: int32(logicalSessionTimeout / time.Minute)},
	}
	if _, err := doc.LookupErr("ismaster"); err == nil {
		set = append(set, bson.E{Key: "ismaster", Value: true})
	} else {
		set = append(set, bson.E{Key: "isWritablePrimary", Value: true})
	}
	// ok stays last, where drivers and tools expect it.
	out := editDoc(doc, []string{"ok"}, set)
	return editDoc(out, nil, bson.D{{Key: "ok", Value: 1.0}}), true
}

// replSetCommand answers the replica-set commands a tool or a test harness
// sends to a new member: the set is initiated already, as a mongod
// restarted on its data directory would be.
func (f *front) replSetCommand(cmd *command) bsoncore.Document {
	switch cmd.name {
	case "replSetInitiate":
		return errorf(codeAlreadyInitialized, "already initialized").doc()
	case "replSetGetStatus":
		return okDoc(
			bson.E{Key: "set", Value: f.cfg.replSet},
			bson.E{Key: "myState", Value: int32(1)},
			bson.E{Key: "members", Value: bson.A{bson.D{
				{Key: "_id", Value: int32(0)}, {Key: "name", Value: f.cfg.host}, {Key: "health", Value: 1.0},
				{Key: "state", Value: int32(1)}, {Key: "stateStr", Value: "PRIMARY"}, {Key: "self", Value: true},
			}}},
		)
	case "replSetGetConfig":
		return okDoc(bson.E{Key: "config", Value: bson.D{
			{Key: "_id", Value: f.cfg.replSet}, {Key: "version", Value: int32(1)},
			{Key: "members", Value: bson.A{bson.D{{Key: "_id", Value: int32(0)}, {Key: "host", Value: f.cfg.host}}}},
		}})
	}
	return errorf(codeCommandNotFound, "no such command: '%s'", cmd.name).doc()
}
