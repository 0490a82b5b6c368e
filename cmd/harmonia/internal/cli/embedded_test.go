package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia/internal/devserver"
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

	// A data directory is served by one process at a time; the others
	// connect to its server (devdb here, a worker below).
	dev, _ := start(t, "serving ", "--data", data, "devdb", "--addr", "127.0.0.1:0")
	require.Len(t, f.versions(), 2, "a second command on the directory uses devdb's server")
	dev.end(t)
	require.NoFileExists(t, filepath.Join(data, devserver.URIFile), "the address goes with the server")
}

// Two harmonia commands on one data directory at once, one of them a
// worker: the second connects to the worker's server; with --wait it
// waits for the directory instead.
func TestDataDirectoryIsShared(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "harmonia-data")
	f := dataFixture(t, data)
	f.ok("import", sampleFile)

	worker, line := start(t, "serving data directory", "--data", data, "worker", "--root", t.TempDir())
	require.Contains(t, line, "mongodb://", "a long command prints its URI")

	require.Len(t, f.versions(), 2, "versions list runs beside the worker")
	f.ok("publish", "2026.12.0", "--artifact", "bert-base@1.0.0", "--by", "me")
	require.Len(t, f.versions(), 3)

	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	waited := make(chan result, 1)
	go func() {
		waited <- execute(t, ctx, "--data", data, "--wait", "versions", "list", "--json")
	}()
	select {
	case r := <-waited:
		t.Fatalf("--wait did not wait for the worker: %+v", r)
	case <-time.After(time.Second):
	}
	worker.end(t)
	r := <-waited
	require.Equal(t, ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "2026.12.0")
}

// A command against a server that died ends within seconds, saying the
// server is unreachable. The bound allows for the scheduler stalls
// measured while the command ran (a starved machine), so only a command
// that waits on the server fails it.
func TestDeadServerEndsTheCommand(t *testing.T) {
	t.Parallel()
	dev, line := start(t, "serving ", "devdb", "--memory", "--addr", "127.0.0.1:0")
	f := &fixture{t: t, conn: []string{"--uri", strings.Fields(strings.TrimPrefix(line, "serving "))[0]}}
	f.ok("migrate", "up")
	dev.end(t)

	stall := measureStalls(t)
	start := time.Now()
	r := f.fails(ExitInternal, "versions", "list")
	took := time.Since(start)
	worst := stall()
	require.Contains(t, r.stderr, "server unreachable")
	require.Empty(t, r.stdout)
	t.Logf("a dead server ended the command in %s (worst scheduler stall meanwhile %s)", took, worst)
	require.Less(t, took, 15*time.Second+worst, "the command waited on a dead server")
}

// measureStalls starts measuring how late a 50 ms ticker fires and
// returns the function that stops and returns the worst lateness.
func measureStalls(t *testing.T) func() time.Duration {
	t.Helper()
	const tick = 50 * time.Millisecond
	stop := make(chan struct{})
	res := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		last := time.Now()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				res <- worst
				return
			case now := <-tk.C:
				worst = max(worst, now.Sub(last)-tick)
				last = now
			}
		}
	}()
	return func() time.Duration { close(stop); return <-res }
}
