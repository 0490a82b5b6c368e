package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/httpapi"
)

// checkOf sends a check request and decodes its 200 answer.
func (b *bundle) checkOf(token, method, path string) *httpapi.CheckResult {
	b.t.Helper()
	r := b.do(token, method, path, nil)
	require.Equal(b.t, http.StatusOK, r.status, string(r.body))
	var out httpapi.CheckResult
	r.decode(b.t, &out)
	return &out
}

// kinds returns the problems as "kind entity key field version repaired".
func kinds(ps []*httpapi.CheckProblem) map[string]bool {
	out := map[string]bool{}
	for _, p := range ps {
		out[string(p.Kind)+" "+p.Entity+" "+p.Key+" "+p.Field+" "+p.Version] = p.Repaired
	}
	return out
}

func TestCheck(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	lic := b.license("MIT")
	a1, a2 := b.artifact("a", "1", lic), b.artifact("b", "1", lic)
	b.publish("1.0", a1, a2)

	clean := b.checkOf(readToken, "GET", "/check")
	require.True(t, clean.OK)
	require.Zero(t, clean.Found)
	require.Empty(t, clean.Problems)
	require.Positive(t, clean.Checked[harmonia.CollectionArtifacts])

	// Break two invariants behind the Store's back: a member that does
	// not name its version (repairable) and content changed under a
	// published version (needs a person).
	arts := b.store.Database().Collection(harmonia.CollectionArtifacts)
	_, err := arts.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: a1.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "published_in", Value: bson.A{}}, {Key: "published", Value: false}}}})
	require.NoError(t, err)
	_, err = arts.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: a2.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "hashes.sha256", Value: "00" + sum[2:]}}}})
	require.NoError(t, err)
	unmarked := "unmarked model_artifact a@1 published_in 1.0"
	content := "manifest_mismatch model_artifact b@1 hashes.sha256 1.0"

	// GET reports, 200, and changes nothing: a second GET finds the same.
	got := b.checkOf(readToken, "GET", "/check")
	require.False(t, got.OK)
	require.Equal(t, 2, got.Found)
	require.Zero(t, got.Repaired)
	require.Zero(t, got.More)
	require.Equal(t, map[string]bool{unmarked: false, content: false}, kinds(got.Problems))
	for _, p := range got.Problems {
		require.Equal(t, map[string]bson.ObjectID{"a@1": a1.ID, "b@1": a2.ID}[p.Key], p.ID)
		require.NotEmpty(t, p.Detail)
	}
	require.Equal(t, got.Problems, b.checkOf(readToken, "GET", "/check").Problems)

	// The list is bounded: limit=1 lists one and counts the other.
	one := b.checkOf(readToken, "GET", "/check?limit=1")
	require.Len(t, one.Problems, 1)
	require.Equal(t, 2, one.Found)
	require.Equal(t, 1, one.More)
	for _, bad := range []string{"0", "1001", "x"} {
		r := b.do(readToken, "GET", "/check?limit="+bad, nil)
		require.Equal(t, http.StatusBadRequest, r.status, bad)
		require.Equal(t, "limit", r.problem(t).Field)
	}

	// Repair needs admin; a refused repair repairs nothing.
	require.Equal(t, http.StatusUnauthorized, b.do("", "GET", "/check", nil).status)
	for _, tok := range []string{"", readToken, writeToken, publishToken} {
		r := b.do(tok, "POST", "/check/repair", nil)
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.status, tok)
		require.NotEmpty(t, r.problem(t).Code)
	}
	require.Equal(t, 2, b.checkOf(readToken, "GET", "/check").Found, "a refused repair changed nothing")

	rep := b.checkOf(adminToken, "POST", "/check/repair")
	require.Equal(t, 2, rep.Found)
	require.Equal(t, 1, rep.Repaired)
	require.False(t, rep.OK)
	require.Equal(t, map[string]bool{unmarked: true, content: false}, kinds(rep.Problems))
	a, err := b.store.GetArtifact(t.Context(), a1.ID)
	require.NoError(t, err)
	require.True(t, a.Published)

	after := b.checkOf(readToken, "GET", "/check")
	require.Equal(t, map[string]bool{content: false}, kinds(after.Problems))
}
