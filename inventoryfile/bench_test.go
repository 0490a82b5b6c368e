package inventoryfile_test

import (
	"context"
	"testing"

	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/bench"
)

// BenchmarkImport20kVsInsertMany imports 20,000 artifacts and inserts the
// same documents with one plain InsertMany on the same server, in one
// run, and reports the ratio (aim: at most 1.5), then imports the file
// again and reports how many entries that changed (want 0).
func BenchmarkImport20kVsInsertMany(b *testing.B) {
	ctx := context.Background()
	var c *bench.Comparison
	for range b.N {
		var err error
		c, err = bench.CompareImport(ctx, harmoniatest.Database(b), harmoniatest.Database(b), 20000)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(c.Ratio, "import/insertmany")
	b.ReportMetric(c.Import.Seconds(), "import_s")
	b.ReportMetric(c.InsertMany.Seconds(), "insertmany_s")
	b.ReportMetric(c.Reimport.Seconds(), "reimport_s")
	b.ReportMetric(float64(c.ReimportChanged), "reimport_changed")
}

// BenchmarkImportDryRunPeakHeap100MB reports the peak heap in use while
// a dry-run import reads and validates a generated 100 MB inventory
// (target: under 64 MiB).
func BenchmarkImportDryRunPeakHeap100MB(b *testing.B) {
	ctx := context.Background()
	store := openStore(b, harmoniatest.Database(b))
	var h *bench.HeapMeasurement
	for range b.N {
		var err error
		h, err = bench.MeasureDryRunHeap(ctx, store, b.TempDir(), 100<<20)
		if err != nil {
			b.Fatal(err)
		}
		if n := h.Report.Rejected(); n > 0 {
			b.Fatalf("%d rejections: %v", n, h.Report.Rejections[0])
		}
	}
	b.ReportMetric(h.PeakMiB(), "peak_heap_MiB")
	b.ReportMetric(float64(h.Baseline)/(1<<20), "baseline_heap_MiB")
	b.ReportMetric(float64(h.Entries), "entries")
	b.ReportMetric(float64(h.FileBytes)/(1<<20)/h.Duration.Seconds(), "MiB/s")
}
