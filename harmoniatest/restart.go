package harmoniatest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/harmonia-ml/harmonia/embedded"
)

// Restartable is an embedded server of the test's own, of the lane's
// topology, that the test can stop and start again on the same address
// with the same data: what a deployment's restart looks like to a client.
// Create it with [RestartableServer].
type Restartable struct {
	replSet, dir, addr string
	inProcess          bool
	bin                string // harmonia-devdb, in process mode

	mu   sync.Mutex
	uri  string
	stop func() error // nil while stopped
}

// RestartableServer starts an embedded server for t alone, in the lane's
// topology (replica set or standalone) and where the lane runs its server
// (in this process or as a harmonia-devdb process), with its data in a
// directory of t's. The server stops when t ends. It skips t on lanes that
// are not embedded: harmoniatest cannot restart a deployment it did not
// start.
func RestartableServer(t testing.TB) *Restartable {
	t.Helper()
	lane := CurrentLane(t)
	if !lane.Embedded {
		t.Skipf("restarts only an embedded server; lane %q is not embedded", lane.Name)
	}
	_, replSet, err := embeddedTopology(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	r := &Restartable{replSet: replSet, dir: t.TempDir(), inProcess: embeddedInProcess(os.Getenv), addr: "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if !r.inProcess {
		var remove func() error
		r.bin, remove, err = buildDevDB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := remove(); err != nil {
				t.Error(err)
			}
		})
	}
	if err := r.start(ctx); err != nil {
		t.Fatalf("harmoniatest: start a restartable server: %v", err)
	}
	// Later starts listen where the first one did, so that clients find
	// the server again.
	u, err := url.Parse(r.uri)
	if err != nil {
		t.Fatal(err)
	}
	r.addr = u.Host
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("harmoniatest: stop the restartable server: %v", err)
		}
	})
	return r
}

// URI returns the server's connection string; it stays the same across
// restarts.
func (r *Restartable) URI() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.uri
}

// Stop stops the server, keeping its data; clients' commands fail until
// [Restartable.Start]. Stopping a stopped server does nothing.
func (r *Restartable) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop == nil {
		return nil
	}
	err := r.stop()
	r.stop = nil
	return err
}

// Start starts the stopped server again on the same address with the same
// data. Starting a running server does nothing.
func (r *Restartable) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		return nil
	}
	return retryStart(ctx, func() error { return r.start(ctx) })
}

// start starts the server; r.mu is held (or r not yet shared).
func (r *Restartable) start(ctx context.Context) error {
	if r.inProcess {
		srv, err := embedded.Start(ctx, embedded.Options{Dir: r.dir, Addr: r.addr, ReplicaSet: r.replSet})
		if err != nil {
			return err
		}
		r.uri, r.stop = srv.URI(), srv.Close
		return nil
	}
	uri, stop, err := runDevDB(ctx, r.bin, devdbArgs(r.replSet, r.dir, r.addr))
	if err != nil {
		return err
	}
	if r.uri != "" && uri != r.uri {
		return errors.Join(fmt.Errorf("restarted at %s, not %s", uri, r.uri), stop())
	}
	r.uri, r.stop = uri, stop
	return nil
}
