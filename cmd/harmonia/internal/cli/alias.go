package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia"
)

func (a *app) aliasCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alias",
		Short: "Move, read and watch aliases (production, canary, ...) over versions",
		Long: `alias manages the names that services follow instead of "the latest
version": an alias points at a published version and is moved on purpose.
Every move is recorded with who, when and why ('alias history'). A move can
be made compare-and-set with --expect (or --expect-absent): if someone else
moved the alias first, the command exits with code 4 and names where the
alias actually points.`,
		Example: `  harmonia alias set production 2026.11.0 --by alice --reason "rollout" --expect 2026.10.0
  harmonia alias get production
  harmonia alias list
  harmonia alias history production
  harmonia alias watch production`,
	}
	return group(cmd, a.aliasSetCommand(), a.aliasGetCommand(), a.aliasListCommand(), a.aliasHistoryCommand(),
		a.aliasDeleteCommand(), a.aliasWatchCommand())
}

// aliasJSON is an alias in --json output.
type aliasJSON struct {
	Name       string    `json:"name"`
	VersionTag string    `json:"version_tag"`
	Digest     string    `json:"digest"`
	Seq        int64     `json:"seq"`
	UpdatedBy  string    `json:"updated_by"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func aliasOf(al *harmonia.Alias) aliasJSON {
	return aliasJSON{Name: al.Name, VersionTag: al.VersionTag, Digest: al.Digest, Seq: al.Seq, UpdatedBy: al.UpdatedBy, UpdatedAt: al.UpdatedAt}
}

// moveJSON is an alias move in --json output.
type moveJSON struct {
	Alias   string    `json:"alias"`
	Seq     int64     `json:"seq"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Digest  string    `json:"digest"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"`
	Initial bool      `json:"initial,omitempty"`
}

func moveOf(m *harmonia.AliasMove) moveJSON {
	return moveJSON{Alias: m.Alias, Seq: m.Seq, From: m.From, To: m.To, Digest: m.Digest, By: m.By, At: m.At, Reason: m.Reason}
}

// setAliasFlags adds the flags of a move to cmd.
func setAliasFlags(cmd *cobra.Command, o *harmonia.SetAliasOpts) {
	fl := cmd.Flags()
	fl.StringVar(&o.By, "by", "", "who moves the alias (required)")
	fl.StringVar(&o.Reason, "reason", "", "why, kept in the alias's history")
	fl.StringVar(&o.ExpectVersion, "expect", "", "move only if the alias points at this version tag now (compare-and-set)")
	fl.BoolVar(&o.ExpectAbsent, "expect-absent", false, "move only if the alias does not exist yet")
	_ = cmd.MarkFlagRequired("by")
}

// printMove prints a move just made.
func (a *app) printMove(m *harmonia.AliasMove) error {
	if a.json {
		return a.printJSON(moveOf(m))
	}
	switch {
	case m.To == "":
		fmt.Fprintf(a.stdout, "alias %s deleted (was %s)\n", m.Alias, m.From)
	case m.From == "":
		fmt.Fprintf(a.stdout, "alias %s -> %s (%s)\n", m.Alias, m.To, m.Digest)
	default:
		fmt.Fprintf(a.stdout, "alias %s -> %s (%s), was %s\n", m.Alias, m.To, m.Digest, m.From)
	}
	return nil
}

func (a *app) aliasSetCommand() *cobra.Command {
	var o harmonia.SetAliasOpts
	cmd := &cobra.Command{
		Use:   "set NAME TAG --by WHO",
		Short: "Point an alias at a published version",
		Long: `set points the alias NAME at the published version TAG, creating the
alias if needed, and records the move (who, when, why). With --expect TAG
the move happens only if the alias points at TAG now; with
--expect-absent only if it does not exist yet; otherwise the command exits
with code 4 and says where the alias points.`,
		Example: `  harmonia alias set production 2026.11.0 --by alice
  harmonia alias set production 2026.11.0 --by deploy-bot --expect 2026.10.0 --reason "weekly rollout"`,
		Args: exactArgs("NAME", "TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			m, err := store.SetAlias(cmd.Context(), args[0], args[1], &o)
			if err != nil {
				return err
			}
			return a.printMove(m)
		},
	}
	setAliasFlags(cmd, &o)
	return cmd
}

func (a *app) aliasDeleteCommand() *cobra.Command {
	var o harmonia.DeleteAliasOpts
	cmd := &cobra.Command{
		Use:   "delete NAME --by WHO",
		Short: "Remove an alias (recorded in its history)",
		Long: `delete removes the alias NAME; the removal is recorded in its history
like any move, and setting the alias again continues that history.
--expect makes it compare-and-set, as for 'alias set'.`,
		Example: `  harmonia alias delete canary --by alice --reason "canary finished"`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			m, err := store.DeleteAlias(cmd.Context(), args[0], &o)
			if err != nil {
				return err
			}
			return a.printMove(m)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.By, "by", "", "who removes the alias (required)")
	fl.StringVar(&o.Reason, "reason", "", "why, kept in the alias's history")
	fl.StringVar(&o.ExpectVersion, "expect", "", "remove only if the alias points at this version tag now (compare-and-set)")
	_ = cmd.MarkFlagRequired("by")
	return cmd
}

func (a *app) aliasGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show where an alias points",
		Long: `get prints the version the alias NAME points at, with its content
digest, and who moved it last and when. An unknown alias exits with code 3.`,
		Example: `  harmonia alias get production
  harmonia alias get production --json`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			al, err := store.GetAlias(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(aliasOf(al))
			}
			fmt.Fprintf(a.stdout, "alias    %s\nversion  %s\ndigest   %s\nmoved    %s by %s (move %d)\n",
				al.Name, al.VersionTag, al.Digest, timeText(al.UpdatedAt), al.UpdatedBy, al.Seq)
			return nil
		},
	}
}

func (a *app) aliasListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the aliases",
		Long:  `list prints every alias, by name, with the version it points at.`,
		Example: `  harmonia alias list
  harmonia alias list --json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			als, err := store.ListAliases(cmd.Context())
			if err != nil {
				return err
			}
			out := make([]aliasJSON, len(als))
			for i, al := range als {
				out[i] = aliasOf(al)
			}
			if a.json {
				return a.printJSON(map[string]any{"aliases": out})
			}
			t := a.newTable("ALIAS", "VERSION", "MOVED AT", "BY", "DIGEST")
			for _, al := range out {
				t.row(al.Name, al.VersionTag, timeText(al.UpdatedAt), al.UpdatedBy, al.Digest)
			}
			return t.flush()
		},
	}
}

func (a *app) aliasHistoryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "history NAME",
		Short: "List every move of an alias, oldest first",
		Long: `history prints the audit trail of the alias NAME: every move, oldest
first, with where it pointed before and after, who moved it, when and why.
A deletion is a move to "-". An alias that never existed exits with code 3.`,
		Example: `  harmonia alias history production
  harmonia alias history production --json`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			out := []moveJSON{}
			f := harmonia.AliasHistoryFilter{Limit: harmonia.ListLimitMax}
			for {
				ms, err := store.AliasHistory(cmd.Context(), args[0], f)
				if err != nil {
					return err
				}
				for _, m := range ms {
					out = append(out, moveOf(m))
				}
				if len(ms) < f.Limit {
					break
				}
				f.AfterSeq = ms[len(ms)-1].Seq
			}
			if a.json {
				return a.printJSON(map[string]any{"alias": args[0], "moves": out})
			}
			t := a.newTable("SEQ", "AT", "FROM", "TO", "BY", "REASON")
			for _, m := range out {
				t.row(strconv.FormatInt(m.Seq, 10), timeText(m.At), m.From, m.To, m.By, m.Reason)
			}
			return t.flush()
		},
	}
}

func (a *app) aliasWatchCommand() *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "watch NAME",
		Short: "Print where an alias points, then each move, until interrupted",
		Long: `watch prints where the alias NAME points now, then every move of it as
it happens, each once and in order, until interrupted (SIGINT or SIGTERM).
It polls every --interval and rides out server restarts and network errors
(reported on standard error). With --json each event is one JSON document
per line (JSON Lines).`,
		Example: `  harmonia alias watch production
  harmonia alias watch production --json --interval 5s`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			a.announceServer()
			enc := json.NewEncoder(a.stdout)
			for ev, err := range store.WatchAlias(cmd.Context(), args[0], &harmonia.WatchOpts{Interval: interval}) {
				if harmonia.ErrorCode(err) == harmonia.CodeInvalid {
					return err
				}
				if err != nil {
					fmt.Fprintln(a.stderr, errorText(err), "(retrying)")
					continue
				}
				m := moveOf(&ev.AliasMove)
				m.Initial = ev.Initial
				if a.json {
					if err := enc.Encode(m); err != nil {
						return err
					}
					continue
				}
				switch {
				case ev.Initial:
					fmt.Fprintf(a.stdout, "%s %s -> %s (%s)\n", timeText(m.At), m.Alias, m.To, m.Digest)
				case m.To == "":
					fmt.Fprintf(a.stdout, "%s %s deleted (was %s) by %s\n", timeText(m.At), m.Alias, m.From, m.By)
				default:
					fmt.Fprintf(a.stdout, "%s %s moved %s -> %s (%s) by %s\n", timeText(m.At), m.Alias, m.From, m.To, m.Digest, m.By)
				}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", harmonia.WatchIntervalDefault, "time between two polls")
	return cmd
}
