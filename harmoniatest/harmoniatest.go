package harmoniatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/embedded"
	"github.com/harmonia-ml/harmonia/migrate"
)

// Environment variables that choose the lane; see the package documentation.
const (
	EnvMongoDBURI    = "HARMONIA_TEST_MONGODB_URI"
	EnvMongodBin     = "MEMONGO_MONGOD_BIN"
	EnvMongodVersion = "HARMONIA_TEST_MONGOD_VERSION"
)

// EnvEmbeddedTopology chooses the embedded lane's server: "replset" (a
// one-member replica set, with transactions: lane "embedded-replset") or
// "standalone" (without: lane "embedded"). Defaults to "replset", the
// closer to a production deployment.
const EnvEmbeddedTopology = "HARMONIA_TEST_EMBEDDED_TOPOLOGY"

// Lane names, the values of [Lane.Name].
const (
	LaneURI      = "uri"
	LaneMongod   = "mongod"
	LaneEmbedded = "embedded"
	// LaneEmbeddedReplSet is the embedded server as a one-member replica
	// set, with transactions.
	LaneEmbeddedReplSet = "embedded-replset"
)

// Lane describes the server the tests of this binary run against.
type Lane struct {
	// Name is LaneURI, LaneMongod, LaneEmbedded or LaneEmbeddedReplSet.
	Name string
	// Embedded reports either embedded lane: harmonia's embedded server,
	// whose reads scan their collection (see package embedded), so tests
	// keep collections small there.
	Embedded bool
	// URI is the connection string of the server.
	URI string
	// Transactions reports whether the deployment runs multi-document
	// transactions: a replica set or a sharded cluster.
	Transactions bool
	// Validators reports whether the server enforces $jsonSchema
	// validators (create and collMod with a validator).
	Validators bool
	// ServerClock reports whether the server evaluates $$NOW, so that
	// job leases are measured on its clock ([harmonia.LeaseClock]).
	ServerClock bool
}

// startTimeout bounds the start of the shared server, a mongod download
// included.
const startTimeout = 10 * time.Minute

// server is a connected lane.
type server struct {
	lane   Lane
	client *mongo.Client
	stop   func() error // stops what the lane started; nil when it started nothing
}

// shared is the server of this test binary, started on first use.
var shared struct {
	once sync.Once
	srv  *server
	err  error
}

// sharedServer returns the shared server, starting it on first use, and
// fails t when it cannot be had.
func sharedServer(t testing.TB) *server {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared.srv, shared.err = openServer(ctx, os.Getenv)
		if shared.err == nil {
			l := shared.srv.lane
			where := ""
			if l.Name == LaneEmbedded || l.Name == LaneEmbeddedReplSet {
				where = " server=inprocess"
				if !embeddedInProcess(os.Getenv) {
					where = " server=process"
				}
			}
			fmt.Printf("harmoniatest: lane=%s transactions=%t validators=%t server_clock=%t uri=%s%s\n",
				l.Name, l.Transactions, l.Validators, l.ServerClock, redact(l.URI), where)
		}
	})
	if shared.err != nil {
		t.Fatalf("harmoniatest: no test server: %v", shared.err)
	}
	return shared.srv
}

// openServer picks the lane from the environment (read through getenv),
// starts what it needs and connects to it.
func openServer(ctx context.Context, getenv func(string) string) (_ *server, err error) {
	s := &server{}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("lane %s: %w", s.lane.Name, err), s.close())
		}
	}()

	switch {
	case getenv(EnvMongoDBURI) != "":
		s.lane = Lane{Name: LaneURI, URI: getenv(EnvMongoDBURI)}
	case getenv(EnvMongodBin) != "" || getenv(EnvMongodVersion) != "":
		s.lane.Name = LaneMongod
		s.lane.URI, s.stop, err = startMongod(ctx, getenv)
		if err != nil {
			return nil, err
		}
	default:
		var replSet string
		s.lane.Embedded = true
		s.lane.Name, replSet, err = embeddedTopology(getenv)
		if err != nil {
			return nil, err
		}
		if !embeddedInProcess(getenv) {
			s.lane.URI, s.stop, err = startEmbeddedProcess(ctx, replSet)
			if err != nil {
				return nil, err
			}
			break
		}
		var srv *embedded.Server
		srv, err = embedded.Start(ctx, embedded.Options{InMemory: true, ReplicaSet: replSet})
		if err != nil {
			return nil, err
		}
		s.lane.URI, s.stop = srv.URI(), srv.Close
	}

	s.client, err = mongo.Connect(options.Client().ApplyURI(s.lane.URI))
	if err != nil {
		return nil, err
	}
	caps, err := harmonia.DetectCapabilities(ctx, s.client.Database("harmoniatest_probe"))
	if err != nil {
		return nil, err
	}
	s.lane.Transactions, s.lane.Validators, s.lane.ServerClock = caps.Transactions, caps.Validators, caps.ServerClock
	return s, nil
}

// embeddedTopology returns the embedded lane's name and replica set name
// as EnvEmbeddedTopology chooses them.
func embeddedTopology(getenv func(string) string) (lane, replSet string, err error) {
	switch v := getenv(EnvEmbeddedTopology); v {
	case "", "replset":
		return LaneEmbeddedReplSet, replicaSetName, nil
	case "standalone":
		return LaneEmbedded, "", nil
	default:
		return "", "", fmt.Errorf("%s=%q: want replset or standalone", EnvEmbeddedTopology, v)
	}
}

// close disconnects from the server and stops what the lane started.
func (s *server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if s.client != nil {
		errs = append(errs, s.client.Disconnect(ctx))
	}
	if s.stop != nil {
		errs = append(errs, s.stop())
	}
	return errors.Join(errs...)
}

// helloReply holds the fields of the hello command this package reads.
type helloReply struct {
	IsWritablePrimary bool `bson:"isWritablePrimary"`
}

func hello(ctx context.Context, client *mongo.Client) (helloReply, error) {
	var h helloReply
	err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&h)
	if err != nil {
		return h, fmt.Errorf("hello: %w", err)
	}
	return h, nil
}

// redact hides the password of a connection string.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		return uri
	}
	return u.Redacted()
}

// CurrentLane returns the lane of this test binary, starting its server if
// no test has yet.
func CurrentLane(t testing.TB) Lane {
	t.Helper()
	return sharedServer(t).lane
}

// RequireTransactions skips t unless the lane runs multi-document
// transactions.
func RequireTransactions(t testing.TB) {
	t.Helper()
	if lane := CurrentLane(t); !lane.Transactions {
		t.Skipf("needs a MongoDB deployment with transactions (replica set or mongos); lane %q has none — run with %s=replset or set %s to a replica set",
			lane.Name, EnvEmbeddedTopology, EnvMongoDBURI)
	}
}

// RequireStandalone skips t unless the lane lacks multi-document
// transactions, for tests of what happens on such a deployment.
func RequireStandalone(t testing.TB) {
	t.Helper()
	if lane := CurrentLane(t); lane.Transactions {
		t.Skipf("needs a deployment without transactions; lane %q has them — run with %s=standalone", lane.Name, EnvEmbeddedTopology)
	}
}

// RequireValidators skips t unless the lane enforces $jsonSchema
// validators.
func RequireValidators(t testing.TB) {
	t.Helper()
	if lane := CurrentLane(t); !lane.Validators {
		t.Skipf("needs a server with $jsonSchema validators; lane %q has none", lane.Name)
	}
}

// RequireServerClock skips t unless the lane's server evaluates $$NOW,
// so that job leases can be measured on its clock.
func RequireServerClock(t testing.TB) {
	t.Helper()
	if lane := CurrentLane(t); !lane.ServerClock {
		t.Skipf("needs a server that evaluates $$NOW (MongoDB 4.2 or later, or the embedded server); lane %q has none", lane.Name)
	}
}

// Database returns a new database on the shared server, named after the
// test (see the package documentation) and dropped when the test and its
// subtests end. Every call returns a different database.
func Database(t testing.TB) *mongo.Database {
	t.Helper()
	return freshDatabase(t, sharedServer(t).client)
}

// freshDatabase returns a uniquely named database of client, dropped at
// the end of t.
func freshDatabase(t testing.TB, client *mongo.Client) *mongo.Database {
	t.Helper()
	db := client.Database(databaseName(t.Name()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Errorf("harmoniatest: drop database %s: %v", db.Name(), err)
		}
	})
	return db
}

// databaseName returns "t_" + the test name with every character but
// letters and digits turned to '_', cut to 40 characters, + "_" + 12
// random hex digits: at most 55 characters, valid on MongoDB and on the
// embedded server (63 characters of [A-Za-z0-9_-]), unique across
// processes sharing one deployment.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range testName {
		if b.Len() == 2+40 {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var random [6]byte
	_, _ = rand.Read(random[:]) // never fails (crypto/rand)
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(random[:]))
	return b.String()
}

// Main runs the tests, stops the server this package started, if any, and
// exits with the tests' status. Call it from TestMain:
//
//	func TestMain(m *testing.M) { harmoniatest.Main(m) }
//
// The lane is printed when the first test starts the server.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.close(); err != nil {
			fmt.Fprintf(os.Stderr, "harmoniatest: stopping lane %s: %v\n", shared.srv.lane.Name, err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Store returns a Store on a new database (see [Database]) that the
// migrate package's built-in migrations have set up: its indexes and
// validators exist, as in a deployment, so duplicates are refused. opts
// are the Store's options; nil takes every default. It fails t when the
// migrations or Open fail.
func Store(t testing.TB, opts *harmonia.Options) *harmonia.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	db := Database(t)
	r, err := migrate.New(db, migrate.Builtin(), nil)
	if err != nil {
		t.Fatalf("harmoniatest: migrations: %v", err)
	}
	if _, err := r.Up(ctx, nil); err != nil {
		t.Fatalf("harmoniatest: run the built-in migrations: %v", err)
	}
	s, err := harmonia.Open(ctx, db, opts)
	if err != nil {
		t.Fatalf("harmoniatest: open the store: %v", err)
	}
	return s
}
