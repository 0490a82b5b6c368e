package main

import (
	"testing"
)

// TestQuickstart runs the quickstart end to end: run fails unless the
// corrupted file is detected and every other artifact verified.
func TestQuickstart(t *testing.T) {
	t.Setenv("HARMONIA_MONGODB_URI", "")
	if err := run(t.Context()); err != nil {
		t.Fatal(err)
	}
}
