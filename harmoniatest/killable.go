package harmoniatest

import (
	"bytes"
	"context"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Killable is a harmonia-devdb process of the test's own, with its data
// in a directory of the test's, that the test can kill with SIGKILL, as a
// crash ends a server, and start again on the same directory and
// address. Create it with [KillableServer].
type Killable struct {
	bin, dir, addr string
	args           []string

	mu   sync.Mutex
	uri  string
	proc *devdbProc // nil while down

	logMu sync.Mutex
	log   bytes.Buffer
}

// KillableServer builds harmonia-devdb and starts it for t alone on a
// directory of t's and a free loopback port, with the further arguments
// args (such as "-replset", "rs0"). It always runs as a separate process,
// whatever the lane, since only a process can be killed. The server stops
// when t ends.
func KillableServer(t testing.TB, args ...string) *Killable {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin, remove, err := buildDevDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := remove(); err != nil {
			t.Error(err)
		}
	})
	k := &Killable{bin: bin, dir: t.TempDir(), addr: "127.0.0.1:0", args: args}
	if err := k.Start(ctx); err != nil {
		t.Fatalf("harmoniatest: start a killable server: %v", err)
	}
	u, err := url.Parse(k.URI())
	if err != nil {
		t.Fatal(err)
	}
	k.addr = u.Host
	t.Cleanup(func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.proc != nil {
			if err := k.proc.stop(); err != nil {
				t.Errorf("harmoniatest: stop the killable server: %v", err)
			}
		}
	})
	return k
}

// URI returns the server's connection string; it stays the same across
// restarts.
func (k *Killable) URI() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.uri
}

// Dir returns the server's data directory.
func (k *Killable) Dir() string { return k.dir }

// Kill kills the server with SIGKILL and waits until it is gone. Killing
// a server that is down does nothing.
func (k *Killable) Kill() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil {
		return nil
	}
	err := k.proc.kill()
	k.proc = nil
	return err
}

// Start starts the server that is down again, on the same address and
// directory. Starting a running server does nothing.
func (k *Killable) Start(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc != nil {
		return nil
	}
	args := append(devdbArgs("", k.dir, k.addr), k.args...)
	return retryStart(ctx, func() error {
		p, err := startDevDB(ctx, k.bin, args, &lockedBuffer{b: &k.log, mu: &k.logMu})
		if err != nil {
			return err
		}
		k.proc, k.uri = p, p.uri
		return nil
	})
}

// Log returns what the server has written to its standard error (its
// warnings) over all its runs.
func (k *Killable) Log() string {
	k.logMu.Lock()
	defer k.logMu.Unlock()
	return k.log.String()
}

// retryStart runs start until it succeeds, for up to 10 seconds: a port
// that was free a moment ago may be taken by another process while a
// server is down.
func retryStart(ctx context.Context, start func() error) error {
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err = start(); err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lockedBuffer is a buffer that a process's output and the test share.
type lockedBuffer struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
