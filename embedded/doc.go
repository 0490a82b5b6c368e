// Package embedded runs a MongoDB-compatible server inside the current
// process, for development, tests and examples. It is NOT for production.
//
// The server is FerretDB v1 (https://www.ferretdb.com) with its pure-Go
// SQLite handler, so it needs no MongoDB binary, no cgo and no network
// access. Any MongoDB driver or tool (mongosh, Compass) connects to
// [Server.URI]:
//
//	srv, err := embedded.Start(ctx, embedded.Options{Dir: "./harmonia-data"})
//	if err != nil {
//		return err
//	}
//	defer srv.Close()
//	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
//
// With [Options.ReplicaSet] the server is the primary of a one-member
// replica set, with multi-document transactions (see "Replica-set mode"),
// and [Server.URI] names the set.
//
// With an empty [Options.Dir] the data lives in a temporary directory that
// [Server.Close] removes; with [Options.InMemory] nothing is written at all.
// A named Dir keeps its data across restarts and is locked while a server
// uses it ([ErrDirInUse]). The program harmonia-devdb
// (go run ./embedded/cmd/harmonia-devdb) serves a directory on
// 127.0.0.1:27017 until interrupted (-replset rs0 for the replica-set mode).
//
// # What it lacks
//
// FerretDB v1.24 does not support, and so this server does not support:
//   - transactions on the standalone server (the replica-set mode adds
//     them; harmonia publishes in stages without them),
//   - collMod options other than the validator's (validator,
//     validationLevel, validationAction, which the front adds),
//   - TTL indexes (expireAfterSeconds) and partialFilterExpression,
//   - text indexes,
//   - $lookup and $facet aggregation stages,
//   - pipeline-style updates beyond those the front evaluates (see
//     "Server time") and arrayFilters,
//   - $expr, except comparisons of a field with $$NOW (see "Server time"),
//   - change streams,
//   - $elemMatch on sub-document fields.
//
// Database names are limited to 63 characters of letters, digits, '_'
// and '-'.
//
// Bulk writes are split into commands of at most 50 statements: the
// server reports a maxWriteBatchSize of 50, and drivers split bulk writes
// (BulkWrite, InsertMany) accordingly. A bulk write of more than 50
// statements is thus several commands, and other clients' commands may run
// between them (see "One command at a time"). FerretDB v1.24.2 reports
// 100,000, but its update command keeps every statement's SQLite query
// open until the whole command is done, and its SQLite pool has 100
// connections, so one update command of about 100 statements or more (a
// BulkWrite of 100 UpdateOne models) hangs forever. A client that ignores
// maxWriteBatchSize must keep its update commands well under 100
// statements itself.
//
// FerretDB v1.24.2 mishandles a createIndexes command of several indexes
// when two or more of them already exist: it panics, which closes the
// connection, or it succeeds without creating some of the missing ones
// (asked for a, b and c with a and b present, it creates nothing).
// Create the missing indexes one per command instead; harmonia's
// EnsureIndexes does that.
//
// $push silently ignores $slice (the array keeps growing): FerretDB
// v1.24.2 reads only $each. Cap arrays with a $set of the trimmed array
// where one writer owns them (harmonia's job log tail does that).
//
// What works: CRUD, unique and compound indexes with E11000 duplicate-key
// errors, findOneAndUpdate with sort and returnDocument, the common update
// operators ($set, $inc, $push with $each, $addToSet, $pull, $max,
// $rename, $unset, $setOnInsert, $currentDate), ordered and unordered bulk
// writes with upserts, distinct, and aggregation with $match, $group,
// $unwind, $sort, $limit and $project.
//
// # Server time
//
// MongoDB 4.2 and later evaluate $$NOW, the server's clock, in queries
// ($expr) and update pipelines; clients that must agree on time (job
// leases) take it from there rather than from their own clocks. FerretDB
// v1 refuses both, so the front evaluates $$NOW itself, from
// [Options.Now], in the forms such clients use, and rewrites the command
// before FerretDB sees it:
//   - in a filter (of find, count, distinct, update, delete,
//     findAndModify, an aggregation's $match; at the top level or under $and, $or, $nor), an $expr
//     comparing a field path with $$NOW, such as
//     {$expr: {$lt: ["$lease_expires_at", "$$NOW"]}}, becomes the query
//     condition {lease_expires_at: {$lt: <now>}}. Unlike MongoDB's, it
//     matches only documents whose field is a date;
//   - an update pipeline of $set (or $addFields) and $unset stages
//     becomes the operator update that does the same, when each field it
//     sets is a constant (a scalar or {$literal: v}), $$NOW,
//     {$add: ["$$NOW", ms]}, {$add: [{$ifNull: ["$f", 0]}, n]} on its own
//     field f (an $inc), or {$concatArrays: [{$ifNull: ["$f", []]},
//     [v, ...]]} on its own field (a $push), and no field is touched
//     twice.
//
// Anything else with $$NOW or a pipeline is refused with NotImplemented
// (238). $$NOW is read once per command. As MongoDB does, the front
// refuses an upsert whose filter has an $expr, with
// QueryFeatureNotAllowed (224).
//
// # One command at a time
//
// FerretDB v1 is not atomic under concurrent writes: measured here, eight
// goroutines claiming jobs with findOneAndUpdate claimed 191 of 200 jobs
// twice, and 400 concurrent $inc of one field left it at 51. Only inserts
// into a unique index held.
//
// So clients never talk to FerretDB directly. They connect to a small
// front that owns FerretDB's only listener (a Unix socket in a private
// directory) and lets exactly one command into FerretDB at a time, from its
// request until its final reply. Each command is then atomic, the same
// tests become exact (no double claims, 400 of 400), and a unique-key race
// has one winner. The front reads a whole request before it queues for its
// turn and writes replies after it has given it up, so a slow, broken or
// vanished client cannot stall the others; it closes a connection whose
// message header announces less than 16 or more than 48,000,000 bytes.
//
// The price is throughput: commands never overlap. A multi-statement
// sequence is still not atomic as a whole, outside a transaction; only a
// single command is.
//
// # Replica-set mode
//
// With [Options.ReplicaSet] the front answers hello as the primary of a
// one-member replica set (setName, hosts, primary and me equal to the
// address in [Server.URI], setVersion, electionId,
// logicalSessionTimeoutMinutes), so that an unmodified driver treats it
// as one, and it runs multi-document transactions that the driver's
// Session.WithTransaction, StartTransaction, CommitTransaction and
// AbortTransaction drive unchanged. replSetInitiate answers
// AlreadyInitialized (23), as a member restarted on its data would.
//
// What holds:
//   - A transaction's state is keyed by its session (lsid and txnNumber),
//     not by connection.
//   - All or nothing: before a write in a transaction the front reads the
//     documents it will change, and keeps each one's first state (an undo
//     record). Abort, endSessions, any failed command in the transaction
//     (as MongoDB aborts), and the lifetime limit
//     ([Options.TransactionLifetime], MongoDB's 60 s by default) put them
//     all back. A commit sent again after it succeeded answers ok.
//   - No dirty reads, and serializable: a transaction holds every
//     collection it touched, read or written, until it ends (strict
//     two-phase locking, one lock per collection). No other session
//     reads or writes those collections meanwhile; other collections
//     stay open.
//   - No deadlock: a command that waits behind another session's
//     transaction for longer than [Options.TransactionWait] (1 s by
//     default) aborts that transaction and goes on. The transaction's
//     next command, and its commit, fail with NoSuchTransaction (251) and
//     the TransientTransactionError label, which makes WithTransaction run
//     the callback again, as a write conflict does on MongoDB.
//   - Commands MongoDB refuses in a transaction are refused with
//     OperationNotSupportedInTransaction (263): anything but find,
//     getMore, killCursors, aggregate, distinct, insert, update, delete
//     and findAndModify, and any command on admin, config or local.
//
// Where it differs from MongoDB:
//   - Isolation comes from the locks, not from snapshots: a reader outside
//     the transaction waits for it (up to the wait bound, then aborts it)
//     instead of reading the last committed state, and two transactions
//     that touch one collection run one after the other even when their
//     documents differ. Conflicts surface as the abort above, never as a
//     WriteConflict (112) error.
//   - create and createIndexes are refused in a transaction (MongoDB 4.4+
//     allows them on new collections); a collection that an aborted
//     transaction created by inserting stays, empty.
//   - Retryable writes are sent once: txnNumber outside a transaction is
//     ignored, so a write retried after a lost reply may apply twice.
//   - Writes in a transaction cost one more round trip each (the read of
//     the documents before).
//
// # Fail points
//
// In both modes the front takes mongod's configureFailPoint command for the
// failCommand fail point, as a mongod started with enableTestCommands
// does: modes alwaysOn, {times: n} and off, and the data fields
// failCommands, errorCode, errorLabels, closeConnection,
// blockConnection with blockTimeMS, appName (only clients that gave that
// application name in their handshake) and writeConcernError. Without
// errorLabels, an error in a transaction gets TransientTransactionError
// (or UnknownTransactionCommitResult on a commit) where its code is a
// write conflict or retryable, and a retryable write gets
// RetryableWriteError, as mongod labels them. Tests that run in parallel
// against one server should set appName.
//
// # Validators
//
// In both modes, create with validator, validationLevel and
// validationAction, and collMod with those three, install a $jsonSchema
// validator, kept with the data directory (in harmonia-validators.bson)
// and shown by listCollections. Inserts, updates, replacements, upserts
// and findAndModify are checked against each document as it would be
// written: the front runs a write statement by statement, reads the
// documents it changed and, where one fails, puts them back and answers
// DocumentValidationFailure (121) with errInfo, in writeErrors for
// insert and update and as a command error for findAndModify.
// validationLevel moderate skips documents that were invalid before;
// validationAction warn logs instead; bypassDocumentValidation skips the
// check. The schema keywords are those of MongoDB's $jsonSchema
// (bsonType, type, required, properties, items, additionalItems,
// minLength, maxLength, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, multipleOf, minItems, maxItems, uniqueItems, pattern,
// enum, additionalProperties, patternProperties, minProperties,
// maxProperties, dependencies, allOf, anyOf, oneOf, not, title,
// description). A validator with anything else (query operators, format,
// $ref, a pattern Go's regexp cannot compile) is refused with
// FailedToParse (9) instead of being ignored. Patterns use Go's regexp
// (RE2), not PCRE.
//
// # Speed
//
// FerretDB v1's SQLite handler pushes a filter down only when it is
// exactly {_id: v}; every other query scans its collection. Measured
// through the front, before the index below:
//
//	                                  1,000 docs   10,000 docs
//	findOne by _id                      1.2 ms        10 ms
//	findOne by another field             10 ms        89 ms
//	sorted findOneAndUpdate (a claim)    23 ms       264 ms
//
// FerretDB's own _id index is on an expression its lookups by _id do not
// use, so those scanned too, and so did every document an update or a
// delete wrote (one lookup by _id each). The front adds the index they
// use to every collection it serves (idindex.go): a find by _id became
// an index search, and the updateMany of a publish of 100 artifacts
// among 10,000 went from 20.8 s of CPU in SQLite to 0.1 s (2026-12-02,
// CPU profile, loaded machine). An update of many documents by
// {_id: {$in: [...]}} runs pinned to each (pinmany.go).
//
// 2,000 upserts by natural key, one round trip each, took 65 s; InsertMany
// of the same 2,000 documents took 73 ms. Keep collections in the hundreds
// to low thousands of documents, and batch writes: read what exists once,
// then write in bulk, never one round trip per document.
package embedded
