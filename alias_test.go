package harmonia_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// versions publishes one version per tag, each with an artifact of its
// own.
func (b *bundle) versions(t *testing.T, tags ...string) map[string]*harmonia.InventoryVersion {
	t.Helper()
	lic := b.license(t, "Apache-2.0")
	out := map[string]*harmonia.InventoryVersion{}
	for _, tag := range tags {
		a := validArtifact()
		a.Name, a.LicenseID = "model-"+tag, lic.ID
		require.NoError(t, b.store.CreateArtifact(b.ctx, a))
		res, err := b.store.Publish(b.ctx, harmonia.PublishRequest{VersionTag: tag, ArtifactIDs: []bson.ObjectID{a.ID}, PublishedBy: "x"})
		require.NoError(t, err)
		out[tag] = res.Version
	}
	return out
}

func by(who string) *harmonia.SetAliasOpts { return &harmonia.SetAliasOpts{By: who} }

// history returns the alias's moves as "seq:from->to".
func history(t *testing.T, b *bundle, name string) []string {
	t.Helper()
	moves, err := b.store.AliasHistory(b.ctx, name, harmonia.AliasHistoryFilter{})
	require.NoError(t, err)
	out := make([]string, len(moves))
	for i, m := range moves {
		out[i] = fmt.Sprintf("%d:%s->%s", m.Seq, m.From, m.To)
	}
	return out
}

func TestAliasSetResolveListDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	vs := b.versions(t, "v1", "v2")

	m, err := b.store.SetAlias(b.ctx, "production", "v1", &harmonia.SetAliasOpts{By: "alice", Reason: "first release", ExpectAbsent: true})
	require.NoError(t, err)
	require.Equal(t, int64(1), m.Seq)
	require.Equal(t, vs["v1"].Digest, m.Digest)
	got, err := b.store.ResolveAlias(b.ctx, "production")
	require.NoError(t, err)
	require.Equal(t, vs["v1"].ID, got.ID)

	_, err = b.store.SetAlias(b.ctx, "canary", "v2", by("bob"))
	require.NoError(t, err)
	_, err = b.store.SetAlias(b.ctx, "production", "v2", &harmonia.SetAliasOpts{By: "bob", ExpectVersion: "v1"})
	require.NoError(t, err)
	list, err := b.store.ListAliases(b.ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "canary", list[0].Name)
	require.Equal(t, "production", list[1].Name)
	require.Equal(t, "v2", list[1].VersionTag)
	require.Equal(t, int64(2), list[1].Seq)
	require.Equal(t, "bob", list[1].UpdatedBy)

	moves, err := b.store.AliasHistory(b.ctx, "production", harmonia.AliasHistoryFilter{})
	require.NoError(t, err)
	require.Len(t, moves, 2)
	require.Equal(t, "alice", moves[0].By)
	require.Equal(t, "first release", moves[0].Reason)
	require.Equal(t, b.clock.Now(), moves[0].At)
	require.Equal(t, "v1", moves[1].From)

	_, err = b.store.DeleteAlias(b.ctx, "production", &harmonia.DeleteAliasOpts{By: "carol", ExpectVersion: "v1"})
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.ErrorIs(t, err, harmonia.ErrAliasMoved)
	_, err = b.store.DeleteAlias(b.ctx, "production", &harmonia.DeleteAliasOpts{By: "carol", ExpectVersion: "v2"})
	require.NoError(t, err)
	_, err = b.store.ResolveAlias(b.ctx, "production")
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	_, err = b.store.DeleteAlias(b.ctx, "production", &harmonia.DeleteAliasOpts{By: "carol"})
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	list, err = b.store.ListAliases(b.ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	_, err = b.store.SetAlias(b.ctx, "production", "v1", &harmonia.SetAliasOpts{By: "dave", ExpectAbsent: true})
	require.NoError(t, err)
	require.Equal(t, []string{"1:->v1", "2:v1->v2", "3:v2->", "4:->v1"}, history(t, b, "production"))
	after, err := b.store.AliasHistory(b.ctx, "production", harmonia.AliasHistoryFilter{AfterSeq: 2, Limit: 1})
	require.NoError(t, err)
	require.Len(t, after, 1)
	require.Equal(t, int64(3), after[0].Seq)

	for _, bad := range []string{"", "Production", "-x", "a b"} {
		_, err := b.store.SetAlias(b.ctx, bad, "v1", by("x"))
		require.ErrorIs(t, err, harmonia.ErrInvalid, "%q", bad)
	}
	_, err = b.store.SetAlias(b.ctx, "staging", "v9", by("x"))
	require.ErrorIs(t, err, harmonia.ErrNotFound)
	_, err = b.store.SetAlias(b.ctx, "staging", "v1", nil)
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	_, err = b.store.AliasHistory(b.ctx, "staging", harmonia.AliasHistoryFilter{})
	require.ErrorIs(t, err, harmonia.ErrNotFound)
}

// TestAliasCompareAndSetConcurrent: 16 movers expecting the same target,
// exactly one wins and the others learn where the alias points; then 16
// unconditional movers all win, one after another, and the history holds
// exactly the successful moves, in order, each starting where the
// previous one ended.
func TestAliasCompareAndSetConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tags := []string{"v0"}
	for i := range 16 {
		tags = append(tags, fmt.Sprintf("v%d", i+1))
	}
	b.versions(t, tags...)
	_, err := b.store.SetAlias(b.ctx, "production", "v0", by("init"))
	require.NoError(t, err)

	const movers = 16
	errs := make([]error, movers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range movers {
		wg.Go(func() {
			<-start
			_, errs[i] = b.store.SetAlias(b.ctx, "production", tags[i+1], &harmonia.SetAliasOpts{By: fmt.Sprint(i), ExpectVersion: "v0"})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "two movers won: %d and %d", winner, i)
			winner = i
			continue
		}
		require.ErrorIs(t, err, harmonia.ErrConflict)
		require.ErrorIs(t, err, harmonia.ErrAliasMoved)
	}
	require.NotEqual(t, -1, winner, "no mover won: %v", errs)
	for i, err := range errs {
		if i != winner {
			require.Contains(t, err.Error(), "production")
			require.Contains(t, err.Error(), "points at "+tags[winner+1])
		}
	}
	require.Equal(t, []string{"1:->v0", "2:v0->" + tags[winner+1]}, history(t, b, "production"))

	start = make(chan struct{})
	for i := range movers {
		wg.Go(func() {
			<-start
			_, errs[i] = b.store.SetAlias(b.ctx, "production", tags[i+1], by(fmt.Sprint(i)))
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	moves, err := b.store.AliasHistory(b.ctx, "production", harmonia.AliasHistoryFilter{})
	require.NoError(t, err)
	require.Len(t, moves, 2+movers)
	seen := map[string]bool{}
	for i, m := range moves {
		require.Equal(t, int64(i+1), m.Seq)
		if i > 0 {
			require.Equal(t, moves[i-1].To, m.From, "move %d starts where move %d ended", i+1, i)
		}
		if i >= 2 {
			seen[m.By] = true
		}
	}
	require.Len(t, seen, movers, "each unconditional mover recorded once")
	a, err := b.store.GetAlias(b.ctx, "production")
	require.NoError(t, err)
	require.Equal(t, moves[len(moves)-1].To, a.VersionTag)
	require.Equal(t, int64(2+movers), a.Seq)
}

// TestAliasFailedMoveLeavesNothing: a move failing at any of its steps
// leaves the alias where it was and no record, on both paths.
func TestAliasFailedMoveLeavesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.versions(t, "v1", "v2")
	_, err := b.store.SetAlias(b.ctx, "production", "v1", by("x"))
	require.NoError(t, err)
	for _, step := range []string{"alias_pending", "alias_record", "alias_apply"} {
		harmonia.SetAliasStepHook(b.store, func(_ context.Context, s string) error {
			if s == step {
				return errors.New("injected failure")
			}
			return nil
		})
		_, err := b.store.SetAlias(b.ctx, "production", "v2", by("y"))
		require.Error(t, err, step)
		harmonia.SetAliasStepHook(b.store, nil)
		got, err := b.store.ResolveAlias(b.ctx, "production")
		require.NoError(t, err)
		require.Equal(t, "v1", got.VersionTag, step)
		require.Equal(t, []string{"1:->v1"}, history(t, b, "production"), step)
		require.EqualValues(t, 1, count(t, b, harmonia.CollectionAliasHistory), "%s: no orphan record", step)
	}
	_, err = b.store.SetAlias(b.ctx, "production", "v2", &harmonia.SetAliasOpts{By: "z", ExpectVersion: "v1"})
	require.NoError(t, err)
	require.Equal(t, []string{"1:->v1", "2:v1->v2"}, history(t, b, "production"))
}

// TestAliasCrashBetweenMoveAndRecordRecovers crashes the staged move after
// it noted the move and after it wrote the record: the alias is locked
// until the move is older than RecoverAfter, then RecoverAliases (or the
// next move) rolls it back, leaving neither the move nor its record.
func TestAliasCrashBetweenMoveAndRecordRecovers(t *testing.T) {
	t.Parallel()
	harmoniatest.RequireStandalone(t) // the staged move runs only without transactions
	for _, step := range []string{"alias_record", "alias_apply"} {
		for _, recover := range []string{"RecoverAliases", "next move"} {
			t.Run(step+"/"+recover, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				b.versions(t, "v1", "v2")
				_, err := b.store.SetAlias(b.ctx, "production", "v1", by("x"))
				require.NoError(t, err)
				harmonia.SetAliasStepHook(b.store, func(_ context.Context, s string) error {
					if s == step {
						runtime.Goexit()
					}
					return nil
				})
				_, err = orCrash(func() (*harmonia.AliasMove, error) {
					return b.store.SetAlias(b.ctx, "production", "v2", by("crasher"))
				})
				require.Error(t, err)
				harmonia.SetAliasStepHook(b.store, nil)

				got, err := b.store.ResolveAlias(b.ctx, "production")
				require.NoError(t, err)
				require.Equal(t, "v1", got.VersionTag, "a crashed move is not visible")
				require.Equal(t, []string{"1:->v1"}, history(t, b, "production"))

				rep, err := b.store.RecoverAliases(b.ctx)
				require.NoError(t, err)
				require.Empty(t, rep.RolledBack, "a move younger than RecoverAfter is left alone")
				ctx, cancel := context.WithTimeout(b.ctx, 200*time.Millisecond)
				_, err = b.store.SetAlias(ctx, "production", "v2", by("waiter"))
				cancel()
				require.Error(t, err, "the alias is locked by the crashed move")

				b.clock.Advance(harmonia.RecoverAfterDefault + time.Second)
				if recover == "RecoverAliases" {
					rep, err = b.store.RecoverAliases(b.ctx)
					require.NoError(t, err)
					require.Equal(t, []string{"production"}, rep.RolledBack)
				}
				require.EqualValues(t, 1+map[string]int{"alias_record": 0, "alias_apply": 1}[step]*map[string]int{"RecoverAliases": 0, "next move": 1}[recover],
					count(t, b, harmonia.CollectionAliasHistory))
				_, err = b.store.SetAlias(b.ctx, "production", "v2", &harmonia.SetAliasOpts{By: "next", ExpectVersion: "v1"})
				require.NoError(t, err)
				require.Equal(t, []string{"1:->v1", "2:v1->v2"}, history(t, b, "production"))
				require.EqualValues(t, 2, count(t, b, harmonia.CollectionAliasHistory), "the crashed move's record is gone")
				moves, err := b.store.AliasHistory(b.ctx, "production", harmonia.AliasHistoryFilter{})
				require.NoError(t, err)
				require.Equal(t, "next", moves[1].By)
			})
		}
	}
}

// TestAliasExpectSeqRefusesMoveAwayAndBack: a move away and back between
// a caller's read and its write passes ExpectVersion (the alias points
// where it did) but not ExpectSeq (it has moved twice since).
func TestAliasExpectSeqRefusesMoveAwayAndBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.versions(t, "v1", "v2", "v3")
	_, err := b.store.SetAlias(b.ctx, "production", "v1", by("a"))
	require.NoError(t, err)
	read, err := b.store.GetAlias(b.ctx, "production")
	require.NoError(t, err)
	_, err = b.store.SetAlias(b.ctx, "production", "v2", by("b"))
	require.NoError(t, err)
	_, err = b.store.SetAlias(b.ctx, "production", "v1", by("b"))
	require.NoError(t, err)

	_, err = b.store.SetAlias(b.ctx, "production", "v3", &harmonia.SetAliasOpts{By: "c", ExpectVersion: read.VersionTag, ExpectSeq: read.Seq})
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.ErrorIs(t, err, harmonia.ErrAliasMoved)
	_, err = b.store.DeleteAlias(b.ctx, "production", &harmonia.DeleteAliasOpts{By: "c", ExpectVersion: read.VersionTag, ExpectSeq: read.Seq})
	require.ErrorIs(t, err, harmonia.ErrAliasMoved)
	got, err := b.store.GetAlias(b.ctx, "production")
	require.NoError(t, err)
	require.Equal(t, "v1", got.VersionTag)
	require.Equal(t, int64(3), got.Seq)
	require.Equal(t, []string{"1:->v1", "2:v1->v2", "3:v2->v1"}, history(t, b, "production"))

	_, err = b.store.SetAlias(b.ctx, "production", "v3", &harmonia.SetAliasOpts{By: "c", ExpectVersion: "v1", ExpectSeq: got.Seq})
	require.NoError(t, err)
	_, err = b.store.DeleteAlias(b.ctx, "production", &harmonia.DeleteAliasOpts{By: "c", ExpectSeq: got.Seq + 1})
	require.NoError(t, err)
	_, err = b.store.SetAlias(b.ctx, "canary", "v1", &harmonia.SetAliasOpts{By: "c", ExpectSeq: 1})
	require.ErrorIs(t, err, harmonia.ErrAliasMoved, "no alias yet: at move 0")
	_, err = b.store.SetAlias(b.ctx, "canary", "v1", &harmonia.SetAliasOpts{By: "c", ExpectSeq: -1})
	require.ErrorIs(t, err, harmonia.ErrInvalid)
	_, err = b.store.SetAlias(b.ctx, "canary", "v1", &harmonia.SetAliasOpts{By: "c", ExpectSeq: 1, ExpectAbsent: true})
	require.ErrorIs(t, err, harmonia.ErrInvalid)
}
