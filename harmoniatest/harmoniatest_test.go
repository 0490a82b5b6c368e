package harmoniatest

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia/embedded"
)

func TestMain(m *testing.M) { Main(m) }

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// env returns a getenv that sees only vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_]{1,63}$`)

func TestDatabaseNames(t *testing.T) {
	for _, name := range []string{
		"TestX",
		"TestSomething/with spaces, dots. and ünïcode",
		strings.Repeat("TestVeryLong/", 20),
	} {
		a, b := databaseName(name), databaseName(name)
		assert.Regexp(t, validName, a)
		assert.NotEqual(t, a, b)
	}
	assert.True(t, strings.HasPrefix(databaseName("TestA/b c"), "t_TestA_b_c_"), databaseName("TestA/b c"))
}

func TestDatabase(t *testing.T) {
	ctx := ctxTimeout(t)
	var names []string
	t.Run("inner", func(t *testing.T) {
		for range 2 {
			db := Database(t)
			assert.Regexp(t, validName, db.Name())
			_, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
			require.NoError(t, err)
			names = append(names, db.Name())
		}
		require.NotEqual(t, names[0], names[1])
		all, err := Database(t).Client().ListDatabaseNames(ctx, bson.D{})
		require.NoError(t, err)
		assert.Subset(t, all, names, "databases exist during the test")
	})

	all, err := Database(t).Client().ListDatabaseNames(ctx, bson.D{})
	require.NoError(t, err)
	for _, name := range names {
		assert.NotContains(t, all, name, "dropped after the test")
	}
}

func TestCountingDatabase(t *testing.T) {
	ctx := ctxTimeout(t)
	db, counter := CountingDatabase(t)
	coll := db.Collection("c")

	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	require.NoError(t, err)
	require.NoError(t, coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Err())
	require.NoError(t, db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()) // not counted

	assert.Equal(t, map[string]int{"insert": 1, "find": 1}, counter.Counts())
	assert.Equal(t, 1, counter.Count("insert"))
	assert.Equal(t, 1, counter.Count("find"))
	assert.Equal(t, 2, counter.Total())
	assert.Equal(t, []string{"find", "insert"}, counter.Names())

	counter.Reset()
	assert.Zero(t, counter.Total())
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "y", Value: 2}}}})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"update": 1}, counter.Counts())
}

func TestCurrentLane(t *testing.T) {
	lane := CurrentLane(t)
	assert.Contains(t, []string{LaneURI, LaneMongod, LaneEmbedded, LaneEmbeddedReplSet}, lane.Name)
	assert.NotEmpty(t, lane.URI)
	switch lane.Name {
	case LaneMongod, LaneEmbeddedReplSet:
		assert.True(t, lane.Transactions, "a replica set runs transactions")
		assert.True(t, lane.Validators)
	case LaneEmbedded:
		assert.False(t, lane.Transactions)
		assert.True(t, lane.Validators)
	}
	assert.Equal(t, lane.Name == LaneEmbedded || lane.Name == LaneEmbeddedReplSet, lane.Embedded)
}

func TestRequireTransactions(t *testing.T) {
	lane := CurrentLane(t)
	skipped := true
	t.Run("inner", func(t *testing.T) {
		RequireTransactions(t)
		skipped = false
	})
	assert.Equal(t, !lane.Transactions, skipped)
}

func TestOpenServerURI(t *testing.T) {
	ctx := ctxTimeout(t)
	srv, err := embedded.Start(ctx, embedded.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })

	s, err := openServer(ctx, env(map[string]string{
		EnvMongoDBURI: srv.URI(),
		EnvMongodBin:  "/nonexistent/mongod", // the URI wins
	}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.close()) })

	assert.Equal(t, Lane{Name: LaneURI, URI: srv.URI(), Transactions: false, Validators: true, ServerClock: true}, s.lane)
	require.NoError(t, s.client.Ping(ctx, nil))
}

func TestOpenServerEmbedded(t *testing.T) {
	for topology, want := range map[string]Lane{
		"":           {Name: LaneEmbeddedReplSet, Embedded: true, Transactions: true, Validators: true, ServerClock: true},
		"replset":    {Name: LaneEmbeddedReplSet, Embedded: true, Transactions: true, Validators: true, ServerClock: true},
		"standalone": {Name: LaneEmbedded, Embedded: true, Transactions: false, Validators: true, ServerClock: true},
	} {
		t.Run("topology="+topology, func(t *testing.T) {
			testOpenServerEmbedded(t, topology, want)
		})
	}
	_, err := openServer(ctxTimeout(t), env(map[string]string{EnvEmbeddedTopology: "sharded"}))
	assert.ErrorContains(t, err, EnvEmbeddedTopology)
}

func testOpenServerEmbedded(t *testing.T, topology string, want Lane) {
	ctx := ctxTimeout(t)
	s, err := openServer(ctx, env(map[string]string{EnvEmbeddedTopology: topology}))
	require.NoError(t, err)
	want.URI = s.lane.URI
	assert.Equal(t, want, s.lane)
	require.NoError(t, s.client.Ping(ctx, nil))

	require.NoError(t, s.close())
	u, err := url.Parse(s.lane.URI)
	require.NoError(t, err)
	_, err = net.DialTimeout("tcp", u.Host, time.Second)
	assert.Error(t, err, "the embedded server still listens after close")
}

// TestOpenServerMongodStandIn runs the mongod lane's own code (start,
// replSetInitiate, waiting for the primary, stop and clean-up) against
// internal/fakemongod, a stand-in that takes mongod's flags and serves the
// embedded replica-set mode: no mongod binary can be had here.
func TestOpenServerMongodStandIn(t *testing.T) {
	ctx := ctxTimeout(t)
	bin := filepath.Join(t.TempDir(), "mongod")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/harmonia-ml/harmonia/harmoniatest/internal/fakemongod").CombinedOutput()
	require.NoError(t, err, "%s", out)

	dataDirs := func() []string {
		dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "harmoniatest-mongod-*"))
		require.NoError(t, err)
		return dirs
	}
	before := dataDirs()
	s, err := openServer(ctx, env(map[string]string{EnvMongodBin: bin}))
	require.NoError(t, err)
	require.Len(t, dataDirs(), len(before)+1, "the lane's data directory")
	assert.Equal(t, LaneMongod, s.lane.Name)
	assert.True(t, s.lane.Transactions)
	assert.True(t, s.lane.Validators)
	assert.False(t, s.lane.Embedded)
	u, err := url.Parse(s.lane.URI)
	require.NoError(t, err)

	// A transaction commits through the lane's client.
	coll := s.client.Database("standin").Collection("c")
	sess, err := s.client.StartSession()
	require.NoError(t, err)
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		return coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
	})
	sess.EndSession(ctx)
	require.NoError(t, err)
	n, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)

	require.NoError(t, s.close())
	_, err = net.DialTimeout("tcp", u.Host, time.Second)
	assert.Error(t, err, "the stand-in still listens after stop")
	assert.Equal(t, before, dataDirs(), "the lane's data directory is removed")
}

// A mongod that cannot be had fails fast and says why.
func TestOpenServerMongodChosen(t *testing.T) {
	ctx := ctxTimeout(t)
	for name, vars := range map[string]map[string]string{
		"binary":  {EnvMongodBin: "/nonexistent/mongod"},
		"version": {EnvMongodVersion: "not-a-version"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := openServer(ctx, env(vars))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "lane mongod")
			for _, v := range vars {
				assert.Contains(t, err.Error(), v)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "mongodb://user:xxxxx@db.example:27017/?replicaSet=rs0", redact("mongodb://user:secret@db.example:27017/?replicaSet=rs0"))
	assert.Equal(t, "mongodb://127.0.0.1:1234/", redact("mongodb://127.0.0.1:1234/"))
}
