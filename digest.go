package harmonia

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/gowebpki/jcs"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// ManifestMediaType names the canonical manifest encoding that a version's
// digest is computed over. It is part of the encoded document, so a later
// encoding can never produce the digest of this one.
const ManifestMediaType = "application/vnd.harmonia.manifest.v1+json"

// maxExactSize is the largest size a JSON number carries exactly (2^53-1):
// RFC 8785 serializes numbers as IEEE 754 doubles.
const maxExactSize = 1<<53 - 1

// canonicalItem is one manifest item as the digest sees it: no ObjectIds.
type canonicalItem struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	License string `json:"license"`
}

// CanonicalManifest returns the canonical encoding of m that its digest is
// computed over: the RFC 8785 (JSON Canonicalization Scheme) form of
//
//	{"media_type": ManifestMediaType,
//	 "items": [{"kind", "name", "version", "sha256", "size", "license"}, …]}
//
// where kind is "model_artifact" or "dataset", license is the item's SPDX
// id and the items are sorted by kind, name and version. ObjectIds, the
// order of the items in the version and the deployment play no part.
//
// Errors: [CodeInvalid] when an item's size is negative or above 2^53-1,
// the largest integer RFC 8785 numbers keep exactly.
func CanonicalManifest(m Manifest) ([]byte, error) {
	items := make([]canonicalItem, 0, len(m.Artifacts)+len(m.Datasets))
	for kind, list := range map[string][]ManifestItem{EntityArtifact: m.Artifacts, EntityDataset: m.Datasets} {
		for _, it := range list {
			if it.SizeBytes < 0 || it.SizeBytes > maxExactSize {
				return nil, invalidf(EntityVersion, "manifest", "%s %s: size %d is outside 0..2^53-1", kind, it.Key(), it.SizeBytes)
			}
			items = append(items, canonicalItem{Kind: kind, Name: it.Name, Version: it.Version, SHA256: it.SHA256, Size: it.SizeBytes, License: it.LicenseSPDXID})
		}
	}
	slices.SortFunc(items, func(a, b canonicalItem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	raw, err := json.Marshal(struct {
		MediaType string          `json:"media_type"`
		Items     []canonicalItem `json:"items"`
	}{ManifestMediaType, items})
	if err != nil {
		return nil, wrapErr(EntityVersion, "encode manifest", err)
	}
	out, err := jcs.Transform(raw)
	if err != nil {
		return nil, wrapErr(EntityVersion, "canonicalize manifest", err)
	}
	return out, nil
}

// ManifestDigest returns the content digest of m, "sha256:" followed by
// the lowercase hex SHA-256 of [CanonicalManifest](m): the same contents
// give the same digest in any database, and a change of any item's kind,
// name, version, sha256, size or license gives another.
//
// Errors: those of CanonicalManifest.
func ManifestDigest(m Manifest) (string, error) {
	b, err := CanonicalManifest(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// VerifyReport says whether a published version's contents are still what
// its digest records.
type VerifyReport struct {
	// VersionTag is the verified version's tag.
	VersionTag string
	// StoredDigest is the digest stored with the version ("" when it was
	// published before digests and the migration has not run).
	StoredDigest string
	// ManifestDigest is the digest recomputed from the stored manifest.
	ManifestDigest string
	// CurrentDigest is the digest recomputed from the artifacts, datasets
	// and licenses as they are stored now.
	CurrentDigest string
	// Changed lists the items whose stored form differs from the manifest
	// (From is the manifest's, To the current one).
	Changed []ItemChange
	// Missing lists the manifest's items that no longer exist.
	Missing []ManifestItem
	// Unmarked lists the items (as stored now) that are not marked
	// published in the version: their published_in does not name it, or
	// published is false. Such an item could be edited or deleted; a
	// Publish of the same tag and contents, or [Store.Check] with
	// Repair, marks it.
	Unmarked []ManifestItem
}

// OK reports whether nothing drifted: the three digests agree, and every
// item is marked published in the version.
func (r *VerifyReport) OK() bool {
	return r.StoredDigest != "" && r.StoredDigest == r.ManifestDigest && r.ManifestDigest == r.CurrentDigest && len(r.Unmarked) == 0
}

// VerifyVersion recomputes the digest of the published version with tag
// from its artifacts, datasets and licenses as they are stored now, and
// reports any drift from the stored digest, and the items not marked
// published in the version. Drift is a result, not an error: see
// [VerifyReport.OK].
//
// Errors: [CodeNotFound], [CodeInvalid] (a size no digest can encode),
// [CodeInternal].
func (s *Store) VerifyVersion(ctx context.Context, tag string) (*VerifyReport, error) {
	c, err := s.VersionContentsByTag(ctx, tag)
	if err != nil {
		return nil, err
	}
	v := c.Version
	rep := &VerifyReport{VersionTag: v.VersionTag, StoredDigest: v.Digest}
	if rep.ManifestDigest, err = ManifestDigest(v.Manifest); err != nil {
		return nil, err
	}
	spdx := func(id bson.ObjectID) string {
		if l := c.Licenses[id]; l != nil {
			return l.SPDXID
		}
		return ""
	}
	marked := func(published bool, in []bson.ObjectID) bool { return published && slices.Contains(in, v.ID) }
	arts := make(map[bson.ObjectID]ManifestItem, len(c.Artifacts))
	for _, a := range c.Artifacts {
		arts[a.ID] = ManifestItem{ID: a.ID, Name: a.Name, Version: a.Version, SHA256: a.Hashes.SHA256, SizeBytes: a.SizeBytes, LicenseSPDXID: spdx(a.LicenseID)}
		if !marked(a.Published, a.PublishedIn) {
			rep.Unmarked = append(rep.Unmarked, arts[a.ID])
		}
	}
	dss := make(map[bson.ObjectID]ManifestItem, len(c.Datasets))
	for _, d := range c.Datasets {
		dss[d.ID] = ManifestItem{ID: d.ID, Name: d.Name, Version: d.Version, SHA256: d.Hashes.SHA256, SizeBytes: d.SizeBytes, LicenseSPDXID: spdx(d.LicenseID)}
		if !marked(d.Published, d.PublishedIn) {
			rep.Unmarked = append(rep.Unmarked, dss[d.ID])
		}
	}
	current := Manifest{Artifacts: []ManifestItem{}, Datasets: []ManifestItem{}}
	for _, k := range []struct {
		kind   string
		stored []ManifestItem
		now    map[bson.ObjectID]ManifestItem
		out    *[]ManifestItem
	}{{EntityArtifact, v.Manifest.Artifacts, arts, &current.Artifacts}, {EntityDataset, v.Manifest.Datasets, dss, &current.Datasets}} {
		for _, it := range k.stored {
			now, ok := k.now[it.ID]
			if !ok {
				rep.Missing = append(rep.Missing, it)
				continue
			}
			if now.Name != it.Name || now.Version != it.Version || now.SHA256 != it.SHA256 || now.SizeBytes != it.SizeBytes || now.LicenseSPDXID != it.LicenseSPDXID {
				rep.Changed = append(rep.Changed, ItemChange{Kind: k.kind, From: it, To: now})
			}
			*k.out = append(*k.out, now)
		}
	}
	if rep.CurrentDigest, err = ManifestDigest(current); err != nil {
		return nil, err
	}
	return rep, nil
}
