package embedded

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/gofrs/flock"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// AddrDefault is the front's listen address when [Options.Addr] is empty:
// a free loopback port.
const AddrDefault = "127.0.0.1:0"

// lockFileName is the lock file [Start] holds in a named data directory.
const lockFileName = "harmonia-embedded.lock"

// ErrDirInUse is wrapped by the error [Start] returns when another live
// [Server], in this process or another, holds the data directory.
var ErrDirInUse = errors.New("embedded: data directory is in use by another server")

// Options configures [Start].
type Options struct {
	// Dir is the data directory, created if missing. Data in a named Dir
	// survives Close and is served again by a later Start on the same Dir.
	// Only one live Server may use a Dir at a time (see [ErrDirInUse]).
	// Defaults to a new temporary directory that Close removes, written
	// without fsync since its data does not outlive the Server.
	Dir string

	// InMemory keeps the data in memory where the system allows it, for
	// tests: in a temporary directory on a RAM-backed filesystem (/dev/shm
	// on Linux), else in the ordinary temporary directory. Either way the
	// data is written without fsync and removed by Close. It cannot be
	// combined with Dir. Defaults to false.
	//
	// FerretDB's own in-memory SQLite mode is not used: it allows one
	// SQLite connection per database, and findAndModify, which needs two,
	// hangs there.
	InMemory bool

	// Addr is the TCP address the server listens on for clients.
	// Defaults to AddrDefault, a free loopback port; see [Server.URI].
	Addr string

	// ReplicaSet, when set, is the name of a one-member replica set (such
	// as "rs0") whose primary the server says it is, with multi-document
	// transactions (see "Replica-set mode" in the package documentation).
	// [Server.URI] then names the set. Defaults to "", a standalone server.
	ReplicaSet string

	// TransactionLifetime is how long a transaction may run before the
	// server aborts it, as MongoDB's transactionLifetimeLimitSeconds.
	// Only the replica-set mode has transactions. Defaults to
	// TransactionLifetimeDefault, MongoDB's 60 seconds.
	TransactionLifetime time.Duration

	// TransactionWait is how long a command waits behind another session's
	// transaction that holds a collection it needs before that transaction
	// is aborted (its next command then fails with NoSuchTransaction and
	// the TransientTransactionError label, as a write conflict does on
	// MongoDB). Defaults to TransactionWaitDefault.
	TransactionWait time.Duration

	// NoJournal turns off the journal that makes the replica-set mode's
	// transactions crash-atomic in a named Dir (see "Durability and crash
	// recovery" in the package documentation). Without it a transaction
	// is all-or-nothing only while the process lives: a crash or kill
	// during one leaves whatever part of it reached storage, for good.
	// It saves one synced append per write command in a transaction and
	// per commit. A journal left by an earlier server is still applied
	// at start. Only the replica-set mode with a named Dir journals.
	// Defaults to false.
	NoJournal bool

	// Now is the server's clock: the time $$NOW evaluates to (see
	// "Server time" in the package documentation). Tests set it to a
	// clock that disagrees with their clients'. Defaults to time.Now.
	Now func() time.Time

	// ramDir replaces ramDirDefault, for tests.
	ramDir string

	// Logger receives the server's logs, FerretDB's included. FerretDB
	// logs every connection at Info and every failed command at Warn;
	// both are lowered to Debug, so that below Debug only its errors show.
	// Defaults to discarding everything.
	Logger *slog.Logger
}

// Server is a running embedded server. Create it with [Start] and stop it
// with [Server.Close].
type Server struct {
	uri     string
	front   *front
	stop    context.CancelFunc
	runDone chan error
	lock    *flock.Flock
	remove  []string // temporary directories removed on Close

	closeOnce sync.Once
	closeErr  error
}

// newMu serializes calls to ferretdb.New, which writes package-level state.
var newMu sync.Mutex

// Start starts a server and returns once it accepts connections at
// [Server.URI]. ctx bounds the start only; the server runs until Close.
//
// Start fails with an error wrapping [ErrDirInUse] when opts.Dir is held by
// another live server.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.InMemory && opts.Dir != "" {
		return nil, errors.New("embedded: Options.InMemory and Options.Dir are exclusive; set one of them")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: start: %w", err)
	}

	s := &Server{runDone: make(chan error, 1)}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.cleanup())
		}
	}()

	sqliteURL, dataDir, err := s.prepareData(opts)
	if err != nil {
		return nil, err
	}
	validators, err := loadValidators(dataDir)
	if err != nil {
		return nil, err
	}

	sockDir, err := os.MkdirTemp("", "harmonia-embedded-sock-") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	s.remove = append(s.remove, sockDir)

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cmp.Or(opts.Addr, AddrDefault))
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}

	listener := backendListener(filepath.Join(sockDir, "ferretdb.sock"))
	newMu.Lock()
	fdb, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Logger:    slog.New(quieter{logger.Handler()}).With("component", "ferretdb"),
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	newMu.Unlock()
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("embedded: start FerretDB: %w", err)
	}

	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go func() { s.runDone <- fdb.Run(runCtx) }()

	network, addr := "unix", listener.Unix
	if addr == "" {
		network, addr = "tcp", fdbTCPAddr(fdb)
	}
	dial := func() (net.Conn, error) {
		return net.DialTimeout(network, addr, 10*time.Second)
	}
	jr, err := startJournal(opts, dataDir, dial, logger)
	if err != nil {
		_ = ln.Close()
		stop()
		return nil, errors.Join(err, <-s.runDone)
	}
	tcpAddr := ln.Addr().(*net.TCPAddr)
	s.front = newFront(ln, dial, logger, frontConfig{
		replSet:     opts.ReplicaSet,
		host:        clientHost(tcpAddr),
		txnLifetime: opts.TransactionLifetime,
		txnWait:     opts.TransactionWait,
		electionID:  bson.NewObjectID(),
		now:         opts.Now,
		journal:     jr,
		dataDir:     dataDir,
	}, validators)
	s.uri = "mongodb://" + clientHost(tcpAddr) + "/"
	if opts.ReplicaSet != "" {
		s.uri += "?replicaSet=" + url.QueryEscape(opts.ReplicaSet)
	}
	logger.Info("embedded: serving", "uri", s.uri, "sqlite", sqliteURL)
	return s, nil
}

// ramDirDefault is where InMemory servers keep their data: a RAM-backed
// filesystem on Linux. Elsewhere, or when it is not writable, they use the
// temporary directory. Tests set Options.ramDir instead.
const ramDirDefault = "/dev/shm"

// prepareData readies the data directory and returns FerretDB's SQLite URL
// for it and the directory.
func (s *Server) prepareData(opts Options) (string, string, error) {
	dir, query := opts.Dir, ""
	if dir == "" {
		// Data that Close throws away needs no fsync; it makes writes
		// about twice as fast.
		query = "_pragma=synchronous(off)"
		base := ""
		if opts.InMemory {
			base = cmp.Or(opts.ramDir, ramDirDefault)
		}
		tmp, err := os.MkdirTemp(base, "harmonia-embedded-data-")
		if err != nil && base != "" {
			tmp, err = os.MkdirTemp("", "harmonia-embedded-data-")
		}
		if err != nil {
			return "", "", fmt.Errorf("embedded: %w", err)
		}
		s.remove = append(s.remove, tmp)
		dir = tmp
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("embedded: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("embedded: %w", err)
	}
	lock := flock.New(filepath.Join(dir, lockFileName))
	locked, err := lock.TryLock()
	if err != nil {
		return "", "", fmt.Errorf("embedded: lock %s: %w", dir, err)
	}
	if !locked {
		return "", "", fmt.Errorf("%w: %s", ErrDirInUse, dir)
	}
	s.lock = lock
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(dir) + "/", RawQuery: query}
	return u.String(), dir, nil
}

// backendListener puts FerretDB on a Unix socket in a private (0700)
// directory, where nothing but the front can reach it, or on a loopback
// TCP port where Unix sockets are unavailable.
func backendListener(sock string) ferretdb.ListenerConfig {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return ferretdb.ListenerConfig{TCP: "127.0.0.1:0"}
	}
	_ = ln.Close() // removes the socket file; FerretDB creates its own
	return ferretdb.ListenerConfig{Unix: sock}
}

// fdbTCPAddr returns the host:port FerretDB listens on.
func fdbTCPAddr(fdb *ferretdb.FerretDB) string {
	u, err := url.Parse(fdb.MongoDBURI())
	if err != nil {
		return ""
	}
	return u.Host
}

// clientHost returns the host:port clients dial for the front at addr, a
// loopback address when it listens on every interface.
func clientHost(addr *net.TCPAddr) string {
	ip := addr.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(addr.Port))
}

// URI returns the MongoDB connection string of the server,
// mongodb://127.0.0.1:PORT/ by default, and
// mongodb://127.0.0.1:PORT/?replicaSet=NAME in the replica-set mode.
func (s *Server) URI() string { return s.uri }

// Close stops the server: it closes its listener and every client
// connection, stops FerretDB, waits for all goroutines it started, releases
// the data directory and removes the temporary directory, if any. Close is
// safe to call more than once; later calls return the first one's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.front != nil {
			s.front.close()
		}
		s.stop()
		s.closeErr = <-s.runDone
		if err := s.cleanup(); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

// cleanup releases the directory lock and removes temporary directories.
func (s *Server) cleanup() error {
	var errs []error
	if s.lock != nil {
		errs = append(errs, s.lock.Unlock())
	}
	for _, dir := range s.remove {
		errs = append(errs, os.RemoveAll(dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("embedded: close: %w", err)
	}
	return nil
}

// quieter lowers FerretDB's Info and Warn records to Debug: it logs every
// connection at Info and every failed command, with its whole reply, at
// Warn. A failed command is the client's business; the driver reports it.
type quieter struct{ h slog.Handler }

func (q quieter) Enabled(ctx context.Context, l slog.Level) bool {
	return q.h.Enabled(ctx, lower(l))
}

func (q quieter) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lower(r.Level)
	return q.h.Handle(ctx, r)
}

func (q quieter) WithAttrs(attrs []slog.Attr) slog.Handler { return quieter{q.h.WithAttrs(attrs)} }
func (q quieter) WithGroup(name string) slog.Handler       { return quieter{q.h.WithGroup(name)} }

func lower(l slog.Level) slog.Level {
	if slog.LevelDebug < l && l < slog.LevelError {
		return slog.LevelDebug
	}
	return l
}
