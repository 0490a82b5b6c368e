package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// splitKey splits "NAME@VERSION" (the last @ separates them).
func splitKey(flag, key string) (name, version string, err error) {
	i := strings.LastIndexByte(key, '@')
	if i <= 0 || i == len(key)-1 {
		return "", "", invalidArg(flag, "%q is not NAME@VERSION", key)
	}
	return key[:i], key[i+1:], nil
}

// resolveKeys turns the NAME@VERSION values of flag into ids with one
// lookup (byKey), however many there are.
func resolveKeys(ctx context.Context, flag string, values []string, byKey func(context.Context, []harmonia.NameVersion) ([]bson.ObjectID, error)) ([]bson.ObjectID, error) {
	if len(values) == 0 {
		return nil, nil
	}
	keys := make([]harmonia.NameVersion, len(values))
	for i, v := range values {
		name, version, err := splitKey(flag, v)
		if err != nil {
			return nil, err
		}
		keys[i] = harmonia.NameVersion{Name: name, Version: version}
	}
	return byKey(ctx, keys)
}

// publishJSON is publish --json.
type publishJSON struct {
	VersionTag  string     `json:"version_tag"`
	Digest      string     `json:"digest"`
	Created     bool       `json:"created"`
	Path        string     `json:"path"`
	PublishedBy string     `json:"published_by"`
	PublishedAt string     `json:"published_at"`
	Artifacts   []itemJSON `json:"artifacts"`
	Datasets    []itemJSON `json:"datasets"`
}

func (a *app) publishCommand() *cobra.Command {
	var arts, dss []string
	var req harmonia.PublishRequest
	cmd := &cobra.Command{
		Use:   "publish TAG --artifact NAME@VERSION... --by WHO",
		Short: "Publish an immutable inventory version",
		Long: `publish creates the inventory version TAG from the artifacts and
datasets named by --artifact and --dataset (each NAME@VERSION, repeatable),
and marks them published, as one unit (a transaction, or harmonia's staged
publish on deployments without transactions). Every artifact needs a
sha256 and a license; with --require-commercial-use every license must
allow commercial use. Publishing the same contents under the same tag
again changes nothing; other contents under an existing tag exit with
code 4. The version's content digest is printed.`,
		Example: `  harmonia publish 2026.12.0 --artifact resnet50@1.3.0 --artifact bert-base@1.0.0 \
      --dataset coco-subset@2024.1 --by release-bot --notes "December release"`,
		Args: exactArgs("TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(arts) == 0 {
				return invalidArg("artifact", "name at least one --artifact NAME@VERSION")
			}
			store, err := a.store(ctx)
			if err != nil {
				return err
			}
			r := req
			r.VersionTag = args[0]
			if r.ArtifactIDs, err = resolveKeys(ctx, "artifact", arts, store.ArtifactIDsByKey); err != nil {
				return err
			}
			if r.DatasetIDs, err = resolveKeys(ctx, "dataset", dss, store.DatasetIDsByKey); err != nil {
				return err
			}
			res, err := store.Publish(ctx, r)
			if err != nil {
				return err
			}
			v := res.Version
			if a.json {
				return a.printJSON(publishJSON{VersionTag: v.VersionTag, Digest: v.Digest, Created: res.Created, Path: string(res.Path),
					PublishedBy: v.PublishedBy, PublishedAt: timeText(v.PublishedAt),
					Artifacts: itemsJSON(v.Manifest.Artifacts), Datasets: itemsJSON(v.Manifest.Datasets)})
			}
			what := "published"
			if !res.Created {
				what = "already published with the same contents"
			}
			fmt.Fprintf(a.stdout, "%s %s (%s, %s, %s)\ndigest %s\n", v.VersionTag, what,
				plural(int64(len(v.Manifest.Artifacts)), "artifact"), plural(int64(len(v.Manifest.Datasets)), "dataset"), res.Path, v.Digest)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&arts, "artifact", nil, "an artifact of the version, NAME@VERSION (repeatable; at least one)")
	fl.StringArrayVar(&dss, "dataset", nil, "a dataset of the version, NAME@VERSION (repeatable)")
	fl.StringVar(&req.PublishedBy, "by", "", "who publishes (required)")
	fl.StringVar(&req.Notes, "notes", "", "release notes")
	fl.BoolVar(&req.RequireCommercialUse, "require-commercial-use", false, "refuse unless every license allows commercial use")
	_ = cmd.MarkFlagRequired("by")
	return cmd
}

// itemJSON is one artifact or dataset of a version's manifest.
type itemJSON struct {
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	SHA256    string `json:"sha256"`
	SizeBytes int64  `json:"size_bytes"`
	License   string `json:"license"`
}

func itemOf(kind string, m harmonia.ManifestItem) itemJSON {
	return itemJSON{Kind: kind, Name: m.Name, Version: m.Version, SHA256: m.SHA256, SizeBytes: m.SizeBytes, License: m.LicenseSPDXID}
}

func itemsJSON(ms []harmonia.ManifestItem) []itemJSON {
	out := make([]itemJSON, len(ms))
	for i, m := range ms {
		out[i] = itemOf("", m)
	}
	return out
}

// idSet is a set of ObjectIDs.
type idSet map[bson.ObjectID]bool

func idsOf(ms []harmonia.ManifestItem) idSet {
	s := idSet{}
	for _, m := range ms {
		s[m.ID] = true
	}
	return s
}
