// Package crashtest holds the test that kills the embedded server
// (harmonia-devdb, in the replica-set mode, on a data directory) with
// SIGKILL during publishes and imports, restarts it on the same directory
// and checks that no transaction is left half done and no acknowledged
// write is lost. It has no code of its own; see crash_test.go.
package crashtest
