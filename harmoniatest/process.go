package harmoniatest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/harmonia-ml/harmonia/internal/devserver"
)

// EnvEmbedded chooses where the embedded lane's server runs: "process" (a
// separate harmonia-devdb process), "inprocess" (inside the test binary).
// Defaults to "process" when the race detector is on — it slows FerretDB's
// SQLite, which is Go code, about 25 times, and the server needs no race
// checking of its own (package embedded's tests do that) — and
// "inprocess" otherwise.
const EnvEmbedded = "HARMONIA_TEST_EMBEDDED"

// devdbPackage is the command the process mode builds and runs.
const devdbPackage = "github.com/harmonia-ml/harmonia/embedded/cmd/harmonia-devdb"

// embeddedInProcess decides where the embedded server runs.
func embeddedInProcess(getenv func(string) string) bool {
	switch getenv(EnvEmbedded) {
	case "inprocess":
		return true
	case "process":
		return false
	}
	return !raceEnabled
}

// startEmbeddedProcess builds harmonia-devdb without the race detector
// (the go command caches the build) and starts it with its data in memory
// on a free loopback port, as a replica set named replSet unless that is
// empty. The server exits when stop closes its standard input, and also
// when this process dies.
func startEmbeddedProcess(ctx context.Context, replSet string) (uri string, stop func() error, err error) {
	bin, removeBin, err := buildDevDB(ctx)
	if err != nil {
		return "", nil, err
	}
	uri, stopServer, err := runDevDB(ctx, bin, devdbArgs(replSet, "", "127.0.0.1:0"))
	if err != nil {
		return "", nil, errors.Join(err, removeBin())
	}
	return uri, func() error { return errors.Join(stopServer(), removeBin()) }, nil
}

// devdbArgs returns harmonia-devdb's arguments: a replica set named
// replSet unless that is empty, its data in dir (in memory when dir is
// empty), listening on addr.
func devdbArgs(replSet, dir, addr string) []string {
	args := []string{"-addr", addr, "-exit-with-stdin"}
	if dir == "" {
		args = append(args, "-memory")
	} else {
		args = append(args, "-dir", dir)
	}
	if replSet != "" {
		args = append(args, "-replset", replSet)
	}
	return args
}

// buildDevDB builds harmonia-devdb without the race detector into a new
// temporary directory; remove deletes it.
func buildDevDB(ctx context.Context) (bin string, remove func() error, err error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", nil, fmt.Errorf("process mode needs the go command: %w", err)
	}
	dir, err := os.MkdirTemp("", "harmoniatest-devdb-")
	if err != nil {
		return "", nil, err
	}
	remove = func() error { return os.RemoveAll(dir) }
	bin = filepath.Join(dir, "harmonia-devdb")
	build := exec.CommandContext(ctx, goTool, "build", "-o", bin, devdbPackage)
	if out, err := build.CombinedOutput(); err != nil {
		return "", nil, errors.Join(fmt.Errorf("go build %s: %w\n%s", devdbPackage, err, out), remove())
	}
	return bin, remove, nil
}

// runDevDB starts the harmonia-devdb binary bin with args (which must
// include -exit-with-stdin) and returns its URI once it serves. stop
// closes its standard input and waits for it to exit (killing it after
// 30 seconds).
func runDevDB(ctx context.Context, bin string, args []string) (uri string, stop func() error, err error) {
	p, err := startDevDB(ctx, bin, args, os.Stderr)
	if err != nil {
		return "", nil, err
	}
	return p.uri, p.stop, nil
}

// devdbProc is a running harmonia-devdb process.
type devdbProc struct {
	uri   string
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan error // receives Wait's result once
}

// startDevDB starts bin with args, its standard error going to stderr,
// and returns once it prints its URI.
func startDevDB(ctx context.Context, bin string, args []string, stderr io.Writer) (*devdbProc, error) {
	cmd := exec.Command(bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &devdbProc{cmd: cmd, stdin: stdin, done: make(chan error, 1)}

	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), devserver.ServingPrefix); ok {
				found <- strings.Fields(rest)[0]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.done <- cmd.Wait()
	}()
	select {
	case p.uri = <-found:
		return p, nil
	case <-ctx.Done():
		return nil, errors.Join(ctx.Err(), p.stop())
	case <-time.After(2 * time.Minute):
		return nil, errors.Join(errors.New("harmonia-devdb printed no URI within 2 minutes"), p.stop())
	}
}

// stop closes the process's standard input and waits for it to exit,
// killing it after 30 seconds.
func (p *devdbProc) stop() error {
	_ = p.stdin.Close()
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("harmonia-devdb did not stop within 30 seconds of its input closing; killed")
	}
}

// kill kills the process with SIGKILL, as a crash would end it, and
// waits for it to be gone.
func (p *devdbProc) kill() error {
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	<-p.done
	return nil
}
