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
//     record), "absent" for a document the write inserts or upserts, and
//     whether the collection existed. Abort, endSessions, any failed
//     command in the transaction (as MongoDB aborts), the lifetime limit
//     ([Options.TransactionLifetime], MongoDB's 60 s by default) and
//     [Server.Close] put them all back, and drop a collection the
//     transaction created. A commit sent again after it succeeded answers
//     ok.
//   - Crash-atomic on a data directory: the undo record reaches a journal
//     in [Options.Dir] before the write reaches storage, and a restart
//     rolls back every transaction the crash left open (see "Durability
//     and crash recovery").
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
//     getMore, killCursors, aggregate, distinct, insert, update, delete,
//     findAndModify, create and createIndexes, and any command on admin,
//     config or local. As on MongoDB 4.4+, create and createIndexes run
//     in a transaction on a new collection (createIndexes also on one the
//     transaction created; on an older one it is refused with 263, and
//     create of an existing collection with NamespaceExists, 48); an
//     abort drops what they created.
//   - A command that the failCommand fail point fails in a transaction
//     leaves the transaction running, as on mongod; any other failed
//     command aborts it.
//   - killSessions and killAllSessions abort the named (or all)
//     sessions' transactions; their later commands get NoSuchTransaction.
//
// Retryable writes: insert, update, delete and findAndModify with lsid and
// txnNumber outside a transaction are recorded per session, as mongod's
// config.transactions does: the latest txnNumber and its reply. The same
// txnNumber again answers the recorded reply without writing; an older one
// is refused with TransactionTooOld (225); a newer one aborts the
// session's transaction in progress. A write retried after a lost reply
// (the driver retries once by default) is thus applied once.
//
// Cluster time: every reply carries operationTime and $clusterTime (a
// Timestamp that each write advances and that never goes back, with the
// signature of a mongod without authentication: a 20-byte zero hash,
// keyId 0), and a client's gossiped $clusterTime moves it forward, so
// drivers run causally consistent sessions. readConcern afterClusterTime
// (or atClusterTime) later than the cluster time is refused with
// InvalidOptions (72), as mongod refuses it; any earlier time is
// satisfied at once, since commands run one at a time. readConcern
// snapshot outside a transaction is taken by find, aggregate and distinct
// (the reply reports atClusterTime) and refused with InvalidOptions on
// any other command.
//
// Error replies carry the codeName of their code (every code of MongoDB's
// error_codes.yml; in the standalone mode only the front's own errors)
// and the labels mongod adds: TransientTransactionError
// in a transaction on WriteConflict (112), LockTimeout (24),
// SnapshotUnavailable (246) and the other snapshot errors,
// PreparedTransactionInProgress (267), NoSuchTransaction (251) and the
// retriable codes (on a commit or abort: all but the retriable codes, and
// NoSuchTransaction only without a writeConcernError);
// RetryableWriteError on a retryable write or a commit or abort failing
// with a retriable or shutdown code, or a writeConcernError of a retriable
// code; UnknownTransactionCommitResult on a commit that fails retryably,
// with a writeConcernError (other than 79 and 100), or with
// MaxTimeMSExpired (50). A write concern the one-member set cannot meet
// (w above 1, or a w naming a mode other than majority) is a
// writeConcernError of UnsatisfiableWriteConcern (100) or
// UnknownReplWriteConcern (79) on the reply of the write, which is done,
// as mongod answers. An insert's duplicate key errors name keyPattern and
// keyValue. findAndModify applies fields (inclusion or exclusion of field
// paths; $slice, $elemMatch and positional projections are refused with
// NotImplemented), which FerretDB ignores, and a multi-statement update
// reports each upsert under its own statement's index (FerretDB numbers
// the upserts instead), on both modes.
//
// Where it differs from MongoDB:
//   - Isolation comes from the locks, not from snapshots: a reader outside
//     the transaction waits for it (up to the wait bound, then aborts it)
//     instead of reading the last committed state, and two transactions
//     that touch one collection run one after the other even when their
//     documents differ. Conflicts surface as the abort above, never as a
//     WriteConflict (112) error.
//   - Retryable writes are recorded in memory, not in the data
//     directory, and not in one unit with the write (FerretDB v1 has no
//     atomic write across collections): after a restart of the server a
//     retry of a write whose reply was lost applies again. The
//     onPrimaryTransactionalWrite fail point acts once per write command,
//     mongod's once per statement; a record answers a whole command, so
//     a retry re-runs nothing of it (mongod re-runs statements that
//     failed).
//   - There is no history: a snapshot read (outside a transaction) at a
//     time before the latest write to what it reads, or a snapshot
//     cursor's getMore after such a write, is refused with SnapshotTooOld
//     (239) where mongod serves up to minSnapshotHistoryWindowInSeconds
//     (5 minutes) back. It is never answered from newer data.
//   - The cluster time is not signed, and any gossiped $clusterTime is
//     taken, as on a mongod without authentication; it starts from the
//     wall clock at each start, so it may be below one from before a
//     restart if the clock went back.
//   - killAllSessions kills every session whatever its user patterns
//     (the server has no users); killSessions and killAllSessions end no
//     running operation (none runs while another command is served).
//   - Duplicate key errors of update and findAndModify lack keyPattern
//     and keyValue (FerretDB v1 does not say which index or value).
//   - Write concern: j and wtimeout are ignored; w is checked as above.
//   - Writes in a transaction cost one more round trip each (the read of
//     the documents before), and the first write to each collection one
//     more (does it exist?). On a data directory an insert costs one more
//     (do its _ids exist?), an update or delete of several statements one
//     read per statement more (all it may change, read before the first
//     statement runs), and every write command one synced append to the
//     journal (and one more per statement that upserts).
//
// # Durability and crash recovery
//
// The fault model is a crash of the process (kill -9, a panic, the OOM
// killer) at any moment. In the replica-set mode with a named
// [Options.Dir], each write command of a transaction first appends one
// record (not one per document) to the journal harmonia-txn.journal in
// the directory: the
// state before the transaction of every document the command may change
// and has not changed yet (for an upsert the front picks the new
// document's _id first, so that it is known), and whether the collection
// existed. Only then does the command reach FerretDB. commitTransaction
// is answered after a commit record is in the journal; an abort (of any
// kind) writes an abort record once its undo is applied. When no
// transaction is open the journal is emptied; past 64 MiB while some are
// open it is rewritten with theirs alone.
//
// [Start] on a directory reads the journal before it accepts a
// connection, rolls back every transaction without a commit or abort
// record (latest first: it restores the documents' former states,
// deletes the ones they inserted, drops the collections they created)
// and logs at Warn that the last shutdown was not clean, with how many
// transactions and how many documents per collection it rolled back, and
// which collections it dropped. So a kill leaves no part of an
// unacknowledged transaction visible, and loses no acknowledged commit.
// Each record carries its length and a CRC-32C: a last record cut short by
// the crash is ignored (its write had not been sent), while damage
// anywhere else makes Start fail with a [*JournalError] naming the file
// and the offset (errors.Is [ErrJournalCorrupt]), having applied nothing.
//
// Each append is followed by fsync, as FerretDB's SQLite (write-ahead log,
// synchronous=FULL) syncs each of its commits, so the journal is on disk
// before the write it covers: after a power loss too, as far as the disk
// honours fsync, no transaction is left half done. The cost: one synced
// append of the undo record of 1,000 documents took 7 to 10 ms here
// (BenchmarkJournalAppend); a Publish of 1,000 artifacts makes three
// (insert, update, commit) and more for its marks' pinned updates:
// examples/bench -only journal measured such a publish at 1.69 s with the
// journal and 1.58 s without, 7.2% (median of 3 in turns, idle 2-core
// machine, 2026-12-02).
// [Options.NoJournal] turns the journal off; a temporary
// directory and [Options.InMemory] have none, since nothing restarts on
// them. The standalone mode has no transactions and no journal: each
// command is atomic against other clients (see "One command at a time"),
// but one that a crash interrupts may be applied in part (an insert of
// many documents, an update of many), as FerretDB writes them; harmonia's
// staged publish recovers from that.
//
// # Fail points
//
// In both modes the front takes mongod's configureFailPoint command for the
// failCommand fail point, as a mongod started with enableTestCommands
// does: modes alwaysOn, {times: n}, {skip: n} and off, and the data fields
// failCommands, errorCode, errorLabels, closeConnection,
// blockConnection with blockTimeMS, appName (only clients that gave that
// application name in their handshake) and writeConcernError. errorLabels
// replace the labels of the reply, writeConcernError's included; without
// them, the reply gets the labels mongod adds (see "Replica-set mode").
// In the replica-set mode it also takes onPrimaryTransactionalWrite,
// which acts on retryable writes once the write is done and before it is
// committed: closeConnection (true unless set false) closes the
// connection after the write, so the reply is lost and the driver
// retries; failBeforeCommitExceptionCode fails the write with that code
// without applying it. Tests that run in parallel against one server
// should set appName.
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
