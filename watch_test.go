package harmonia_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/testenv"
)

// watched collects what a watch yields in a goroutine of its own until
// it has seen the move with seq until, or ctx ends.
type watched struct {
	events []harmonia.AliasEvent
	errs   atomic.Int64
	// first is closed when the first event arrived; done when the watch
	// ended.
	first, done chan struct{}
}

func watch(ctx context.Context, s *harmonia.Store, name string, until int64) *watched {
	w := &watched{first: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ev, err := range s.WatchAlias(ctx, name, &harmonia.WatchOpts{Interval: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond}) {
			if err != nil {
				w.errs.Add(1)
				continue
			}
			w.events = append(w.events, ev)
			if len(w.events) == 1 {
				close(w.first)
			}
			if ev.Seq >= until {
				return
			}
		}
	}()
	return w
}

// TestWatchAliasSeesEachMoveOnceThroughErrors: a watcher started after
// the first move yields it as the initial event, then each of 50 more
// moves once, in order, although its finds keep failing with a transient
// error (HostUnreachable, from the failCommand fail point on the
// watcher's own client) while the moves happen. failPointStore makes it
// the fail point's one owner while it runs.
func TestWatchAliasSeesEachMoveOnceThroughErrors(t *testing.T) {
	t.Parallel()
	watcher, failPoint, _ := failPointStore(t)
	mover := setupOn(t, harmoniatest.Database(t).Client().Database(watcher.db.Name()))
	w := watchMoves(t, mover, watcher, func(_ context.Context, i int, _ *watched) {
		if i%10 == 0 {
			failPoint(bson.D{{Key: "times", Value: 3}}, bson.D{
				{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: 6}})
		}
	})
	t.Logf("%d polls failed", w.errs.Load())
	require.Positive(t, w.errs.Load(), "the fail point made some polls fail")
}

// watchedMoves is how many moves watchMoves makes.
const watchedMoves = 50

// watchMoves publishes v0, v1 and v2 with mover, points "production" at
// v0, starts a watch of it with watcher, then moves it watchedMoves times
// (v1, v2, v0, …), calling before ahead of each move. It checks that the
// watch saw the initial event then each move once, in order, and returns
// it.
func watchMoves(t *testing.T, mover, watcher *bundle, before func(ctx context.Context, i int, w *watched)) *watched {
	t.Helper()
	mover.versions(t, "v0", "v1", "v2")
	_, err := mover.store.SetAlias(mover.ctx, "production", "v0", by("init"))
	require.NoError(t, err)

	// No deadline on ctx: with one, the driver retries a failed find
	// until the deadline and the watch would never see an error.
	ctx, cancel := context.WithCancel(watcher.ctx)
	defer cancel()
	timeout := time.AfterFunc(3*time.Minute, cancel)
	defer timeout.Stop()
	w := watch(ctx, watcher.store, "production", 1+watchedMoves)
	<-w.first
	for i := range watchedMoves {
		before(ctx, i, w)
		_, err := mover.store.SetAlias(mover.ctx, "production", fmt.Sprintf("v%d", (i+1)%3), by(fmt.Sprint(i)))
		require.NoError(t, err)
		if i%7 == 0 {
			time.Sleep(10 * time.Millisecond) // let the watcher poll between some of the moves
		}
	}
	<-w.done
	require.NoError(t, ctx.Err(), "the watcher did not see every move")
	require.Len(t, w.events, 1+watchedMoves)
	require.True(t, w.events[0].Initial)
	require.Equal(t, "v0", w.events[0].To)
	for i, ev := range w.events {
		require.Equal(t, int64(i+1), ev.Seq, "event %d", i)
		if i > 0 {
			require.False(t, ev.Initial)
			require.Equal(t, fmt.Sprint(i-1), ev.By)
			require.Equal(t, fmt.Sprintf("v%d", i%3), ev.To)
			require.Equal(t, w.events[i-1].To, ev.From)
		}
	}
	return w
}

// TestWatchAliasThroughServerRestart: a watcher sees each of 50 moves
// once, in order, although the server stops (the watcher's polls fail
// meanwhile) and starts again on the same address and data after the
// 25th. The server is the test's own, of the lane's topology.
func TestWatchAliasThroughServerRestart(t *testing.T) {
	t.Parallel()
	srv := harmoniatest.RestartableServer(t)
	connect := func(selection time.Duration) *mongo.Database {
		c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetServerSelectionTimeout(selection))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
		return c.Database("watch_restart")
	}
	mover := setupOn(t, connect(time.Minute))
	watcher := setupOn(t, connect(500*time.Millisecond)) // polls fail fast while the server is down
	w := watchMoves(t, mover, watcher, func(ctx context.Context, i int, w *watched) {
		if i == watchedMoves/2 {
			require.NoError(t, srv.Stop())
			for w.errs.Load() == 0 && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond) // until a poll has failed
			}
			require.NoError(t, srv.Start(ctx))
		}
	})
	t.Logf("%d polls failed while the server was down", w.errs.Load())
}

// TestWatchAliasStartsEmptyAndEndsWithContext: a watch of an alias that
// does not exist yet yields its first move (not as initial), a deletion
// as a move to nothing, and stops when ctx ends.
func TestWatchAliasStartsEmptyAndEndsWithContext(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	b := setupOn(t, db)
	b.versions(t, "v1")
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	counter.Reset()
	w := watch(ctx, b.store, "canary", 2)
	// The watch polls one command at a time: once it sent a second, the
	// first has seen the alias absent.
	testenv.WaitWithin(t, time.Minute, "the watch to poll the absent alias", func() bool { return counter.Total() >= 2 })
	_, err := b.store.SetAlias(b.ctx, "canary", "v1", by("a"))
	require.NoError(t, err)
	_, err = b.store.DeleteAlias(b.ctx, "canary", &harmonia.DeleteAliasOpts{By: "b"})
	require.NoError(t, err)
	select {
	case <-w.done:
	case <-time.After(time.Minute):
		t.Fatal("the watch did not see the two moves")
	}
	require.Zero(t, w.errs.Load())
	require.Len(t, w.events, 2)
	require.False(t, w.events[0].Initial)
	require.Equal(t, "v1", w.events[0].To)
	require.Equal(t, "", w.events[1].To)
	require.Equal(t, "b", w.events[1].By)

	// A watch with nothing left to see stops when its context ends.
	ctx2, cancel2 := context.WithCancel(b.ctx)
	w2 := watch(ctx2, b.store, "canary", 1<<62)
	select {
	case <-w2.first:
	case <-time.After(time.Minute):
		t.Fatal("the second watch yielded no initial event")
	}
	cancel2()
	select {
	case <-w2.done:
	case <-time.After(time.Minute):
		t.Fatal("the watch did not stop when its context ended")
	}
	require.True(t, w2.events[0].Initial)
	require.Len(t, w2.events, 1)

	for _, err := range b.store.WatchAlias(b.ctx, "Not Valid", nil) {
		require.ErrorIs(t, err, harmonia.ErrInvalid)
	}
}
