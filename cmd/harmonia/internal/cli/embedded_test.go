package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sampleFile is the sample inventory of the repository.
var sampleFile = filepath.Join("..", "..", "..", "..", "examples", "inventory", "combined_inventory.json")

// dataFixture runs commands on the embedded server of a data directory:
// no --uri, as a newcomer does.
func dataFixture(t *testing.T, dir string) *fixture {
	return &fixture{t: t, conn: []string{"--data", dir}}
}

func TestEmbeddedDataKeepsTheInventoryAcrossInvocations(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "harmonia-data")
	f := dataFixture(t, data)
	f.ok("import", sampleFile)
	require.Len(t, f.versions(), 2)
	require.Contains(t, f.ok("versions", "diff", "2026.10.0", "2026.11.0").stdout, "yolo-tiny")
	var st statusJSON
	f.json(&st, "migrate", "status")
	require.Equal(t, 0, st.Pending, "the embedded server is migrated by every command")

	// A data directory is served by one process at a time.
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	devCtx, stop := context.WithCancel(ctx)
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Execute(devCtx, []string{"--data", data, "devdb", "--addr", "127.0.0.1:0"}, &out, &out, nil)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "harmonia-devdb: serving ") }, 2*time.Minute, 20*time.Millisecond)
	r := f.fails(ExitConflict, "versions", "list")
	require.Contains(t, r.stderr, "is in use by another process")
	stop()
	require.Equal(t, ExitOK, <-done, out.String())
}
