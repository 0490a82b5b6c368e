package harmonia_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// BenchmarkCheck runs Store.Check over 2,000 and 20,000 artifacts (three
// published versions of 20 artifacts each) and reports the peak heap the
// check adds over the heap before it ("peak-heap-MiB"): bounded by the
// versions, it stays level as the artifacts grow tenfold. Measure with
// the server out of this process, whose heap would count too:
//
//	HARMONIA_TEST_EMBEDDED=process go test -run '^$' -bench BenchmarkCheck -benchtime 2x
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{2000, 20000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			bu := setupBench(b)
			lic := &harmonia.License{SPDXID: "MIT", CommercialUse: true}
			require.NoError(b, bu.store.CreateLicense(bu.ctx, lic))
			// The versions first: a publish among 20,000 artifacts outlives
			// a transaction on the embedded server, which scans for each
			// (see DESIGN.md).
			ids := insertArtifactsBatched(b, bu, lic, 0, 60)
			for v := range 3 {
				_, err := bu.store.Publish(bu.ctx, harmonia.PublishRequest{VersionTag: fmt.Sprintf("v%d", v), ArtifactIDs: ids[v*20 : v*20+20], PublishedBy: "bench"})
				require.NoError(b, err)
			}
			insertArtifactsBatched(b, bu, lic, 60, n)
			var peak uint64
			for b.Loop() {
				runtime.GC()
				base := heapBytes()
				stop := sampleHeap(&peak)
				rep, err := bu.store.Check(bu.ctx, nil)
				stop()
				require.NoError(b, err)
				require.True(b, rep.OK(), "%v", rep.Problems)
				require.Equal(b, n, rep.Checked[harmonia.CollectionArtifacts])
				peak -= min(peak, base)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// insertArtifactsBatched writes publishable artifacts number from to n
// (excluded) under lic directly, 1,000 per command.
func insertArtifactsBatched(b *testing.B, bu *bundle, lic *harmonia.License, from, n int) []bson.ObjectID {
	now := time.Now().UTC()
	ids := make([]bson.ObjectID, 0, n-from)
	for start := from; start < n; start += 1000 {
		docs := make([]any, 0, 1000)
		for i := start; i < min(n, start+1000); i++ {
			a := validArtifact()
			a.ID, a.Name, a.LicenseID, a.SchemaVersion, a.CreatedAt, a.UpdatedAt = bson.NewObjectID(), fmt.Sprintf("m%06d", i), lic.ID, harmonia.SchemaVersion, now, now
			a.NameKey = harmonia.NameKey(a.Name)
			ids, docs = append(ids, a.ID), append(docs, a)
		}
		_, err := bu.db.Collection(harmonia.CollectionArtifacts).InsertMany(context.Background(), docs)
		require.NoError(b, err)
	}
	return ids
}

// heapBytes is the heap's object bytes now, live or not yet collected.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap records the largest heapBytes in *peak every millisecond
// until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	*peak = heapBytes()
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			*peak = max(*peak, heapBytes())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
