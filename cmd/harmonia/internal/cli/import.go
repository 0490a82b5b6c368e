package cli

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// countsJSON is one section's outcomes in import --json.
type countsJSON struct {
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Rejected  int `json:"rejected"`
}

// rejectionJSON is one rejected entry's reason in import --json.
type rejectionJSON struct {
	Section string `json:"section"`
	Index   int    `json:"index"`
	Key     string `json:"key,omitempty"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason"`
}

// importJSON is import --json.
type importJSON struct {
	File           string          `json:"file"`
	DryRun         bool            `json:"dry_run"`
	Bytes          int64           `json:"bytes"`
	Licenses       countsJSON      `json:"licenses"`
	Datasets       countsJSON      `json:"datasets"`
	Artifacts      countsJSON      `json:"artifacts"`
	Versions       countsJSON      `json:"versions"`
	Changed        int             `json:"changed"`
	Rejections     []rejectionJSON `json:"rejections"`
	MoreRejections int             `json:"more_rejections"`
}

func countsOf(c inventoryfile.Counts) countsJSON {
	return countsJSON{Inserted: c.Inserted, Updated: c.Updated, Unchanged: c.Unchanged, Rejected: c.Rejected}
}

func (a *app) importCommand() *cobra.Command {
	var o inventoryfile.ImportOptions
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a combined inventory file",
		Long: `import brings the database in line with a combined inventory file
(licenses, datasets, artifacts and versions; see the library's
inventoryfile package): new entries are inserted, changed ones updated,
versions published. It is idempotent: a second import of the same file
changes nothing and says so. Rejected entries are listed with their
section, index, natural key, field and reason, and make the command exit
with code 2; the other entries are imported unless --all-or-nothing is
given. --dry-run checks the whole file against the database and writes
nothing.

Paths in the file are stored as written, relative to the file's
directory: run 'harmonia verify --root DIR' and 'harmonia worker --root DIR'
with that directory. --base-dir joins a directory to every relative path
instead.`,
		Example: `  harmonia import examples/inventory/combined_inventory.json
  harmonia import --dry-run inventory.json
  harmonia import --all-or-nothing --json inventory.json`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			f, err := os.Open(name)
			if err != nil {
				return &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "command", Field: "file", Reason: "cannot open " + name, Err: err}
			}
			defer f.Close()
			var size int64 = -1
			if fi, err := f.Stat(); err == nil {
				if fi.IsDir() {
					return &harmonia.Error{Code: harmonia.CodeInternal, Entity: "command", Field: "file",
						Reason: "cannot read " + echo(name) + ": it is a directory, not an inventory file"}
				}
				size = fi.Size()
			}
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			opts := o
			bar := a.newProgress("import", size, true)
			opts.Progress = func(p inventoryfile.ImportProgress) {
				bar.update(p.Bytes, fmt.Sprintf("%s pass, %s: %d entries, %d bytes read", p.Pass, p.Section, p.Entries, p.Bytes))
			}
			rep, err := inventoryfile.Import(cmd.Context(), store, f, &opts)
			bar.finish()
			if err != nil {
				return err // no report: nothing on stdout may look like success
			}
			n := rep.Rejected()
			if n == 0 || a.json {
				if err := a.printImportReport(name, rep); err != nil {
					return err
				}
			}
			if n > 0 {
				first, field := "not listed", ""
				if len(rep.Rejections) > 0 {
					first, field = rep.Rejections[0].String(), rep.Rejections[0].Field
				}
				return &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "inventory_file", Field: field,
					Reason: fmt.Sprintf("%s rejected, %s changed; the first: %s (--json lists them all)",
						plural(int64(n), "entry"), plural(int64(rep.Changed()), "other entry"), first)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.DryRun, "dry-run", false, "check the file against the database and report; write nothing")
	fl.BoolVar(&o.AllOrNothing, "all-or-nothing", false, "write nothing unless every entry is accepted")
	fl.StringVar(&o.BaseDir, "base-dir", "", "directory joined to every relative path of the file (default: store paths as written)")
	fl.BoolVar(&o.RequireCommercialUse, "require-commercial-use", false, "publish the file's versions only when all their licenses allow commercial use")
	return cmd
}

// printImportReport prints what an import did.
func (a *app) printImportReport(file string, rep *inventoryfile.ImportReport) error {
	if a.json {
		j := importJSON{File: file, DryRun: rep.DryRun, Bytes: rep.Bytes,
			Licenses: countsOf(rep.Licenses), Datasets: countsOf(rep.Datasets), Artifacts: countsOf(rep.Artifacts), Versions: countsOf(rep.Versions),
			Changed: rep.Changed(), Rejections: make([]rejectionJSON, len(rep.Rejections)), MoreRejections: rep.MoreRejections}
		for i, r := range rep.Rejections {
			j.Rejections[i] = rejectionJSON{Section: r.Section, Index: r.Index, Key: r.Key, Field: r.Field, Reason: r.Reason}
		}
		return a.printJSON(j)
	}
	t := a.newTable("SECTION", "INSERTED", "UPDATED", "UNCHANGED", "REJECTED")
	for _, s := range []struct {
		name string
		c    inventoryfile.Counts
	}{{"licenses", rep.Licenses}, {"datasets", rep.Datasets}, {"artifacts", rep.Artifacts}, {"versions", rep.Versions}} {
		t.row(s.name, strconv.Itoa(s.c.Inserted), strconv.Itoa(s.c.Updated), strconv.Itoa(s.c.Unchanged), strconv.Itoa(s.c.Rejected))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, r := range rep.Rejections {
		fmt.Fprintf(a.stdout, "rejected %s\n", r)
	}
	if rep.MoreRejections > 0 {
		fmt.Fprintf(a.stdout, "… and %s more\n", plural(int64(rep.MoreRejections), "rejection"))
	}
	switch {
	case rep.DryRun:
		fmt.Fprintf(a.stdout, "dry run of %s: %s would change; nothing written\n", file, plural(int64(rep.Changed()), "entry"))
	case rep.Changed() == 0 && rep.Rejected() == 0:
		fmt.Fprintf(a.stdout, "%s: nothing to change\n", file)
	default:
		fmt.Fprintf(a.stdout, "%s: %s changed\n", file, plural(int64(rep.Changed()), "entry"))
	}
	return nil
}
