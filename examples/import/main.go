// Command import brings a database up to date with harmonia's built-in
// migrations and imports a combined inventory file into it, printing what
// it did (or, with -dry-run, would do).
//
//	go run ./examples/import -dry-run examples/inventory/combined_inventory.json
//	go run ./examples/import -dir ./harmonia-data examples/inventory/combined_inventory.json
//	go run ./examples/import -dir ./harmonia-data examples/inventory/combined_inventory.json  # all unchanged
//
// With -uri, or HARMONIA_MONGODB_URI, it uses that deployment. Otherwise it
// starts harmonia's embedded server: in a temporary directory that is
// removed on exit (every run starts empty), or in -dir, which keeps the
// data, so that a second run finds everything unchanged.
//
// Exit status: 0 when everything was imported, 2 when entries were
// rejected (the others were imported, unless -all-or-nothing), 1 on an
// error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"

	"github.com/harmonia-ml/harmonia/inventoryfile"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/examples/internal/exampledb"
	"github.com/harmonia-ml/harmonia/migrate"
)

// errRejected makes the program exit with status 2.
var errRejected = errors.New("entries were rejected")

type config struct {
	file, uri, dir, db, baseDir string
	dryRun, allOrNothing        bool
}

func main() {
	var c config
	flag.StringVar(&c.file, "file", "", "the inventory file (or give it as the argument)")
	flag.BoolVar(&c.dryRun, "dry-run", false, "check the file and report what an import would do, writing nothing")
	flag.BoolVar(&c.allOrNothing, "all-or-nothing", false, "write nothing unless every entry is accepted")
	flag.StringVar(&c.uri, "uri", os.Getenv("HARMONIA_MONGODB_URI"), "MongoDB connection string (default $HARMONIA_MONGODB_URI; empty: an embedded server)")
	flag.StringVar(&c.dir, "dir", "", "data directory of the embedded server, kept across runs (default: a temporary one)")
	flag.StringVar(&c.db, "db", "harmonia", "database name")
	flag.StringVar(&c.baseDir, "base-dir", "", "join relative paths of the file to this directory before storing them")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: import [flags] [inventory.json]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if c.file == "" && flag.NArg() == 1 {
		c.file = flag.Arg(0)
	}
	if c.file == "" || flag.NArg() > 1 {
		flag.Usage()
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, c, os.Stdout)
	switch {
	case errors.Is(err, errRejected):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "import:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer) (err error) {
	f, err := os.Open(c.file)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()

	conn, err := exampledb.Connect(ctx, exampledb.Options{URI: c.uri, Dir: c.dir, Database: c.db})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	db, where := conn.DB, conn.URI
	if conn.Lane == exampledb.LaneEmbedded {
		where = "the embedded server (temporary data: use -dir to keep it)"
		if c.dir != "" {
			where = "the embedded server (data in " + c.dir + ")"
		}
	}
	fmt.Fprintf(out, "importing %s into database %q on %s\n", c.file, c.db, where)

	runner, err := migrate.New(db, migrate.Builtin(), nil)
	if err != nil {
		return err
	}
	mig, err := runner.Up(ctx, &migrate.UpOpts{DryRun: c.dryRun})
	if err != nil {
		return err
	}
	printMigrations(out, mig)

	store, err := harmonia.Open(ctx, db, nil)
	if err != nil {
		return err
	}
	rep, err := inventoryfile.Import(ctx, store, f, &inventoryfile.ImportOptions{DryRun: c.dryRun, AllOrNothing: c.allOrNothing, BaseDir: c.baseDir})
	if rep != nil {
		printReport(out, rep)
	}
	if err != nil {
		return err
	}
	if rep.Rejected() > 0 {
		return errRejected
	}
	return nil
}

func printMigrations(out io.Writer, r *migrate.Report) {
	steps, verb := r.Applied, "applied"
	if r.DryRun {
		steps, verb = r.Planned, "would apply"
	}
	if len(steps) == 0 {
		fmt.Fprintf(out, "migrations: up to date (version %d)\n", r.Current)
		return
	}
	for _, s := range steps {
		fmt.Fprintf(out, "migrations: %s %d %s\n", verb, s.Version, s.Name)
	}
}

func printReport(out io.Writer, r *inventoryfile.ImportReport) {
	if r.DryRun {
		fmt.Fprintln(out, "dry run: nothing was written; an import would do this:")
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "section\tinserted\tupdated\tunchanged\trejected\t")
	for _, s := range []struct {
		name string
		c    inventoryfile.Counts
	}{{"licenses", r.Licenses}, {"datasets", r.Datasets}, {"artifacts", r.Artifacts}, {"versions", r.Versions}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", s.name, s.c.Inserted, s.c.Updated, s.c.Unchanged, s.c.Rejected)
	}
	_ = tw.Flush()
	if r.Changed() == 0 && r.Rejected() == 0 {
		fmt.Fprintln(out, "everything unchanged")
	}
	for _, rej := range r.Rejections {
		fmt.Fprintln(out, "rejected:", rej)
	}
	if r.MoreRejections > 0 {
		fmt.Fprintf(out, "rejected: … and %d more\n", r.MoreRejections)
	}
	fmt.Fprintf(out, "read %d bytes\n", r.Bytes)
}
