package main

import "testing"

// TestPublishExample runs the example: run fails unless the second publish
// is idempotent and the conflicting publish and the delete are refused.
func TestPublishExample(t *testing.T) {
	t.Setenv("HARMONIA_MONGODB_URI", "")
	if err := run(t.Context(), "", "2026.11.0"); err != nil {
		t.Fatal(err)
	}
}
