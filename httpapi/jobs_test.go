package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/httpapi"
)

func TestJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	a := b.artifact("a", "1", b.license("MIT"))

	r := b.do(writeToken, "POST", "/jobs", map[string]any{"type": "validate", "params": map[string]any{"artifact_id": a.ID.Hex()}, "unique_key": "v:a"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	var out httpapi.EnqueueOutput
	r.decode(t, &out)
	require.False(t, out.Duplicate)
	require.Equal(t, harmonia.JobPending, out.Job.Status)
	require.JSONEq(t, `{"artifact_id": {"$oid": "`+a.ID.Hex()+`"}}`, string(out.Job.Params))
	// The stored params decode into the built-in type: the id is an ObjectID.
	job, err := b.store.Queue().GetJob(t.Context(), mustID(t, out.Job.ID))
	require.NoError(t, err)
	var vp harmonia.ValidateParams
	require.NoError(t, job.DecodeParams(&vp))
	require.Equal(t, a.ID, vp.ArtifactID)

	r = b.do(writeToken, "POST", "/jobs", map[string]any{"type": "validate", "params": map[string]any{"artifact_id": a.ID.Hex()}, "unique_key": "v:a"})
	require.Equal(t, http.StatusOK, r.status)
	r.decode(t, &out)
	require.True(t, out.Duplicate)

	r = b.do(writeToken, "POST", "/jobs", map[string]any{"type": "validate", "params": map[string]any{"artifact": "x"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "params", r.problem(t).Field)
	r = b.do(writeToken, "POST", "/jobs", map[string]any{"type": "validate", "params": map[string]any{"artifact_id": strings.Repeat("0", 24)}})
	require.Contains(t, []int{http.StatusUnprocessableEntity, http.StatusNotFound}, r.status)
	r = b.do(writeToken, "POST", "/jobs", map[string]any{"type": "report", "params": map[string]any{"week": 49}, "priority": 5})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	var custom httpapi.EnqueueOutput
	r.decode(t, &custom)
	require.JSONEq(t, `{"week": 49}`, string(custom.Job.Params))

	r = b.do(readToken, "GET", "/jobs/"+out.Job.ID, nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(readToken, "GET", "/jobs/"+strings.Repeat("0", 24), nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = b.do(readToken, "GET", "/jobs?status=pending&type=report", nil)
	require.Equal(t, http.StatusOK, r.status)
	var page httpapi.JobPage
	r.decode(t, &page)
	require.Len(t, page.Items, 1)
	r = b.do(readToken, "GET", "/jobs?status=bogus", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "status", r.problem(t).Field)

	r = b.do(readToken, "GET", "/jobs/"+out.Job.ID+"/log", nil)
	require.Equal(t, http.StatusOK, r.status)
	var log httpapi.EventList
	r.decode(t, &log)
	require.Empty(t, log.Items)
	r = b.do(readToken, "GET", "/jobs/"+strings.Repeat("0", 24)+"/log", nil)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(adminToken, "POST", "/jobs/"+out.Job.ID+"/cancel", nil)
	require.Equal(t, http.StatusOK, r.status)
	var cancelled httpapi.Job
	r.decode(t, &cancelled)
	require.Equal(t, harmonia.JobCancelled, cancelled.Status)
	r = b.do(adminToken, "POST", "/jobs/"+out.Job.ID+"/cancel", nil)
	require.Equal(t, http.StatusConflict, r.status, "a finished job cannot be cancelled")
	r = b.do(adminToken, "POST", "/jobs/"+strings.Repeat("0", 24)+"/cancel", nil)
	require.Equal(t, http.StatusNotFound, r.status)
}

func mustID(t *testing.T, hex string) bson.ObjectID {
	t.Helper()
	id, err := bson.ObjectIDFromHex(hex)
	require.NoError(t, err)
	return id
}
