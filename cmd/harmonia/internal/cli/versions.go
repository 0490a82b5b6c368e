package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

func (a *app) versionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "versions",
		Short: "List, show and compare published inventory versions",
		Long: `versions reads the published inventory versions: list them (newest
first), show one with its contents and content digest, or compare two.`,
		Example: `  harmonia versions list
  harmonia versions show 2026.11.0
  harmonia versions diff 2026.10.0 2026.11.0 --json`,
	}
	return group(cmd, a.versionsListCommand(), a.versionsShowCommand(), a.versionsDiffCommand())
}

// versionSummaryJSON is one version of versions list --json.
type versionSummaryJSON struct {
	VersionTag  string `json:"version_tag"`
	Digest      string `json:"digest"`
	PublishedBy string `json:"published_by"`
	PublishedAt string `json:"published_at"`
	Artifacts   int    `json:"artifacts"`
	Datasets    int    `json:"datasets"`
	Notes       string `json:"notes,omitempty"`
}

// eachVersion calls fn with every published version, newest first.
func eachVersion(ctx context.Context, store *harmonia.Store, limit int, fn func(*harmonia.InventoryVersion)) error {
	f := harmonia.VersionFilter{Limit: harmonia.ListLimitMax}
	n := 0
	for {
		page, err := store.ListVersions(ctx, f)
		if err != nil {
			return err
		}
		for _, v := range page.Items {
			if limit > 0 && n == limit {
				return nil
			}
			fn(v)
			n++
		}
		if !page.More() {
			return nil
		}
		f.After = page.Next
	}
}

func (a *app) versionsListCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the published versions, newest first",
		Long: `list prints every published inventory version, newest first, with its
content digest, who published it and when, and how many artifacts and
datasets it holds. --limit keeps the newest N.`,
		Example: `  harmonia versions list
  harmonia versions list --limit 5 --json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			out := []versionSummaryJSON{}
			err = eachVersion(cmd.Context(), store, limit, func(v *harmonia.InventoryVersion) {
				out = append(out, versionSummaryJSON{VersionTag: v.VersionTag, Digest: v.Digest, PublishedBy: v.PublishedBy,
					PublishedAt: timeText(v.PublishedAt), Artifacts: len(v.Manifest.Artifacts), Datasets: len(v.Manifest.Datasets), Notes: v.Notes})
			})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"versions": out})
			}
			t := a.newTable("TAG", "PUBLISHED AT", "BY", "ARTIFACTS", "DATASETS", "DIGEST")
			for _, v := range out {
				t.row(v.VersionTag, v.PublishedAt, v.PublishedBy, strconv.Itoa(v.Artifacts), strconv.Itoa(v.Datasets), v.Digest)
			}
			return t.flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many versions (default: all)")
	return cmd
}

// versionJSON is versions show --json.
type versionJSON struct {
	VersionTag  string             `json:"version_tag"`
	Digest      string             `json:"digest"`
	PublishedBy string             `json:"published_by"`
	PublishedAt string             `json:"published_at"`
	Notes       string             `json:"notes,omitempty"`
	Artifacts   []versionEntryJSON `json:"artifacts"`
	Datasets    []versionEntryJSON `json:"datasets"`
}

// versionEntryJSON is an artifact or dataset of versions show --json: the
// manifest's record, and the entry's path as stored now.
type versionEntryJSON struct {
	itemJSON
	Path          string `json:"path"`
	CommercialUse bool   `json:"commercial_use"`
}

func (a *app) versionsShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show TAG",
		Short: "Show a version: its content digest, artifacts and datasets",
		Long: `show prints the published version TAG: its content digest (the same
for the same contents in any database), who published it and when, and
each artifact and dataset with its version, license, size and sha256. An
unknown tag exits with code 3.`,
		Example: `  harmonia versions show 2026.11.0
  harmonia versions show 2026.11.0 --json`,
		Args: exactArgs("TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := a.store(cmd.Context())
			if err != nil {
				return err
			}
			c, err := store.VersionContentsByTag(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			v := c.Version
			path := map[bson.ObjectID]string{}
			commercial := map[bson.ObjectID]bool{}
			for _, art := range c.Artifacts {
				path[art.ID] = art.Path
				commercial[art.ID] = c.Licenses[art.LicenseID] != nil && c.Licenses[art.LicenseID].CommercialUse
			}
			for _, d := range c.Datasets {
				path[d.ID] = d.Path
				commercial[d.ID] = c.Licenses[d.LicenseID] != nil && c.Licenses[d.LicenseID].CommercialUse
			}
			entries := func(ms []harmonia.ManifestItem) []versionEntryJSON {
				out := make([]versionEntryJSON, len(ms))
				for i, m := range ms {
					out[i] = versionEntryJSON{itemJSON: itemOf("", m), Path: path[m.ID], CommercialUse: commercial[m.ID]}
				}
				return out
			}
			j := versionJSON{VersionTag: v.VersionTag, Digest: v.Digest, PublishedBy: v.PublishedBy, PublishedAt: timeText(v.PublishedAt),
				Notes: v.Notes, Artifacts: entries(v.Manifest.Artifacts), Datasets: entries(v.Manifest.Datasets)}
			if a.json {
				return a.printJSON(j)
			}
			fmt.Fprintf(a.stdout, "version    %s\ndigest     %s\npublished  %s by %s\n", j.VersionTag, j.Digest, j.PublishedAt, j.PublishedBy)
			if j.Notes != "" {
				fmt.Fprintf(a.stdout, "notes      %s\n", j.Notes)
			}
			fmt.Fprintln(a.stdout)
			t := a.newTable("KIND", "NAME", "VERSION", "LICENSE", "SIZE", "SHA256")
			for _, group := range []struct {
				kind string
				es   []versionEntryJSON
			}{{"artifact", j.Artifacts}, {"dataset", j.Datasets}} {
				for _, e := range group.es {
					t.row(group.kind, e.Name, e.Version, e.License, strconv.FormatInt(e.SizeBytes, 10), e.SHA256)
				}
			}
			return t.flush()
		},
	}
}

// changeJSON is one changed item of versions diff --json.
type changeJSON struct {
	Kind string   `json:"kind"`
	From itemJSON `json:"from"`
	To   itemJSON `json:"to"`
}

// diffJSON is versions diff --json.
type diffJSON struct {
	From    string       `json:"from"`
	To      string       `json:"to"`
	Added   []itemJSON   `json:"added"`
	Removed []itemJSON   `json:"removed"`
	Changed []changeJSON `json:"changed"`
}

// kindName is the word a table and --json use for an entity kind.
func kindName(entity string) string {
	if entity == harmonia.EntityDataset {
		return "dataset"
	}
	return "artifact"
}

func (a *app) versionsDiffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff FROM TO",
		Short: "Compare two published versions",
		Long: `diff lists what changed from version FROM to version TO: artifacts and
datasets added, removed, and changed (another version, sha256, size or
license under the same name). An unknown tag exits with code 3.`,
		Example: `  harmonia versions diff 2026.10.0 2026.11.0
  harmonia versions diff 2026.10.0 2026.11.0 --json`,
		Args: exactArgs("FROM", "TO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.store(ctx)
			if err != nil {
				return err
			}
			d, err := store.DiffVersionsByTag(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			from, err := store.GetVersionByTag(ctx, args[0])
			if err != nil {
				return err
			}
			to, err := store.GetVersionByTag(ctx, args[1])
			if err != nil {
				return err
			}
			arts := idsOf(from.Manifest.Artifacts)
			for id := range idsOf(to.Manifest.Artifacts) {
				arts[id] = true
			}
			kind := func(m harmonia.ManifestItem) string {
				if arts[m.ID] {
					return "artifact"
				}
				return "dataset"
			}
			j := diffJSON{From: d.From, To: d.To, Added: []itemJSON{}, Removed: []itemJSON{}, Changed: []changeJSON{}}
			for _, m := range d.Added {
				j.Added = append(j.Added, itemOf(kind(m), m))
			}
			for _, m := range d.Removed {
				j.Removed = append(j.Removed, itemOf(kind(m), m))
			}
			for _, c := range d.Changed {
				k := kindName(c.Kind)
				j.Changed = append(j.Changed, changeJSON{Kind: k, From: itemOf(k, c.From), To: itemOf(k, c.To)})
			}
			if a.json {
				return a.printJSON(j)
			}
			if len(j.Added)+len(j.Removed)+len(j.Changed) == 0 {
				fmt.Fprintf(a.stdout, "%s and %s have the same contents\n", d.From, d.To)
				return nil
			}
			t := a.newTable("CHANGE", "KIND", "NAME", d.From, d.To)
			for _, m := range j.Removed {
				t.row("removed", m.Kind, m.Name, m.Version, "")
			}
			for _, m := range j.Added {
				t.row("added", m.Kind, m.Name, "", m.Version)
			}
			for _, c := range j.Changed {
				t.row("changed", c.Kind, c.From.Name, itemText(c.From), itemText(c.To))
			}
			return t.flush()
		},
	}
}

// itemText is a changed manifest item in a diff table: its version,
// license and the start of its sha256.
func itemText(m itemJSON) string {
	return m.Version + " (" + m.License + ", " + m.SHA256[:min(12, len(m.SHA256))] + ")"
}
