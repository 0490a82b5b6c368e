package httpapi_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPythonClient runs a client written in Python with its standard
// library only (testdata/e2e_client.py) against the handler: it
// registers artifacts, publishes, moves an alias with If-Match, follows
// the SSE watch across the move and after a reconnect, and reads a
// problem document.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH: the end-to-end test needs a client not written in Go")
	}
	b := setup(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/e2e_client.py", b.srv.URL, writeToken, publishToken).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "e2e: all steps passed")
	require.Equal(t, 17, strings.Count(string(out), "ok: "), "%s", out)

	a, err := b.store.GetAlias(t.Context(), "production")
	require.NoError(t, err)
	require.Equal(t, "2026.12.1", a.VersionTag)
	require.Equal(t, "publisher", a.UpdatedBy)
}
