package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/bench"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// EnvNoJournal, set to 1, runs the server without its transaction journal
// (harmonia-devdb -nojournal): the test then shows the torn publishes the
// journal prevents, and fails.
const EnvNoJournal = "HARMONIA_CRASH_NOJOURNAL"

// Sizes of the test: kills during publishes and during imports, the
// artifacts each publish marks among those seeded, and the inventory file
// imported.
const (
	publishKills     = 20
	importKills      = 5
	seededArtifacts  = 300
	publishArtifacts = 200
	importArtifacts  = 300
	importVersions   = 3
	// A kill comes after 1 to this many commands of the victim's client:
	// a Publish sends 7, an import of the file about 40 (each gets its
	// kill points spread over it, and over a next one).
	publishCommands = 9
	importCommands  = 45
)

// TestKillDuringPublishAndImport kills the server at many points of
// publishes of hundreds of artifacts and of an import, restarts it on the
// same directory each time and checks that every published version has
// all its artifacts marked, every mark has its version, and every
// acknowledged publish and import is there, whole.
func TestKillDuringPublishAndImport(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a server 25 times; skipped in -short")
	}
	if topo := os.Getenv(harmoniatest.EnvEmbeddedTopology); topo != "" && topo != "replset" {
		t.Skipf("needs the replset lane (transactions); %s=%s is the standalone lane", harmoniatest.EnvEmbeddedTopology, topo)
	}
	args := []string{"-replset", "rs0"}
	if os.Getenv(EnvNoJournal) == "1" {
		args = append(args, "-nojournal")
	}
	srv := harmoniatest.KillableServer(t, args...)
	c := &crasher{t: t, srv: srv, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 21))}

	store, done := c.store("crash", true)
	ids := seed(t, store)
	done()
	_, done = c.store("crashimport", true)
	done()
	for round := range publishKills {
		windows := rand.New(rand.NewPCG(uint64(round), 21))
		c.round(fmt.Sprintf("publish %d", round), "crash", publishCommands, func(ctx context.Context, s *harmonia.Store) {
			for j := 0; ctx.Err() == nil; j++ {
				start := windows.IntN(len(ids) - publishArtifacts + 1)
				req := harmonia.PublishRequest{VersionTag: fmt.Sprintf("r%d.%d", round, j), ArtifactIDs: ids[start : start+publishArtifacts], PublishedBy: "crash"}
				res, err := s.Publish(ctx, req)
				if err != nil {
					return
				}
				c.acked(res.Version.ID, req.ArtifactIDs)
			}
		})
	}

	var file bytes.Buffer
	_, err := bench.GenerateInventory(&file, bench.GenerateOptions{Artifacts: importArtifacts, Versions: importVersions})
	require.NoError(t, err)
	for round := range importKills {
		c.round(fmt.Sprintf("import %d", round), "crashimport", importCommands, func(ctx context.Context, s *harmonia.Store) {
			if _, err := inventoryfile.Import(ctx, s, bytes.NewReader(file.Bytes()), nil); err == nil {
				c.importAcked.Store(true)
			}
		})
	}
	// A last import, not killed, completes what the killed ones began.
	s, done := c.store("crashimport", false)
	defer done()
	_, err = inventoryfile.Import(t.Context(), s, bytes.NewReader(file.Bytes()), nil)
	require.NoError(t, err)
	c.importAcked.Store(true)
	c.check()
	t.Logf("%d kills; %d publishes acknowledged; %d restarts rolled back unfinished transactions",
		publishKills+importKills, len(c.published), strings.Count(srv.Log(), "the last shutdown was not clean"))
	t.Log(srv.Log())
}

// crasher runs the rounds of the test and keeps what the server
// acknowledged.
type crasher struct {
	t   *testing.T
	srv *harmoniatest.Killable
	rng *rand.Rand

	mu          sync.Mutex
	published   map[bson.ObjectID][]bson.ObjectID // acknowledged versions and their artifacts
	importAcked atomic.Bool                       // an import returned without error
}

func (c *crasher) acked(version bson.ObjectID, artifacts []bson.ObjectID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.published == nil {
		c.published = map[bson.ObjectID][]bson.ObjectID{}
	}
	c.published[version] = artifacts
}

// client returns a new client of the server, whose commands call counted
// unless it is nil, and a function that disconnects it.
func (c *crasher) client(counted func()) (*mongo.Client, func()) {
	opts := options.Client().ApplyURI(c.srv.URI()).SetServerSelectionTimeout(2 * time.Second)
	if counted != nil {
		opts.SetMonitor(&event.CommandMonitor{Started: func(context.Context, *event.CommandStartedEvent) { counted() }})
	}
	client, err := mongo.Connect(opts)
	require.NoError(c.t, err)
	return client, func() { _ = client.Disconnect(context.Background()) }
}

// storeCounting returns a Store on database name of a new client (see
// client), and a function that disconnects it. The first Store of a
// database creates its indexes (ensure).
func (c *crasher) storeCounting(name string, ensure bool, counted func()) (*harmonia.Store, func()) {
	client, done := c.client(counted)
	s, err := harmonia.Open(c.t.Context(), client.Database(name), &harmonia.Options{EnsureIndexes: ensure})
	require.NoError(c.t, err)
	return s, done
}

func (c *crasher) store(name string, ensure bool) (*harmonia.Store, func()) {
	return c.storeCounting(name, ensure, nil)
}

// round runs work against database db until the server is killed, after
// a random number (up to maxCommands) of work's commands and a random
// moment more, restarts the server and checks every database.
func (c *crasher) round(name, db string, maxCommands int, work func(ctx context.Context, s *harmonia.Store)) {
	t := c.t
	t0 := time.Now()
	var n atomic.Int64
	var armed atomic.Bool // Open and EnsureIndexes are not the work
	target := int64(1 + c.rng.IntN(maxCommands))
	pause := time.Duration(c.rng.IntN(20_000)) * time.Microsecond
	reached := make(chan struct{})
	s, done := c.storeCounting(db, false, func() {
		if armed.Load() && n.Add(1) == target {
			close(reached)
		}
	})
	defer done()
	armed.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		work(ctx, s)
	}()
	select {
	case <-reached:
		time.Sleep(pause)
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: the work reached no command %d", name, target)
	}
	t1 := time.Now()
	require.NoError(t, c.srv.Kill(), name)
	cancel()
	t2 := time.Now()
	require.NoError(t, c.srv.Start(t.Context()), "%s: restart", name)
	t3 := time.Now()
	// The driver's WithTransaction retries for up to 120 s, through
	// cancellations, and aborts with a context of its own, which waits
	// for a server: a closed client ends it once the server is back.
	done()
	<-finished
	c.check()
	t.Logf("%s: killed after command %d of %d; work %v, kill %v, restart %v, check %v", name, target, n.Load(),
		t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond), time.Since(t3).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}
}

// check checks the invariants on both databases.
func (c *crasher) check() {
	client, done := c.client(nil)
	defer done()
	for _, db := range []string{"crash", "crashimport"} {
		c.checkDB(client.Database(db))
	}
}

type versionDoc struct {
	ID          bson.ObjectID   `bson:"_id"`
	Tag         string          `bson:"version_tag"`
	State       string          `bson:"state"`
	ArtifactIDs []bson.ObjectID `bson:"artifact_ids"`
	DatasetIDs  []bson.ObjectID `bson:"dataset_ids"`
}

type itemDoc struct {
	ID          bson.ObjectID   `bson:"_id"`
	Published   bool            `bson:"published"`
	PublishedIn []bson.ObjectID `bson:"published_in"`
}

// checkDB checks that every published version has every artifact and
// dataset marked (published, with the version in published_in), that
// every mark names a published version, and that every acknowledged
// publish (and import) is there, whole.
func (c *crasher) checkDB(db *mongo.Database) {
	t := c.t
	ctx := t.Context()
	versions := map[bson.ObjectID]versionDoc{}
	for _, v := range all[versionDoc](t, db.Collection(harmonia.CollectionVersions)) {
		versions[v.ID] = v
	}
	for _, coll := range []string{harmonia.CollectionArtifacts, harmonia.CollectionDatasets} {
		items := map[bson.ObjectID]itemDoc{}
		for _, it := range all[itemDoc](t, db.Collection(coll)) {
			items[it.ID] = it
			if it.Published && len(it.PublishedIn) == 0 {
				t.Errorf("%s: %s %s is marked published in no version", db.Name(), coll, it.ID.Hex())
			}
			for _, vid := range it.PublishedIn {
				if v, ok := versions[vid]; !ok || v.State != string(harmonia.VersionPublished) {
					t.Errorf("%s: %s %s is marked published in version %s, which is not there", db.Name(), coll, it.ID.Hex(), vid.Hex())
				}
			}
		}
		unmarked := 0
		for _, v := range versions {
			if v.State != string(harmonia.VersionPublished) {
				continue
			}
			members := v.ArtifactIDs
			if coll == harmonia.CollectionDatasets {
				members = v.DatasetIDs
			}
			n := 0
			for _, id := range members {
				if it, ok := items[id]; !ok || !it.Published || !slices.Contains(it.PublishedIn, v.ID) {
					n++
				}
			}
			if n > 0 {
				t.Errorf("%s: version %s is published with %d of its %d %s not marked", db.Name(), v.Tag, n, len(members), coll)
			}
			unmarked += n
		}
	}
	if db.Name() == "crash" {
		c.mu.Lock()
		defer c.mu.Unlock()
		for id, arts := range c.published {
			v, ok := versions[id]
			if !ok {
				t.Errorf("acknowledged version %s is gone", id.Hex())
				continue
			}
			if !v.sameArtifacts(arts) {
				t.Errorf("acknowledged version %s has other artifacts", v.Tag)
			}
		}
		return
	}
	if c.importAcked.Load() {
		n, err := db.Collection(harmonia.CollectionArtifacts).CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		if n != importArtifacts {
			t.Errorf("an acknowledged import's %d artifacts: %d there", importArtifacts, n)
		}
		tags := 0
		for _, v := range versions {
			if v.State == string(harmonia.VersionPublished) && strings.HasPrefix(v.Tag, "gen.") {
				tags++
			}
		}
		if tags != importVersions {
			t.Errorf("an acknowledged import's %d versions: %d there", importVersions, tags)
		}
	}
}

func (v versionDoc) sameArtifacts(ids []bson.ObjectID) bool {
	a, b := slices.Clone(v.ArtifactIDs), slices.Clone(ids)
	cmp := func(x, y bson.ObjectID) int { return bytes.Compare(x[:], y[:]) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

// all returns every document of coll.
func all[T any](t *testing.T, coll *mongo.Collection) []T {
	t.Helper()
	cur, err := coll.Find(t.Context(), bson.D{})
	require.NoError(t, err)
	var out []T
	require.NoError(t, cur.All(t.Context(), &out))
	return out
}

// seed writes seededArtifacts publishable artifacts under one license and
// returns their ids.
func seed(t *testing.T, s *harmonia.Store) []bson.ObjectID {
	ctx := t.Context()
	lic := &harmonia.License{SPDXID: "MIT", CommercialUse: true}
	require.NoError(t, s.CreateLicense(ctx, lic))
	ids := make([]bson.ObjectID, seededArtifacts)
	docs := make([]any, len(ids))
	now := s.Now()
	for i := range docs {
		ids[i] = bson.NewObjectID()
		docs[i] = &harmonia.ModelArtifact{
			ID: ids[i], SchemaVersion: harmonia.SchemaVersion, Name: fmt.Sprintf("crash-%04d", i), Version: "1.0.0",
			NameKey: harmonia.NameKey(fmt.Sprintf("crash-%04d", i)),
			Path:    fmt.Sprintf("models/crash-%04d.onnx", i), SizeBytes: int64(1000 + i), LicenseID: lic.ID,
			Hashes:    harmonia.Hashes{SHA256: strings.Repeat("ab", 32)},
			CreatedAt: now, UpdatedAt: now,
		}
	}
	_, err := s.Database().Collection(harmonia.CollectionArtifacts).InsertMany(ctx, docs)
	require.NoError(t, err)
	return ids
}
