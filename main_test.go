package harmonia_test

import (
	"testing"

	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// TestMain prints the test lane once and stops the shared test server.
func TestMain(m *testing.M) { harmoniatest.Main(m) }
