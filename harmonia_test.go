package harmonia_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestOpenRefusesDatabaseNamesTheServerRefuses(t *testing.T) {
	t.Parallel()
	client := harmoniatest.Database(t).Client()
	for _, name := range []string{"my.db", "a b", "a/b", `a"b`, "a$b", "a*b", "a:b", "a?b", "a\x00b", strings.Repeat("x", 64)} {
		_, err := harmonia.Open(t.Context(), client.Database(name), nil)
		requireInvalid(t, err, "store", "db")
	}
	require.Empty(t, harmonia.DatabaseNameProblem("inventory_prod-1"))
	require.Equal(t, `must not contain '.'`, harmonia.DatabaseNameProblem("my.db"))
}

func TestOpenDetectsCapabilities(t *testing.T) {
	t.Parallel()
	b := setup(t)
	caps := b.store.Capabilities()
	lane := harmoniatest.CurrentLane(t)
	require.Equal(t, lane.Transactions, caps.Transactions, "lane %s", lane.Name)
	require.Equal(t, lane.Validators, caps.Validators, "lane %s", lane.Name)
	require.NotEmpty(t, caps.ServerVersion)
	switch lane.Name {
	case harmoniatest.LaneEmbedded:
		require.True(t, caps.FerretDB)
		require.True(t, caps.Validators)
		require.Equal(t, "standalone", caps.Topology)
		_, err := harmonia.Open(b.ctx, b.db, &harmonia.Options{RequireTransactions: true})
		require.ErrorIs(t, err, harmonia.ErrInvalid)
	case harmoniatest.LaneEmbeddedReplSet:
		// The same FerretDB, judged by what the front makes it do.
		require.True(t, caps.FerretDB)
		require.True(t, caps.Transactions)
		require.True(t, caps.Validators)
		require.Equal(t, "replica_set", caps.Topology)
	}
	_, err := harmonia.Open(b.ctx, nil, nil)
	require.ErrorIs(t, err, harmonia.ErrInvalid)
}
