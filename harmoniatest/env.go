package harmoniatest

import (
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// EnvInt reads a positive size from the environment variable name, def
// when it is unset, failing tb on anything else.
func EnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(tb, err, name)
	require.Positive(tb, n, name)
	return n
}
