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
// With an empty [Options.Dir] the data lives in a temporary directory that
// [Server.Close] removes; with [Options.InMemory] nothing is written at all.
// A named Dir keeps its data across restarts and is locked while a server
// uses it ([ErrDirInUse]). The program harmonia-devdb
// (go run ./embedded/cmd/harmonia-devdb) serves a directory on
// 127.0.0.1:27017 until interrupted.
//
// # What it lacks
//
// FerretDB v1.24 does not support, and so this server does not support:
//   - transactions (harmonia publishes in stages instead),
//   - $jsonSchema validators and collMod,
//   - TTL indexes (expireAfterSeconds) and partialFilterExpression,
//   - text indexes,
//   - $lookup and $facet aggregation stages,
//   - pipeline-style updates and arrayFilters,
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
// sequence is still not atomic as a whole; only a single command is.
//
// # Speed
//
// FerretDB v1's SQLite handler uses no index to read: every query scans its
// collection. Measured through the front:
//
//	                                  1,000 docs   10,000 docs
//	findOne by _id                      1.2 ms        10 ms
//	findOne by another field             10 ms        89 ms
//	sorted findOneAndUpdate (a claim)    23 ms       264 ms
//
// 2,000 upserts by natural key, one round trip each, took 65 s; InsertMany
// of the same 2,000 documents took 73 ms. Keep collections in the hundreds
// to low thousands of documents, and batch writes: read what exists once,
// then write in bulk, never one round trip per document.
package embedded
