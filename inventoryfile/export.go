package inventoryfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// ExportProgressEvery is how many entries Export writes between two calls
// of ExportOptions.Progress.
const ExportProgressEvery = 1000

// ExportOptions are the options of [Export]. A nil *ExportOptions means
// the zero value.
type ExportOptions struct {
	// Version, when set, exports only the published version with this
	// tag and what it needs: its artifacts, its datasets and those its
	// artifacts were built from, and their licenses. Defaults to "": the
	// whole inventory.
	Version string
	// BaseDir, when set, writes local paths that lie inside it relative
	// to it (with forward slashes): the inverse of ImportOptions.BaseDir,
	// for a file that will sit in BaseDir. Other paths and URIs are
	// written as stored.
	BaseDir string
	// Progress, when set, is called every ExportProgressEvery entries and
	// at the end of each section.
	Progress func(ExportProgress)
}

// ExportProgress is what ExportOptions.Progress receives.
type ExportProgress struct {
	// Section is the section being written.
	Section string
	// Entries is how many entries of the section were written.
	Entries int
	// Bytes is how many bytes of the file were written.
	Bytes int64
}

// ExportReport says what an export wrote.
type ExportReport struct {
	// Licenses, Datasets, Artifacts and Versions count each section's
	// entries.
	Licenses, Datasets, Artifacts, Versions int
	// Bytes is the size of the file written.
	Bytes int64
}

// Export writes the inventory held by store (or one version of it, see
// ExportOptions.Version) to w as a combined inventory file that [Import]
// reads back.
//
// The output is canonical: the same data gives the same bytes, whatever
// the order it was written in and whatever the database's ids. Sections
// come in the importer's order; licenses are sorted by SPDX id, datasets
// and artifacts by name then version, versions by publication time then
// tag, and the references inside an entry by key; entries are indented
// as the sample file is, fields in a fixed order, empty optional fields
// left out, times in UTC RFC 3339. So importing an export into an empty
// database and exporting again gives identical bytes, and an export can
// be reviewed as a diff.
//
// It streams: documents are read in batches with [harmonia.Store.AllLicenses]
// and its siblings and written as they come; what it keeps is the key of
// each license and dataset (to write references by natural key), as the
// importer keeps an index of keys. The export is not a snapshot: run it
// while nothing writes, or a reference to an entry created during the
// export may name an entry the file lacks.
//
// Errors: [harmonia.CodeNotFound] (no published version with the tag, or
// a reference to a document that is gone), [harmonia.CodeInternal], and
// w's errors.
func Export(ctx context.Context, store *harmonia.Store, w io.Writer, opts *ExportOptions) (*ExportReport, error) {
	var o ExportOptions
	if opts != nil {
		o = *opts
	}
	e := &exporter{o: o, cw: &countingWriter{w: w}, licenses: map[bson.ObjectID]string{}, datasets: map[bson.ObjectID]string{}}
	e.bw = bufio.NewWriterSize(e.cw, 64<<10)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	e.enc.SetIndent("    ", "  ")

	var sel selection
	if o.Version != "" {
		var err error
		if sel, err = selectVersion(ctx, store, o.Version); err != nil {
			return nil, err
		}
	}
	rep := &ExportReport{}
	fmt.Fprintf(e.bw, "{\n  \"format_version\": %d", FormatVersion)
	var err error
	if rep.Licenses, err = section(e, SectionLicenses, store.AllLicenses(ctx, sel.licenses), e.license); err != nil {
		return nil, err
	}
	if rep.Datasets, err = section(e, SectionDatasets, store.AllDatasets(ctx, sel.datasets), e.dataset); err != nil {
		return nil, err
	}
	if rep.Artifacts, err = section(e, SectionArtifacts, store.AllArtifacts(ctx, sel.artifacts), e.artifact); err != nil {
		return nil, err
	}
	versions := store.AllVersions(ctx)
	if sel.version != nil {
		versions = func(yield func(*harmonia.InventoryVersion, error) bool) { yield(sel.version, nil) }
	}
	if rep.Versions, err = section(e, SectionVersions, versions, e.version); err != nil {
		return nil, err
	}
	e.bw.WriteString("\n}\n")
	if err := e.bw.Flush(); err != nil {
		return nil, writeErr(err)
	}
	rep.Bytes = e.cw.n
	return rep, nil
}

// selection is what an export of one version reads: nil slices read
// whole collections, empty ones nothing.
type selection struct {
	version                       *harmonia.InventoryVersion
	licenses, datasets, artifacts []bson.ObjectID
}

// selectVersion finds the version with tag and the ids of everything it
// needs: its artifacts, its datasets and their lineage, their licenses.
func selectVersion(ctx context.Context, store *harmonia.Store, tag string) (selection, error) {
	v, err := store.GetVersionByTag(ctx, tag)
	if err != nil {
		return selection{}, err
	}
	sel := selection{version: v, artifacts: slices.Clone(v.ArtifactIDs)}
	datasets, licenses := idSet{}, idSet{}
	datasets.add(v.DatasetIDs...)
	for a, err := range store.AllArtifacts(ctx, sel.artifacts) {
		if err != nil {
			return selection{}, err
		}
		datasets.add(a.DatasetIDs...)
		licenses.add(a.LicenseID)
	}
	sel.datasets = datasets.ids()
	for d, err := range store.AllDatasets(ctx, sel.datasets) {
		if err != nil {
			return selection{}, err
		}
		licenses.add(d.LicenseID)
	}
	sel.licenses = licenses.ids()
	if sel.artifacts == nil {
		sel.artifacts = []bson.ObjectID{}
	}
	return sel, nil
}

type idSet map[bson.ObjectID]struct{}

func (s idSet) add(ids ...bson.ObjectID) {
	for _, id := range ids {
		if !id.IsZero() {
			s[id] = struct{}{}
		}
	}
}

// ids returns the set's ids, never nil (an empty selection reads nothing).
func (s idSet) ids() []bson.ObjectID {
	out := make([]bson.ObjectID, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	return out
}

// exporter writes one file.
type exporter struct {
	o   ExportOptions
	cw  *countingWriter
	bw  *bufio.Writer
	buf bytes.Buffer
	enc *json.Encoder

	// The natural keys of the licenses and datasets written, by id.
	licenses, datasets map[bson.ObjectID]string
}

// section writes one section: each document of seq mapped to its entry
// by entry. It returns how many entries it wrote.
func section[T any](e *exporter, name string, seq iter.Seq2[*T, error], entry func(*T) (any, error)) (int, error) {
	fmt.Fprintf(e.bw, ",\n  %q: [", name)
	n := 0
	for doc, err := range seq {
		if err != nil {
			return 0, err
		}
		v, err := entry(doc)
		if err != nil {
			return 0, err
		}
		e.buf.Reset()
		if err := e.enc.Encode(v); err != nil {
			return 0, &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityInventory, Field: name, Reason: "encode an entry: " + err.Error(), Err: err}
		}
		if n > 0 {
			e.bw.WriteByte(',')
		}
		e.bw.WriteString("\n    ")
		e.bw.Write(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")))
		n++
		if n%ExportProgressEvery == 0 {
			if err := e.progress(name, n); err != nil {
				return 0, err
			}
		}
	}
	if n > 0 {
		e.bw.WriteString("\n  ")
	}
	e.bw.WriteByte(']')
	return n, e.progress(name, n)
}

// progress flushes what is buffered (so that Bytes counts it and a
// failing writer stops the export early) and reports.
func (e *exporter) progress(section string, entries int) error {
	if err := e.bw.Flush(); err != nil {
		return writeErr(err)
	}
	if e.o.Progress != nil {
		e.o.Progress(ExportProgress{Section: section, Entries: entries, Bytes: e.cw.n})
	}
	return nil
}

func writeErr(err error) error {
	return &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityInventory, Reason: "write the file: " + err.Error(), Err: err}
}

func (e *exporter) license(l *harmonia.License) (any, error) {
	e.licenses[l.ID] = l.SPDXID
	return License{SPDXID: l.SPDXID, TextPath: e.path(l.TextPath), CommercialUse: l.CommercialUse, Notes: l.Notes}, nil
}

func (e *exporter) dataset(d *harmonia.Dataset) (any, error) {
	lic, err := e.licenseKey(harmonia.EntityDataset, d.Key(), d.LicenseID)
	if err != nil {
		return nil, err
	}
	e.datasets[d.ID] = d.Key()
	return Dataset{Name: d.Name, Version: d.Version, Path: e.path(d.Path), SizeBytes: d.SizeBytes,
		Hashes: Hashes{SHA256: d.Hashes.SHA256}, License: lic, Tags: d.Tags, Notes: d.Notes, CreatedBy: d.CreatedBy}, nil
}

func (e *exporter) artifact(a *harmonia.ModelArtifact) (any, error) {
	lic, err := e.licenseKey(harmonia.EntityArtifact, a.Key(), a.LicenseID)
	if err != nil {
		return nil, err
	}
	datasets := make([]string, 0, len(a.DatasetIDs))
	for _, id := range a.DatasetIDs {
		key, ok := e.datasets[id]
		if !ok {
			return nil, missingRef(harmonia.EntityArtifact, a.Key(), "dataset_ids", harmonia.EntityDataset, id)
		}
		datasets = append(datasets, key)
	}
	slices.Sort(datasets)
	return Artifact{Name: a.Name, Version: a.Version, Path: e.path(a.Path), SizeBytes: a.SizeBytes,
		Hashes: Hashes{SHA256: a.Hashes.SHA256}, License: lic, Tags: a.Tags, Notes: a.Notes, CreatedBy: a.CreatedBy,
		Datasets: datasets, CreatedAt: timeText(a.CreatedAt)}, nil
}

func (e *exporter) version(v *harmonia.InventoryVersion) (any, error) {
	return Version{VersionTag: v.VersionTag, Artifacts: itemKeys(v.Manifest.Artifacts), Datasets: itemKeys(v.Manifest.Datasets),
		PublishedBy: v.PublishedBy, PublishedAt: timeText(v.PublishedAt), Notes: v.Notes}, nil
}

// licenseKey returns the SPDX id of an exported license, "" for none.
func (e *exporter) licenseKey(entity, key string, id bson.ObjectID) (string, error) {
	if id.IsZero() {
		return "", nil
	}
	spdx, ok := e.licenses[id]
	if !ok {
		return "", missingRef(entity, key, "license_id", harmonia.EntityLicense, id)
	}
	return spdx, nil
}

func missingRef(entity, key, field, target string, id bson.ObjectID) error {
	return &harmonia.Error{Code: harmonia.CodeNotFound, Entity: entity, Field: field,
		Reason: fmt.Sprintf("%s %s references %s %s, which the export did not find (deleted while exporting?)", entity, key, target, id.Hex())}
}

// itemKeys returns the sorted natural keys of manifest items.
func itemKeys(items []harmonia.ManifestItem) []string {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key()
	}
	slices.Sort(keys)
	return keys
}

// timeText formats t as the file's times are: UTC RFC 3339, with as many
// fractional digits as needed (the database keeps milliseconds).
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// path writes a stored path relative to ExportOptions.BaseDir when it is
// a local path inside it.
func (e *exporter) path(p string) string {
	if e.o.BaseDir == "" || p == "" {
		return p
	}
	if u, err := url.Parse(p); err == nil && len(u.Scheme) > 1 {
		return p
	}
	base, err1 := filepath.Abs(e.o.BaseDir)
	abs, err2 := filepath.Abs(filepath.FromSlash(p))
	if err1 != nil || err2 != nil {
		return p
	}
	rel, err := filepath.Rel(base, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return filepath.ToSlash(rel)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
