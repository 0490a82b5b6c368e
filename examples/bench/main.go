// Command bench measures harmonia against the plain MongoDB driver on the
// same server, in one run, and prints a table followed by one key=value
// line per figure:
//
//	import_ratio_vs_raw              Import of N artifacts ÷ InsertMany of the same documents
//	reimport_changed                 entries a second identical import inserted or updated
//	publish_commands_k10             server commands of a Publish of 10 artifacts
//	publish_commands_k1000           … of 1,000 artifacts
//	publish_journal_s_k1000          seconds of a Publish of 1,000 artifacts, embedded replica set on a directory, with its transaction journal
//	publish_nojournal_s_k1000        … without it (embedded.Options.NoJournal)
//	journal_cost_pct_k1000           what the journal adds to that publish, %
//	list_with_licenses_commands_m500 server commands to list 500 artifacts with their licenses
//	claim_ratio_vs_raw               job claim-and-finish throughput, harmonia ÷ plain driver loop, 4 workers
//	commands_per_job                 server commands per job logging two lines, amortized, 4 workers of concurrency 4
//	sha256_ratio_vs_openssl          validate's hashing throughput ÷ `openssl dgst -sha256`
//	s3_verify_ratio_vs_local         bucket Verify's time from an in-process S3 server ÷ from a local file of the same size
//	import_peak_heap_mib_100mb       peak heap of a dry-run import of a generated 100 MB file
//	http_version_read_ratio          GET /versions/{tag} through the HTTP API ÷ GetVersionByTag, requests per second
//	http_alias_read_ratio            GET /aliases/{name} through the HTTP API ÷ GetAlias, requests per second
//	cli_import_s                     seconds of `harmonia import` of 10,000 artifacts, on its own embedded server
//	cli_publish_s_k1000              … of `harmonia publish` of 1,000 of them, one --artifact each
//	cli_list_json_s                  … of `harmonia artifacts list --json` of the 10,000
//	cli_import_versions_s            … of `harmonia import` of 20,000 artifacts with five versions of 1,000
//
// It runs on an embedded server by default and on HARMONIA_MONGODB_URI (or
// -uri) when set; the sizes are flags, to be raised on a real MongoDB.
//
//	go run ./examples/bench [-uri mongodb://…] [-artifacts 20000] [-jobs 500] [-concurrency 4] [-hash-mib 256] [-s3-mib 64] [-inventory-mb 100]
//
// -only claim,jobcmds runs some of the steps (import, publish, journal,
// list, claim, jobcmds, sha256, s3, heap, http, cli10k). The journal step
// starts embedded servers of its own, whatever -uri says; cli10k builds
// the harmonia command and runs it, as a user would, on a temporary data
// directory (its own embedded server, whatever -uri says); it needs the
// go tool.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	hbench "github.com/harmonia-ml/harmonia/internal/bench"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/examples/internal/exampledb"
	"github.com/harmonia-ml/harmonia/harmoniatest"
)

type config struct {
	uri                          string
	artifacts, jobs, workers     int
	concurrency                  int
	only                         string
	hashMiB, inventoryMB, listM  int
	httpReads                    int
	s3MiB                        int
	publishSmall, publishLarge   int
	cliArtifacts, cliPublish     int
	cliBigArtifacts, cliVersions int
}

func main() {
	var c config
	flag.StringVar(&c.uri, "uri", "", "MongoDB URI (default $HARMONIA_MONGODB_URI, else an embedded server)")
	flag.IntVar(&c.artifacts, "artifacts", 20000, "artifacts in the import comparison")
	flag.IntVar(&c.jobs, "jobs", 500, "jobs in the claim comparison")
	flag.IntVar(&c.workers, "workers", 4, "workers in the claim comparison and the command count")
	flag.IntVar(&c.concurrency, "concurrency", 4, "concurrency of each worker in the command count")
	flag.StringVar(&c.only, "only", "", "comma-separated steps to run (default all)")
	flag.IntVar(&c.hashMiB, "hash-mib", 256, "size of the file hashed against openssl, MiB")
	flag.IntVar(&c.s3MiB, "s3-mib", 64, "size of the object verified from an S3 server and from a local file, MiB")
	flag.IntVar(&c.inventoryMB, "inventory-mb", 100, "size of the generated inventory for the heap figure, MB")
	flag.IntVar(&c.listM, "list", 500, "artifacts listed with their licenses")
	flag.IntVar(&c.httpReads, "http-reads", 2000, "reads of each kind in the HTTP comparison")
	flag.IntVar(&c.publishSmall, "publish-small", 10, "artifacts in the small publish")
	flag.IntVar(&c.publishLarge, "publish-large", 1000, "artifacts in the large publish")
	flag.IntVar(&c.cliArtifacts, "cli-artifacts", 10000, "artifacts imported, then listed, by the harmonia command (cli10k)")
	flag.IntVar(&c.cliPublish, "cli-publish", 1000, "artifacts in the command's publish, and in each version of its large import (cli10k)")
	flag.IntVar(&c.cliBigArtifacts, "cli-big-artifacts", 20000, "artifacts in the command's large import (cli10k)")
	flag.IntVar(&c.cliVersions, "cli-versions", 5, "versions in the command's large import (cli10k)")
	flag.Parse()
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// figure is one measured result.
type figure struct {
	key, what string
	value     float64
	format    string
	detail    string
}

// bench holds the connection every measurement shares.
type bench struct {
	conn *exampledb.Conn
	n    int
}

// db returns a fresh, empty database on the bench server and a function
// that drops it.
func (b *bench) db(ctx context.Context, name string) (*mongo.Database, func()) {
	b.n++
	db := b.conn.Client.Database(fmt.Sprintf("bench_%s_%d", name, b.n))
	return db, func() { _ = db.Drop(context.WithoutCancel(ctx)) }
}

// countingDB is db on a second client that counts server commands.
func (b *bench) countingDB(ctx context.Context, name string) (*mongo.Database, *harmoniatest.CommandCounter, func()) {
	counter := &harmoniatest.CommandCounter{}
	client, err := mongo.Connect(options.Client().ApplyURI(b.conn.URI).SetMonitor(counter.Monitor()))
	if err != nil {
		panic(err) // Connect fails only on invalid options
	}
	b.n++
	db := client.Database(fmt.Sprintf("bench_%s_%d", name, b.n))
	return db, counter, func() {
		_ = db.Drop(context.WithoutCancel(ctx))
		_ = client.Disconnect(context.WithoutCancel(ctx))
	}
}

func run(ctx context.Context, c config) (err error) {
	conn, err := exampledb.Connect(ctx, exampledb.Options{URI: c.uri})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	b := &bench{conn: conn}
	fmt.Fprintf(os.Stderr, "bench: %s server, %s %s/%s, %d CPUs\n", conn.Lane, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())

	start := time.Now()
	var figs []figure
	steps := []struct {
		name string
		fn   func(context.Context, *bench, config) ([]figure, error)
	}{
		{"import", benchImport},
		{"publish", benchPublish},
		{"journal", benchJournal},
		{"list", benchList},
		{"claim", benchClaim},
		{"jobcmds", benchJobCommands},
		{"sha256", benchSHA256},
		{"s3", benchS3Verify},
		{"heap", benchHeap},
		{"http", benchHTTP},
		{"cli10k", benchCLI},
	}
	for _, s := range steps {
		if c.only != "" && !slices.Contains(strings.Split(c.only, ","), s.name) {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "bench: %s…", s.name)
		f, err := s.fn(ctx, b, c)
		if err != nil {
			fmt.Fprintln(os.Stderr)
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(os.Stderr, " %.1fs\n", time.Since(t0).Seconds())
		figs = append(figs, f...)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\tvalue\tdetail\n")
	for _, f := range figs {
		fmt.Fprintf(tw, "%s\t"+f.format+"\t%s\n", f.what, f.value, f.detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("\n(%s server, %s, %d CPUs, %.0fs)\n\n", conn.Lane, runtime.Version(), runtime.NumCPU(), time.Since(start).Seconds())
	for _, f := range figs {
		fmt.Printf("%s="+f.format+"\n", f.key, f.value)
	}
	return nil
}

func benchImport(ctx context.Context, b *bench, c config) ([]figure, error) {
	importDB, done1 := b.db(ctx, "import")
	defer done1()
	rawDB, done2 := b.db(ctx, "raw")
	defer done2()
	cmp, err := hbench.CompareImport(ctx, importDB, rawDB, c.artifacts)
	if err != nil {
		return nil, err
	}
	return []figure{
		{"import_ratio_vs_raw", fmt.Sprintf("import %d artifacts ÷ InsertMany", c.artifacts), cmp.Ratio, "%.2f",
			fmt.Sprintf("%.2fs vs %.2fs", cmp.Import.Seconds(), cmp.InsertMany.Seconds())},
		{"reimport_changed", "entries changed by a second identical import", float64(cmp.ReimportChanged), "%.0f",
			fmt.Sprintf("re-import %.2fs", cmp.Reimport.Seconds())},
	}, nil
}

func benchPublish(ctx context.Context, b *bench, c config) ([]figure, error) {
	var figs []figure
	for _, k := range []int{c.publishSmall, c.publishLarge} {
		t0 := time.Now()
		n, err := publishCommands(ctx, b, k)
		if err != nil {
			return nil, err
		}
		figs = append(figs, figure{fmt.Sprintf("publish_commands_k%d", k), fmt.Sprintf("server commands per Publish of %d artifacts", k),
			float64(n), "%.0f", fmt.Sprintf("%.2fs", time.Since(t0).Seconds())})
	}
	return figs, nil
}

func benchList(ctx context.Context, b *bench, c config) ([]figure, error) {
	n, err := listCommands(ctx, b, c.listM)
	if err != nil {
		return nil, err
	}
	return []figure{{fmt.Sprintf("list_with_licenses_commands_m%d", c.listM), fmt.Sprintf("server commands to list %d artifacts with licenses", c.listM),
		float64(n), "%.0f", ""}}, nil
}

func benchHeap(ctx context.Context, b *bench, c config) ([]figure, error) {
	db, done := b.db(ctx, "heap")
	defer done()
	store, err := harmonia.Open(ctx, db, nil)
	if err != nil {
		return nil, err
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "harmonia-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	h, err := hbench.MeasureDryRunHeap(ctx, store, dir, int64(c.inventoryMB)*1_000_000)
	if err != nil {
		return nil, err
	}
	return []figure{{fmt.Sprintf("import_peak_heap_mib_%dmb", c.inventoryMB), fmt.Sprintf("peak heap, dry-run import of a %d MB file", c.inventoryMB),
		h.PeakMiB(), "%.1f", fmt.Sprintf("%d entries in %.1fs; whole process, server included", h.Entries, h.Duration.Seconds())}}, nil
}
