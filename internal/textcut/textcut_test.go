package textcut_test

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia/internal/textcut"
)

func TestCutKeepsRunesWhole(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", textcut.Cut("short", 10))
	s := "ééééé" // 10 bytes
	for n := 4; n < 10; n++ {
		got := textcut.Cut(s, n)
		require.True(t, utf8.ValidString(got), "n=%d: %q", n, got)
		require.LessOrEqual(t, len(got), n)
		require.Contains(t, got, textcut.Mark)
	}
}
