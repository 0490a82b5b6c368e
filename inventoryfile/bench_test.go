package inventoryfile_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/bench"
	"github.com/harmonia-ml/harmonia/inventoryfile"
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

// BenchmarkExportPeakHeap20k imports a generated inventory of 20,000
// artifacts, then reports the peak heap in use while Export writes it to
// io.Discard, above the heap in use before, and its speed. The heap is
// the whole process's: run it with HARMONIA_TEST_EMBEDDED=process (the
// embedded server in its own process) to see Export's share alone: 6.1
// MiB above the baseline for a 10 MB file on 2026-11-27 (2 cores, amd64).
// In process, the embedded server's in-memory sort of the collection
// dominates (132 MiB); MongoDB reads the sort off the unique index.
func BenchmarkExportPeakHeap20k(b *testing.B) {
	ctx := context.Background()
	store := openStore(b, harmoniatest.Database(b))
	var gen bytes.Buffer
	if _, err := bench.GenerateInventory(&gen, bench.GenerateOptions{Artifacts: 20000, Versions: 2}); err != nil {
		b.Fatal(err)
	}
	if rep, err := inventoryfile.Import(ctx, store, &gen, nil); err != nil || rep.Rejected() > 0 {
		b.Fatalf("import: %v %v", err, rep)
	}
	b.ResetTimer()
	var rep *inventoryfile.ExportReport
	var baseline, peak uint64
	var took time.Duration
	for range b.N {
		var err error
		baseline, peak, took, err = bench.MeasureHeap(func() error {
			rep, err = inventoryfile.Export(ctx, store, io.Discard, nil)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peak-min(peak, baseline))/(1<<20), "peak_above_baseline_MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MiB")
	b.ReportMetric(float64(rep.Artifacts), "artifacts")
	b.ReportMetric(float64(rep.Bytes)/(1<<20)/took.Seconds(), "MiB/s")
}
