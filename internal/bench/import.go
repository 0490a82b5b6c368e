package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// Comparison is what [CompareImport] measured.
type Comparison struct {
	// Artifacts is how many artifacts each side wrote.
	Artifacts int
	// Import is how long Import of the generated file took.
	Import time.Duration
	// InsertMany is how long one unordered InsertMany of the same artifact
	// documents took.
	InsertMany time.Duration
	// Ratio is Import / InsertMany.
	Ratio float64
	// Reimport is how long a second Import of the same file took.
	Reimport time.Duration
	// ReimportChanged is how many entries the second import inserted or
	// updated (0: it changed nothing).
	ReimportChanged int
}

// CompareImport measures Import of a generated inventory of n artifacts
// (GenerateInventory, no versions) into importDB against a plain driver
// InsertMany of the same artifact documents into rawDB, both empty
// databases on the same server with harmonia's indexes, then imports the
// file a second time. The examples/bench program and the benchmarks
// report its figures.
func CompareImport(ctx context.Context, importDB, rawDB *mongo.Database, n int) (*Comparison, error) {
	var file bytes.Buffer
	if _, err := GenerateInventory(&file, GenerateOptions{Artifacts: n}); err != nil {
		return nil, err
	}
	stores := make([]*harmonia.Store, 2)
	for i, db := range []*mongo.Database{importDB, rawDB} {
		s, err := harmonia.Open(ctx, db, nil)
		if err != nil {
			return nil, err
		}
		if err := s.EnsureIndexes(ctx); err != nil {
			return nil, err
		}
		stores[i] = s
	}
	now := stores[1].Now()
	docs := make([]any, n)
	for i := range docs {
		f := genArtifact(i)
		a := &harmonia.ModelArtifact{ID: bson.NewObjectID(), SchemaVersion: harmonia.SchemaVersion, Name: f.Name, NameKey: harmonia.NameKey(f.Name), Version: f.Version,
			Path: f.Path, SizeBytes: f.SizeBytes, Hashes: harmonia.Hashes{SHA256: f.Hashes.SHA256}, LicenseID: bson.NewObjectID(),
			DatasetIDs: []bson.ObjectID{bson.NewObjectID()}, Tags: f.Tags, Notes: f.Notes, CreatedBy: f.CreatedBy, CreatedAt: now, UpdatedAt: now}
		docs[i] = a
	}
	c := &Comparison{Artifacts: n}
	start := time.Now()
	if _, err := rawDB.Collection(harmonia.CollectionArtifacts).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
		return nil, fmt.Errorf("insert: %w", err)
	}
	c.InsertMany = time.Since(start)

	start = time.Now()
	rep, err := inventoryfile.Import(ctx, stores[0], bytes.NewReader(file.Bytes()), nil)
	if err != nil {
		return nil, err
	}
	c.Import = time.Since(start)
	if rep.Artifacts.Inserted != n {
		return nil, fmt.Errorf("the import inserted %d of %d artifacts (%d rejected)", rep.Artifacts.Inserted, n, rep.Rejected())
	}
	c.Ratio = c.Import.Seconds() / c.InsertMany.Seconds()

	start = time.Now()
	rep, err = inventoryfile.Import(ctx, stores[0], bytes.NewReader(file.Bytes()), nil)
	if err != nil {
		return nil, err
	}
	c.Reimport, c.ReimportChanged = time.Since(start), rep.Changed()
	return c, nil
}

// HeapMeasurement is what [MeasureDryRunHeap] measured.
type HeapMeasurement struct {
	// FileBytes is the generated file's size.
	FileBytes int64
	// Entries counts its entries, of every section.
	Entries int
	// Baseline is the heap in use (runtime HeapInuse) before the import,
	// after a collection; Peak the largest seen during it. Both count the
	// whole process: an embedded server in the same process included.
	Baseline, Peak uint64
	// Duration is how long the dry run took.
	Duration time.Duration
	// Report is the dry run's report.
	Report *inventoryfile.ImportReport
}

// PeakMiB returns Peak in MiB.
func (h *HeapMeasurement) PeakMiB() float64 { return float64(h.Peak) / (1 << 20) }

// heapSamplePeriod is how often MeasureHeap samples the heap.
const heapSamplePeriod = time.Millisecond

// MeasureDryRunHeap generates an inventory of about size bytes into dir
// (with two versions), then runs a dry-run Import of it (the same
// decoding and validation path as a real import) against store, sampling
// the process's heap in use every millisecond. The file is removed
// afterwards.
func MeasureDryRunHeap(ctx context.Context, store *harmonia.Store, dir string, size int64) (*HeapMeasurement, error) {
	name := filepath.Join(dir, "generated-inventory.json")
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("create the file: %w", err)
	}
	defer func() { _ = os.Remove(name) }()
	defer func() { _ = f.Close() }()
	g, err := GenerateInventory(f, GenerateOptions{TargetBytes: size, Versions: 2})
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("rewind the file: %w", err)
	}
	h := &HeapMeasurement{FileBytes: g.Bytes, Entries: g.Licenses + g.Datasets + g.Artifacts + g.Versions}
	h.Baseline, h.Peak, h.Duration, err = MeasureHeap(func() error {
		var err error
		h.Report, err = inventoryfile.Import(ctx, store, f, &inventoryfile.ImportOptions{DryRun: true})
		return err
	})
	return h, err
}

// MeasureHeap runs fn, sampling the process's heap in use every
// millisecond, and returns the heap in use before it (after a
// collection), the largest seen while it ran, and how long it took.
func MeasureHeap(fn func() error) (baseline, peak uint64, took time.Duration, err error) {
	runtime.GC()
	baseline = heapInuse()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sampled uint64
	wg.Go(func() {
		t := time.NewTicker(heapSamplePeriod)
		defer t.Stop()
		for {
			sampled = max(sampled, heapInuse())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	start := time.Now()
	err = fn()
	took = time.Since(start)
	close(stop)
	wg.Wait()
	return baseline, max(sampled, heapInuse()), took, err
}

// heapInuse reads the runtime's HeapInuse: heap spans in use, objects
// and the free space within them.
func heapInuse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}
