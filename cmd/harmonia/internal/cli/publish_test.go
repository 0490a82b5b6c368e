package cli

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

// The commands a publish sends do not grow with its --artifact flags: the
// keys are resolved in one lookup, and Publish takes a constant number.
func TestPublishCommandsDoNotGrowWithArtifacts(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	ctx := t.Context()
	store, err := harmonia.Open(ctx, db, nil)
	require.NoError(t, err)
	require.NoError(t, store.EnsureIndexes(ctx))
	lic := &harmonia.License{SPDXID: "MIT", CommercialUse: true}
	require.NoError(t, store.CreateLicense(ctx, lic))
	const n = 200
	docs := make([]any, n)
	for i := range docs {
		docs[i] = &harmonia.ModelArtifact{ID: bson.NewObjectID(), SchemaVersion: harmonia.SchemaVersion,
			Name: fmt.Sprintf("m%04d", i), NameKey: harmonia.NameKey(fmt.Sprintf("m%04d", i)), Version: "1.0.0", Path: fmt.Sprintf("m%04d.onnx", i), SizeBytes: 1,
			Hashes: harmonia.Hashes{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, LicenseID: lic.ID,
			CreatedAt: store.Now(), UpdatedAt: store.Now()}
	}
	_, err = db.Collection(harmonia.CollectionArtifacts).InsertMany(ctx, docs)
	require.NoError(t, err)

	publish := func(tag string, k int) map[string]int {
		args := []string{"publish", tag, "--by", "me"}
		for i := range k {
			args = append(args, "--artifact", fmt.Sprintf("m%04d@1.0.0", i))
		}
		// The command's own connection is the counting client.
		var out syncBuffer
		a := &app{stdout: &out, stderr: &out, env: func(string) string { return "" },
			conn: &conn{client: db.Client(), db: db}}
		root := a.rootCommand()
		root.SetArgs(args)
		counter.Reset()
		cctx, cancel := context.WithTimeout(ctx, commandTimeout)
		defer cancel()
		require.NoError(t, root.ExecuteContext(cctx), "%s", out.String())
		require.Contains(t, out.String(), fmt.Sprintf("%s published (%d artifacts", tag, k))
		return counter.Counts()
	}
	few, many := publish("few", 2), publish("many", n)
	t.Logf("commands of a publish of 2 artifacts: %v; of %d: %v", few, n, many)
	require.Equal(t, few, many)
}
