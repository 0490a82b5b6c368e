// Package harmoniatest gives tests a MongoDB database: harmonia's own tests
// and the tests of programs built on harmonia.
//
//	func TestMain(m *testing.M) { harmoniatest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		store := harmoniatest.Store(t, nil) // migrated, on a fresh database dropped when the test ends
//		...
//	}
//
// # Lanes
//
// A test binary starts at most one server, on first use, and shares it
// between its tests. It picks the strongest it can have, in this order:
//
//  1. HARMONIA_TEST_MONGODB_URI: an existing deployment (lane "uri"). A
//     replica set or a sharded cluster runs everything, transactions
//     included.
//  2. MEMONGO_MONGOD_BIN, the path of a mongod binary, or
//     HARMONIA_TEST_MONGOD_VERSION, a MongoDB version that memongo
//     downloads once and caches (in MEMONGO_CACHE_PATH, else the user
//     cache directory): mongod is started as a single-node replica set in
//     a temporary directory (lane "mongod", with transactions). Needs
//     MongoDB 4.4.2 or later. The lane's code runs in harmonia's CI
//     against a stand-in that takes mongod's flags (internal/fakemongod).
//  3. Otherwise harmonia's embedded server (package embedded) with its data
//     in memory. HARMONIA_TEST_EMBEDDED_TOPOLOGY chooses its mode:
//     "replset" (the default) serves a one-member replica set with
//     transactions and $jsonSchema validators (lane "embedded-replset"),
//     "standalone" a server without transactions (lane "embedded"), where
//     harmonia publishes in stages. Both have validators and the
//     failCommand fail point. It needs nothing installed, and it lacks
//     several MongoDB features; see its package documentation. CI runs the
//     suite on both. Under the race detector it runs as a separate
//     harmonia-devdb process, built (and cached) by the go command without
//     -race, because the race detector slows its SQLite about 25 times;
//     otherwise inside the test binary. HARMONIA_TEST_EMBEDDED=process or
//     =inprocess overrides that.
//
// The first test that needs the server prints the lane to standard output,
// for example:
//
//	harmoniatest: lane=embedded-replset transactions=true validators=true server_clock=true uri=mongodb://127.0.0.1:41237/?replicaSet=rs0 server=process
//
// (go test shows a passing package's output only with -v.) Tests that need
// what a lane lacks skip with a message naming the lane; see
// [RequireTransactions], [RequireValidators], [RequireServerClock],
// [RequireStandalone] and [CurrentLane].
//
// Call [Main] from TestMain so that the server this package started, the
// mongod process in particular, is stopped when the tests end.
//
// # Databases
//
// [Database] returns a database of its own to each call, named after the
// test and dropped when the test ends, so tests may run in parallel and
// several test binaries may share one deployment. [Store] returns a
// harmonia Store on such a database after the migrate package's built-in
// migrations, as a deployment has it: unique keys are enforced from the
// first write.
//
// # Counting commands
//
// [CountingDatabase] returns a database whose client reports every command
// to a [CommandCounter], for tests that assert how many round trips an
// operation makes.
//
// # Timing tests
//
// A test whose assertion depends on timing (a lease held against a slow
// server, a heartbeat before an expiry) cannot tell a starved machine
// from a defect by itself. [StartStallProbe] measures, while it runs, the
// Go scheduler's worst delay and the server's slowest round trip;
// [StallProbe.Require] then skips a failed assertion naming the stall when
// it exceeded the margin the test relies on, and fails it otherwise.
package harmoniatest
