package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia"
)

// checkJSON is check --json: the library's report, with ok.
type checkJSON struct {
	OK bool `json:"ok"`
	*harmonia.CheckReport
}

func (a *app) checkCommand() *cobra.Command {
	var repair bool
	cmd := &cobra.Command{
		Use:   "check [--repair]",
		Short: "Check that the inventory is whole: marks, digests, references, publishes, leases, schema",
		Long: `check reads the whole inventory once (Store.Check) and reports every
broken invariant with its kind, entity, key and field: a published version
whose artifacts or datasets do not all carry its mark; a published_in entry
naming no version; a version whose digest or manifest does not match; a
license, dataset, version member or alias target that does not exist; a
staged publish pending past its recovery time; a running job whose lease
expired long ago; a document whose schema_version is older than the
applied migrations. Memory grows with the versions, not the artifacts.

--repair makes whole what can be without guessing (missing marks set, marks
naming no version removed, stale pending publishes settled as recovery
does) and reports each as repaired; what needs a person (a drifted digest,
content changed under a published version, a missing reference) is
reported and never changed.

It exits with code 5 when a problem remains: any problem without --repair,
one that could not be repaired with it.`,
		Example: `  harmonia check
  harmonia check --repair --json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.store(ctx)
			if err != nil {
				return err
			}
			opts := &harmonia.CheckOpts{Repair: repair}
			var t *table
			if !a.json {
				t = a.newTable("PROBLEM", "ENTITY", "KEY", "FIELD", "VERSION", "REPAIRED", "DETAIL")
				opts.OnProblem = func(p harmonia.Problem) {
					repaired := "no"
					if p.Repaired {
						repaired = "yes"
					}
					t.row(string(p.Kind), p.Entity, p.Key, p.Field, p.Version, repaired, p.Detail)
				}
			}
			rep, err := store.Check(ctx, opts)
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(checkJSON{OK: rep.OK(), CheckReport: rep}); err != nil {
					return err
				}
			} else {
				if rep.Found > 0 {
					if err := t.flush(); err != nil {
						return err
					}
				}
				fmt.Fprintf(a.stdout, "checked %d artifacts, %d datasets, %d versions, %d licenses, %d aliases: %d problems, %d repaired\n",
					rep.Checked[harmonia.CollectionArtifacts], rep.Checked[harmonia.CollectionDatasets], rep.Checked[harmonia.CollectionVersions],
					rep.Checked[harmonia.CollectionLicenses], rep.Checked[harmonia.CollectionAliases], rep.Found, rep.Repaired)
			}
			if !rep.OK() {
				return &exitError{code: ExitCheckFailed, msg: fmt.Sprintf("harmonia: check: %d of %d problems remain", rep.Found-rep.Repaired, rep.Found)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "repair what can be repaired without guessing, and report it")
	return cmd
}
