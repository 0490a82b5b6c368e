package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/examples/inventory"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) { harmoniatest.Main(m) }

// commandTimeout bounds one command of a test: generous, the machine is
// shared and the race detector slows the embedded server.
const commandTimeout = 3 * time.Minute

// result is what one run of the command printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// execute runs the command in-process with args and an empty environment.
func execute(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := Execute(ctx, args, &stdout, &stderr, func(string) string { return "" })
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// background is a long command (devdb, worker) running in the test.
type background struct {
	out  *syncBuffer
	stop context.CancelFunc
	done chan int
}

// start runs the command with args in the background until stopped, and
// waits until its output holds ready; it returns the line that holds it.
func start(t *testing.T, ready string, args ...string) (*background, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	t.Cleanup(cancel)
	cmdCtx, stop := context.WithCancel(ctx)
	b := &background{out: &syncBuffer{}, stop: stop, done: make(chan int, 1)}
	go func() { b.done <- Execute(cmdCtx, args, b.out, b.out, nil) }()
	var line string
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(b.out.String(), "\n") {
			if strings.Contains(l, ready) {
				line = l
				return true
			}
		}
		return false
	}, 2*time.Minute, 20*time.Millisecond)
	return b, line
}

// end stops the command and requires that it exits with code 0.
func (b *background) end(t *testing.T) {
	t.Helper()
	b.stop()
	require.Equal(t, ExitOK, <-b.done, b.out.String())
}

// fixture is a test's database and the arguments that connect to it.
type fixture struct {
	t     *testing.T
	store *harmonia.Store
	conn  []string
	// dir holds a copy of the sample inventory and its files.
	dir string
}

// setup returns a fixture on a new migrated database of the test lane.
func setup(t *testing.T) *fixture {
	t.Helper()
	store := harmoniatest.Store(t, nil)
	lane := harmoniatest.CurrentLane(t)
	return &fixture{t: t, store: store, conn: []string{"--uri", lane.URI, "--db", store.Database().Name()}}
}

// run runs the command against the fixture's database.
func (f *fixture) run(args ...string) result {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return execute(f.t, ctx, append(append([]string{}, f.conn...), args...)...)
}

// ok runs the command and requires exit code 0.
func (f *fixture) ok(args ...string) result {
	f.t.Helper()
	r := f.run(args...)
	require.Equal(f.t, ExitOK, r.code, "harmonia %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// fails runs the command and requires the exit code.
func (f *fixture) fails(code int, args ...string) result {
	f.t.Helper()
	r := f.run(args...)
	require.Equal(f.t, code, r.code, "harmonia %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// json runs the command with --json, requires exit code 0 and decodes
// its output into v.
func (f *fixture) json(v any, args ...string) {
	f.t.Helper()
	r := f.ok(append(args, "--json")...)
	require.NoError(f.t, json.Unmarshal([]byte(r.stdout), v), "output of harmonia %s --json:\n%s", strings.Join(args, " "), r.stdout)
}

// sample copies the sample inventory with its files to a directory,
// imports it, and returns the inventory file's path.
func (f *fixture) sample() string {
	f.t.Helper()
	f.dir = f.t.TempDir()
	require.NoError(f.t, os.CopyFS(f.dir, inventory.FS))
	file := filepath.Join(f.dir, inventory.FileName)
	f.ok("import", file)
	return file
}

// volatile matches what changes between runs: ObjectIds, times, temporary
// directories.
var volatile = regexp.MustCompile(`\b[0-9a-f]{24}\b|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// golden compares got (the sample's directory written $DIR) with testdata/name.golden (rewritten with -update).
// Ids and times are masked with x's of the same length, so that columns
// stay aligned, except the fixed publish times of the sample.
func (f *fixture) golden(name, got string) {
	t := f.t
	t.Helper()
	if f.dir != "" {
		got = strings.ReplaceAll(got, f.dir, "$DIR")
	}
	got = volatile.ReplaceAllStringFunc(got, func(s string) string {
		if strings.HasPrefix(s, "2026-10-01T") || strings.HasPrefix(s, "2026-11-01T") {
			return s
		}
		return strings.Repeat("x", len(s))
	})
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	require.Equal(t, string(want), got, "golden file %s (go test -update rewrites it)", path)
}

// versions runs versions list --json and returns the versions, newest
// first.
func (f *fixture) versions() []versionSummaryJSON {
	f.t.Helper()
	var list struct {
		Versions []versionSummaryJSON `json:"versions"`
	}
	f.json(&list, "versions", "list")
	return list.Versions
}
