package inventoryfile_test

import (
	"testing"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/stretchr/testify/require"
)

// TestMain prints the test lane once and stops the shared test server.
func TestMain(m *testing.M) { harmoniatest.Main(m) }

func requireCode(t *testing.T, err error, code harmonia.Code, contains string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, harmonia.ErrorCode(err), "%v", err)
	require.Contains(t, err.Error(), contains)
}
