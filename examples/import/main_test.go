package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia/harmoniatest"
)

func TestMain(m *testing.M) { harmoniatest.Main(m) }

// The acceptance run: a dry run, an import, and a second import that
// finds everything unchanged.
func TestImportSampleThreeTimes(t *testing.T) {
	db := harmoniatest.Database(t) // a fresh name, dropped at the end
	c := config{file: "../inventory/combined_inventory.json", uri: harmoniatest.CurrentLane(t).URI, db: db.Name()}
	// table is the report's table with white space folded, as norm
	// folds the output.
	table := func(l, d, a, v string) string {
		return fmt.Sprintf("licenses %s datasets %s artifacts %s versions %s", l, d, a, v)
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, step := range []struct {
		dryRun bool
		want   []string
	}{
		{true, []string{"migrations: would apply 1 create collections and indexes", "dry run: nothing was written",
			table("4 0 0 0", "3 0 0 0", "5 0 0 0", "2 0 0 0")}},
		{false, []string{"migrations: applied 2 tags lowercase and unique", table("4 0 0 0", "3 0 0 0", "5 0 0 0", "2 0 0 0")}},
		{false, []string{"migrations: up to date (version 6)", "everything unchanged", table("0 0 4 0", "0 0 3 0", "0 0 5 0", "0 0 2 0")}},
	} {
		var out bytes.Buffer
		c.dryRun = step.dryRun
		require.NoError(t, run(t.Context(), c, &out))
		for _, w := range step.want {
			require.Contains(t, norm(out.String()), w)
		}
	}
}

func TestRejectionsExitWithErrRejected(t *testing.T) {
	db := harmoniatest.Database(t)
	c := config{file: "testdata/rejected.json", uri: harmoniatest.CurrentLane(t).URI, db: db.Name()}
	var out bytes.Buffer
	require.ErrorIs(t, run(t.Context(), c, &out), errRejected)
	require.Contains(t, out.String(), "rejected: artifacts[0] m@1: license: no license with spdx_id GPL-3.0-only")
}
