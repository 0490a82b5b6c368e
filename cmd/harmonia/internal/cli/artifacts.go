package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

func (a *app) artifactsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifacts",
		Short: "List model artifacts",
		Long:  `artifacts reads the model artifacts of the inventory.`,
		Example: `  harmonia artifacts list --tag vision
  harmonia artifacts list --license Apache-2.0 --name-prefix res --json`,
	}
	return group(cmd, a.artifactsListCommand())
}

// artifactJSON is one artifact of artifacts list --json.
type artifactJSON struct {
	Name        string     `json:"name"`
	Version     string     `json:"version"`
	Path        string     `json:"path"`
	SizeBytes   int64      `json:"size_bytes"`
	SHA256      string     `json:"sha256"`
	License     string     `json:"license"`
	Tags        []string   `json:"tags"`
	Published   bool       `json:"published"`
	CreatedBy   string     `json:"created_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	VerifiedAt  *time.Time `json:"verified_at,omitempty"`
	VerifyError string     `json:"verify_error,omitempty"`
}

func (a *app) artifactsListCommand() *cobra.Command {
	var tags []string
	var license string
	var f harmonia.ArtifactFilter
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List model artifacts, with filters",
		Long: `list prints the model artifacts in the order they were created, with
their license, size, tags, whether they are published, and the state of
their last file check. Filters combine: --tag (repeatable; an artifact
must have every tag given), --license (an SPDX id, in any spelling),
--name-prefix. An unknown license exits with code 3.`,
		Example: `  harmonia artifacts list
  harmonia artifacts list --tag vision --tag onnx
  harmonia artifacts list --license mit --json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.store(ctx)
			if err != nil {
				return err
			}
			filter := f
			filter.TagsAll = tags
			if license != "" {
				l, err := store.GetLicenseBySPDXID(ctx, license)
				if err != nil {
					return err
				}
				filter.LicenseID = &l.ID
			}
			var arts []*harmonia.ModelArtifact
			var licIDs []bson.ObjectID // distinct, read in one query after the artifacts
			seen := map[bson.ObjectID]bool{}
			for art, err := range store.ArtifactsMatching(ctx, filter) {
				if err != nil {
					return err
				}
				if limit > 0 && len(arts) == limit {
					break
				}
				arts = append(arts, art)
				if !art.LicenseID.IsZero() && !seen[art.LicenseID] {
					seen[art.LicenseID] = true
					licIDs = append(licIDs, art.LicenseID)
				}
			}
			spdx := map[bson.ObjectID]string{}
			if len(licIDs) > 0 {
				for l, err := range store.AllLicenses(ctx, licIDs) {
					if err != nil {
						return err
					}
					spdx[l.ID] = l.SPDXID
				}
			}
			out := make([]artifactJSON, 0, len(arts))
			for _, art := range arts {
				j := artifactJSON{Name: art.Name, Version: art.Version, Path: art.Path, SizeBytes: art.SizeBytes,
					SHA256: art.Hashes.SHA256, Tags: art.Tags, Published: art.Published, CreatedBy: art.CreatedBy,
					CreatedAt: art.CreatedAt, VerifiedAt: art.VerifiedAt, VerifyError: art.VerifyError, License: spdx[art.LicenseID]}
				if j.Tags == nil {
					j.Tags = []string{}
				}
				out = append(out, j)
			}
			if a.json {
				return a.printJSON(map[string]any{"artifacts": out})
			}
			t := a.newTable("NAME", "VERSION", "LICENSE", "SIZE", "TAGS", "PUBLISHED", "CHECK")
			for _, j := range out {
				check := ""
				switch {
				case j.VerifyError != "":
					check = "failed: " + j.VerifyError
				case j.VerifiedAt != nil:
					check = "ok " + timePtrText(j.VerifiedAt)
				}
				t.row(j.Name, j.Version, j.License, strconv.FormatInt(j.SizeBytes, 10), strings.Join(j.Tags, ","), strconv.FormatBool(j.Published), check)
			}
			return t.flush()
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&tags, "tag", nil, "keep artifacts with this tag (repeatable: every tag must match)")
	fl.StringVar(&license, "license", "", "keep artifacts under this license (SPDX id)")
	fl.StringVar(&f.NamePrefix, "name-prefix", "", "keep artifacts whose name starts with this")
	fl.IntVar(&limit, "limit", 0, "list at most this many artifacts (default: all)")
	return cmd
}
