package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia/migrate"
)

func (a *app) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, revert and inspect the database's schema migrations",
		Long: `migrate runs harmonia's built-in schema migrations (package migrate):
indexes and validators, then the data changes of later schema versions.
Run 'harmonia migrate up' once per deployment before a rollout; it is safe
to run again and from several places at once (a lease lock serializes the
runners). The embedded server (no --uri) is migrated by every command
automatically.`,
		Example: `  harmonia migrate status
  harmonia migrate up --dry-run
  harmonia migrate up --to 3
  harmonia migrate down 2
  harmonia migrate goto 4
  harmonia migrate force 5
  harmonia migrate resolve 4`,
	}
	return group(cmd, a.migrateUpCommand(), a.migrateDownCommand(), a.migrateGotoCommand(), a.migrateForceCommand(),
		a.migrateStatusCommand(), a.migrateResolveCommand())
}

// runner returns a migration runner on the run's database.
func (a *app) runner(ctx context.Context) (*migrate.Runner, error) {
	db, err := a.database(ctx, false)
	if err != nil {
		return nil, err
	}
	return migrate.New(db, migrate.Builtin(), nil)
}

// stepJSON is one migration of a report, as --json prints it.
type stepJSON struct {
	Version     int64            `json:"version"`
	Name        string           `json:"name"`
	Resumed     bool             `json:"resumed"`
	Transaction bool             `json:"transaction"`
	DurationMS  int64            `json:"duration_ms"`
	Counts      map[string]int64 `json:"counts,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// reportJSON is a migrate up or down report, as --json prints it.
type reportJSON struct {
	DryRun   bool       `json:"dry_run"`
	Planned  []stepJSON `json:"planned"`
	Applied  []stepJSON `json:"applied"`
	Reverted []stepJSON `json:"reverted"`
	Failed   *stepJSON  `json:"failed,omitempty"`
	Current  int64      `json:"current"`
}

func stepsJSON(steps []migrate.Step) []stepJSON {
	out := make([]stepJSON, len(steps))
	for i, s := range steps {
		out[i] = stepJSON{Version: s.Version, Name: s.Name, Resumed: s.Resumed, Transaction: s.Transaction,
			DurationMS: s.Duration.Milliseconds(), Counts: s.Counts, Error: s.Error}
	}
	return out
}

// printMigrateReport prints rep (which may be nil after an early error).
func (a *app) printMigrateReport(rep *migrate.Report) error {
	if rep == nil {
		return nil
	}
	if a.json {
		j := reportJSON{DryRun: rep.DryRun, Planned: stepsJSON(rep.Planned), Applied: stepsJSON(rep.Applied),
			Reverted: stepsJSON(rep.Reverted), Current: rep.Current}
		if rep.Failed != nil {
			f := stepsJSON([]migrate.Step{*rep.Failed})[0]
			j.Failed = &f
		}
		return a.printJSON(j)
	}
	switch {
	case rep.DryRun && len(rep.Planned) == 0:
		fmt.Fprintf(a.stdout, "nothing to apply; current version %d\n", rep.Current)
	case rep.DryRun:
		t := a.newTable("WOULD APPLY", "NAME", "RESUMED")
		for _, s := range rep.Planned {
			t.row(strconv.FormatInt(s.Version, 10), s.Name, strconv.FormatBool(s.Resumed))
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "current version %d (dry run: nothing written)\n", rep.Current)
	default:
		done := append(append([]migrate.Step{}, rep.Applied...), rep.Reverted...)
		verb := "APPLIED"
		if len(rep.Reverted) > 0 {
			verb = "REVERTED"
		}
		if len(done) > 0 {
			t := a.newTable(verb, "NAME", "TRANSACTION", "DURATION")
			for _, s := range done {
				t.row(strconv.FormatInt(s.Version, 10), s.Name, strconv.FormatBool(s.Transaction), s.Duration.Round(time.Millisecond).String())
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if rep.Failed != nil {
			fmt.Fprintf(a.stdout, "FAILED %d %s: %s\n", rep.Failed.Version, rep.Failed.Name, rep.Failed.Error)
		}
		fmt.Fprintf(a.stdout, "current version %d\n", rep.Current)
	}
	return nil
}

func (a *app) migrateUpCommand() *cobra.Command {
	var to int64
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Apply the pending migrations",
		Long: `up applies the pending migrations in order, up to --to (default: all),
each in a transaction where the deployment has them. It refuses to run
while a migration is recorded as failed: read 'migrate status', repair,
then 'migrate resolve VERSION'. --dry-run prints what would run and writes
nothing.`,
		Example: `  harmonia migrate up
  harmonia migrate up --to 2 --dry-run --json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.runner(cmd.Context())
			if err != nil {
				return err
			}
			return a.migrateReport(r.Up(cmd.Context(), &migrate.UpOpts{To: to, DryRun: dryRun}))
		},
	}
	cmd.Flags().Int64Var(&to, "to", 0, "stop after this migration version (default: apply all)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would run; write nothing")
	return cmd
}

func (a *app) migrateDownCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "down [N]",
		Short: "Revert the last N applied migrations (default 1)",
		Long: `down reverts the highest applied migration, or the N highest, highest
first (golang-migrate's "down N"; N = all reverts every applied one). A
migration without a Down function cannot be reverted (exit code 2): down
stops there.`,
		Example: `  harmonia migrate down
  harmonia migrate down 2`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 1
			if len(args) == 1 {
				if args[0] == "all" {
					n = 0
				} else if v, err := strconv.Atoi(args[0]); err == nil && v > 0 {
					n = v
				} else {
					return invalidArg("N", "%q is not a number of migrations (a positive integer, or all)", echo(args[0]))
				}
			}
			r, err := a.runner(cmd.Context())
			if err != nil {
				return err
			}
			return a.migrateReport(r.DownSteps(cmd.Context(), n))
		},
	}
}

// migrationVersion parses a VERSION argument: a positive integer, or 0
// where zero is allowed.
func migrationVersion(arg string, zero bool) (int64, error) {
	v, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || v < 0 || (v == 0 && !zero) {
		return 0, invalidArg("version", "%q is not a migration version (a positive integer)", echo(arg))
	}
	return v, nil
}

// versionRunner parses a VERSION argument (0 allowed) and returns the
// run's migration runner.
func (a *app) versionRunner(ctx context.Context, arg string) (*migrate.Runner, int64, error) {
	v, err := migrationVersion(arg, true)
	if err != nil {
		return nil, 0, err
	}
	r, err := a.runner(ctx)
	return r, v, err
}

// migrateReport prints rep of a run that succeeded, or returns err.
func (a *app) migrateReport(rep *migrate.Report, err error) error {
	if err != nil {
		return err
	}
	return a.printMigrateReport(rep)
}

func (a *app) migrateGotoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "goto VERSION",
		Short: "Migrate up or down to VERSION",
		Long: `goto applies the pending migrations up to VERSION when it is above the
current version, and reverts the applied ones above it (highest first)
when it is below, as golang-migrate's "goto V" does; 0 reverts
everything. It holds the migrate lock throughout.`,
		Example: `  harmonia migrate goto 4`,
		Args:    exactArgs("VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, v, err := a.versionRunner(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.migrateReport(r.Goto(cmd.Context(), v))
		},
	}
}

func (a *app) migrateForceCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "force VERSION",
		Short: "Record the database as at VERSION without running anything",
		Long: `force records every migration up to VERSION as applied and deletes the
records above it, clearing failed ones, without running any migration
and without touching the data, as golang-migrate's "force V" does: for
after a person repaired a failed migration by hand. It holds the
migrate lock. 0 records no migration as applied.`,
		Example: `  harmonia migrate force 5`,
		Args:    exactArgs("VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, v, err := a.versionRunner(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := r.Force(cmd.Context(), v); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"current": v})
			}
			fmt.Fprintf(a.stdout, "forced to version %d\n", v)
			return nil
		},
	}
}

// migrationJSON is one migration of migrate status --json.
type migrationJSON struct {
	Version          int64            `json:"version"`
	Name             string           `json:"name"`
	State            string           `json:"state"`
	Known            bool             `json:"known"`
	ChecksumMismatch bool             `json:"checksum_mismatch"`
	Owner            string           `json:"owner,omitempty"`
	Attempts         int              `json:"attempts"`
	StartedAt        *time.Time       `json:"started_at,omitempty"`
	AppliedAt        *time.Time       `json:"applied_at,omitempty"`
	DurationMS       int64            `json:"duration_ms"`
	Error            string           `json:"error,omitempty"`
	Counts           map[string]int64 `json:"counts,omitempty"`
}

// lockJSON is the lock of migrate status --json.
type lockJSON struct {
	Owner      string    `json:"owner"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Expired    bool      `json:"expired"`
}

// statusJSON is migrate status --json.
type statusJSON struct {
	Current     int64           `json:"current"`
	Pending     int             `json:"pending"`
	Failed      int             `json:"failed"`
	Interrupted int             `json:"interrupted"`
	Lock        *lockJSON       `json:"lock"`
	Migrations  []migrationJSON `json:"migrations"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *app) migrateStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List every migration with its state",
		Long: `status lists harmonia's migrations with their state (pending, running,
applied, failed, interrupted), when they ran, how long they took and why
they failed, and who holds the migration lock. It writes nothing.`,
		Example: `  harmonia migrate status
  harmonia migrate status --json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.runner(cmd.Context())
			if err != nil {
				return err
			}
			st, err := r.Status(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				j := statusJSON{Current: st.Current, Pending: st.Pending, Failed: st.Failed, Interrupted: st.Interrupted,
					Migrations: make([]migrationJSON, len(st.Migrations))}
				if st.Lock != nil {
					j.Lock = &lockJSON{Owner: st.Lock.Owner, AcquiredAt: st.Lock.AcquiredAt, ExpiresAt: st.Lock.ExpiresAt, Expired: st.Lock.Expired}
				}
				for i, m := range st.Migrations {
					j.Migrations[i] = migrationJSON{Version: m.Version, Name: m.Name, State: string(m.State), Known: m.Known,
						ChecksumMismatch: m.ChecksumMismatch, Owner: m.Owner, Attempts: m.Attempts,
						StartedAt: optTime(m.StartedAt), AppliedAt: optTime(m.AppliedAt),
						DurationMS: m.Duration.Milliseconds(), Error: m.Error, Counts: m.Counts}
				}
				return a.printJSON(j)
			}
			t := a.newTable("VERSION", "NAME", "STATE", "APPLIED AT", "ERROR")
			for _, m := range st.Migrations {
				name := m.Name
				if !m.Known {
					name += " (unknown to this program)"
				} else if m.ChecksumMismatch {
					name += " (recorded as " + m.RecordedName + ")"
				}
				t.row(strconv.FormatInt(m.Version, 10), name, string(m.State), timeText(m.AppliedAt), m.Error)
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "current version %d; %d pending, %d failed, %d interrupted\n", st.Current, st.Pending, st.Failed, st.Interrupted)
			if st.Lock != nil {
				fmt.Fprintf(a.stdout, "lock held by %s until %s (expired: %t)\n", st.Lock.Owner, timeText(st.Lock.ExpiresAt), st.Lock.Expired)
			}
			return nil
		},
	}
}

func (a *app) migrateResolveCommand() *cobra.Command {
	var markApplied bool
	cmd := &cobra.Command{
		Use:   "resolve VERSION",
		Short: "Clear a failed or interrupted migration's record after repairing",
		Long: `resolve clears the record of a failed (or interrupted) migration, after
a person has read its error and repaired what it left, so that the next
'migrate up' runs it again. With --mark-applied it is recorded as applied
instead, for when the repair did its work by hand. A version with no
record exits with code 3; an applied one with code 2.`,
		Example: `  harmonia migrate resolve 4
  harmonia migrate resolve 4 --mark-applied`,
		Args: exactArgs("VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := migrationVersion(args[0], false)
			if err != nil {
				return err
			}
			r, err := a.runner(cmd.Context())
			if err != nil {
				return err
			}
			if err := r.Resolve(cmd.Context(), v, &migrate.ResolveOpts{MarkApplied: markApplied}); err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"version": v, "mark_applied": markApplied})
			}
			fmt.Fprintf(a.stdout, "migration %d resolved\n", v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&markApplied, "mark-applied", false, "record the migration as applied instead of clearing it")
	return cmd
}
