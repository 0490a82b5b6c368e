package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/inventoryfile"
)

// exportJSON is what export --json -o FILE prints.
type exportJSON struct {
	File      string `json:"file"`
	Version   string `json:"version,omitempty"`
	Licenses  int    `json:"licenses"`
	Datasets  int    `json:"datasets"`
	Artifacts int    `json:"artifacts"`
	Versions  int    `json:"versions"`
	Bytes     int64  `json:"bytes"`
}

func (a *app) exportCommand() *cobra.Command {
	var version, output, baseDir string
	cmd := &cobra.Command{
		Use:   "export [--version TAG] [-o FILE]",
		Short: "Export the inventory, or one version, as a combined inventory file",
		Long: `export writes the whole inventory, or with --version only that published
version and the licenses, datasets and artifacts it references, in the
combined inventory format that 'harmonia import' reads. The order is
canonical: the same data always gives the same bytes, so an export can be
diffed, reviewed and kept in version control, and importing it into an
empty database and exporting again gives the identical file.

It writes to standard output, or with -o to FILE (written beside it first
and renamed into place when complete, so a failed export leaves FILE as it
was). --base-dir writes the local paths inside a directory relative to
it, the inverse of 'import --base-dir'. With -o, a summary goes to standard output (with --json, as one JSON
document); without, the summary goes to standard error.`,
		Example: `  harmonia export -o inventory.json
  harmonia export --version 2026.11.0 -o release.json
  harmonia export | gzip > backup.json.gz`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.store(ctx)
			if err != nil {
				return err
			}
			var w io.Writer = a.stdout
			var tmp *os.File
			if output != "" {
				tmp, err = os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*.tmp")
				if err != nil {
					return &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "command", Field: "output", Reason: "cannot write beside " + output, Err: err}
				}
				defer os.Remove(tmp.Name()) // after the rename, a no-op
				defer tmp.Close()
				w = tmp
			}
			bar := a.newProgress("export", -1, true)
			rep, err := inventoryfile.Export(ctx, store, w, &inventoryfile.ExportOptions{Version: version, BaseDir: baseDir,
				Progress: func(p inventoryfile.ExportProgress) {
					bar.update(p.Bytes, fmt.Sprintf("%s: %d entries, %d bytes written", p.Section, p.Entries, p.Bytes))
				}})
			bar.finish()
			if err != nil {
				return err
			}
			if tmp != nil {
				if err := tmp.Close(); err != nil {
					return &harmonia.Error{Code: harmonia.CodeInternal, Entity: "command", Field: "output", Reason: "write " + output, Err: err}
				}
				if err := os.Rename(tmp.Name(), output); err != nil {
					return &harmonia.Error{Code: harmonia.CodeInternal, Entity: "command", Field: "output", Reason: "write " + output, Err: err}
				}
			}
			j := exportJSON{File: output, Version: version, Licenses: rep.Licenses, Datasets: rep.Datasets, Artifacts: rep.Artifacts,
				Versions: rep.Versions, Bytes: rep.Bytes}
			if output != "" && a.json {
				return a.printJSON(j)
			}
			summary := a.stdout
			if output == "" {
				j.File, summary = "standard output", a.stderr
			}
			fmt.Fprintf(summary, "exported %s, %s, %s, %s (%s) to %s\n", plural(int64(j.Licenses), "license"), plural(int64(j.Datasets), "dataset"),
				plural(int64(j.Artifacts), "artifact"), plural(int64(j.Versions), "version"), plural(j.Bytes, "byte"), j.File)
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "export only this published version and what it references")
	cmd.Flags().StringVar(&baseDir, "base-dir", "", "write local paths inside this directory relative to it (the inverse of import --base-dir)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	return cmd
}
