package inventoryfile

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/textcut"
)

// The inventory file's sections, in the order the importer expects them,
// and SectionFile, the section of rejections about the file itself.
const (
	SectionLicenses  = "licenses"
	SectionDatasets  = "datasets"
	SectionArtifacts = "artifacts"
	SectionVersions  = "versions"
	SectionFile      = "file"
)

// FormatVersion is the inventory file format the importer reads.
const FormatVersion = 1

// EntityInventory names the inventory file in the importer's errors.
const EntityInventory = "inventory"

// Defaults and limits of [ImportOptions].
const (
	// ImportBatchSizeDefault is how many entries the importer writes per
	// batch.
	ImportBatchSizeDefault = 1000
	// MaxEntryBytesDefault bounds the size of one entry of the file (and
	// of any other JSON value in it).
	MaxEntryBytesDefault = 4 << 20
	// MaxRejectionsDefault bounds the rejections an ImportReport lists;
	// it counts the others.
	MaxRejectionsDefault = 1000
	// MaxEntryDepth bounds the nesting of arrays and objects in an entry
	// (an entry needs 3).
	MaxEntryDepth = 8
)

// ImportOptions are the options of [Import]. A nil *ImportOptions means
// the zero value.
type ImportOptions struct {
	// DryRun reads and checks the whole file against the database and
	// reports what an import would do, writing nothing.
	DryRun bool
	// AllOrNothing writes nothing unless every entry is accepted: the
	// file is checked first (a dry run), and written in a second pass
	// only when that found no rejection. A reader that is not an
	// io.ReadSeeker is copied to a temporary file during the first pass.
	// It is not a transaction: a concurrent writer may still make an
	// entry fail during the second pass.
	AllOrNothing bool
	// BaseDir, when set, is joined to every relative local path of the
	// file (artifact and dataset paths, license text paths), so that the
	// stored paths locate the files wherever the inventory was read.
	// Paths in the file are relative to the file's directory; URIs and
	// absolute paths are kept as they are. Defaults to "": paths are
	// stored as written.
	BaseDir string
	// BatchSize is how many entries are written per batch. Defaults to
	// ImportBatchSizeDefault.
	BatchSize int
	// MaxEntryBytes bounds one entry's size in the file; a larger entry
	// stops the import with an error naming it. Defaults to
	// MaxEntryBytesDefault.
	MaxEntryBytes int64
	// MaxRejections bounds the rejections the report lists. Defaults to
	// MaxRejectionsDefault.
	MaxRejections int
	// RequireCommercialUse publishes the file's versions only when every
	// license they involve allows commercial use.
	RequireCommercialUse bool
	// Progress, when set, is called after each batch and at the end of
	// each section.
	Progress func(ImportProgress)
}

// ImportProgress is what ImportOptions.Progress receives.
type ImportProgress struct {
	// Pass is "check" during the first pass of an all-or-nothing import,
	// and "import" otherwise (a dry run included).
	Pass string
	// Section is the section being read.
	Section string
	// Entries is how many entries of the section were read.
	Entries int
	// Bytes is how many bytes of the file were read.
	Bytes int64
}

// Counts are the outcomes of one section's entries.
type Counts struct {
	// Inserted entries were new (for versions: published).
	Inserted int
	// Updated entries existed with other values and were changed.
	Updated int
	// Unchanged entries existed with the same values: nothing written.
	Unchanged int
	// Rejected entries broke a rule; see the report's Rejections.
	Rejected int
}

// Rejection is one reason why an entry was rejected. An entry with
// several broken rules has several rejections with the same Section and
// Index.
type Rejection struct {
	// Section is the file's section ("licenses", "datasets", "artifacts",
	// "versions"), or SectionFile for the file itself.
	Section string
	// Index is the entry's position in its section, from 0 (-1 for
	// SectionFile).
	Index int
	// Key is the entry's natural key when it has one: the SPDX id,
	// "name@version", or the version tag.
	Key string
	// Field is the field of the file that broke the rule (for example
	// "hashes.sha256", "license", "datasets[1]"), "" for the whole entry.
	Field string
	// Reason says what is wrong.
	Reason string
}

// String formats the rejection as "section[index] key: field: reason".
func (r Rejection) String() string {
	var b strings.Builder
	b.WriteString(r.Section)
	if r.Index >= 0 {
		fmt.Fprintf(&b, "[%d]", r.Index)
	}
	if r.Key != "" {
		b.WriteString(" " + r.Key)
	}
	b.WriteString(": ")
	if r.Field != "" {
		b.WriteString(r.Field + ": ")
	}
	b.WriteString(r.Reason)
	return b.String()
}

// ImportReport says what an import did, or for a dry run would do.
type ImportReport struct {
	// DryRun is true when nothing was written.
	DryRun bool
	// Licenses, Datasets, Artifacts and Versions count each section's
	// entries by outcome.
	Licenses, Datasets, Artifacts, Versions Counts
	// Rejections lists why entries were rejected, in file order, at most
	// ImportOptions.MaxRejections of them.
	Rejections []Rejection
	// MoreRejections counts the rejections left out of Rejections.
	MoreRejections int
	// FileRejected counts the rejected parts of the file outside any
	// entry (section "file"): an unknown top-level field (a misspelt
	// "licences"), a section twice, a section that is not an array.
	FileRejected int
	// Bytes is the size of the file read.
	Bytes int64
}

// Changed returns how many entries were (or, in a dry run, would be)
// inserted or updated.
func (r *ImportReport) Changed() int {
	n := 0
	for _, c := range []Counts{r.Licenses, r.Datasets, r.Artifacts, r.Versions} {
		n += c.Inserted + c.Updated
	}
	return n
}

// Rejected returns how many entries, and parts of the file outside the
// entries (FileRejected), were rejected: an import with any is refused
// by AllOrNothing and is not a success.
func (r *ImportReport) Rejected() int {
	return r.Licenses.Rejected + r.Datasets.Rejected + r.Artifacts.Rejected + r.Versions.Rejected + r.FileRejected
}

// Import reads a combined inventory file (see the package documentation
// for its format) from r and
// brings the database in line with it: its licenses, datasets and
// artifacts are inserted or updated by natural key (SPDX id,
// name@version), and its versions are published with
// [harmonia.Store.Publish]. Importing the same file again writes nothing
// and reports every entry unchanged.
//
// The file is streamed: entries are decoded one at a time and written in
// batches of ImportOptions.BatchSize through the Store's bulk operations
// (Insert… for new entries, Replace… for changed ones), so memory does not
// hold the file. What the importer does keep is one small
// record per natural key (a 16-byte SHA-256 prefix of the key, the
// document's id, flags and, for documents already stored, fingerprints of
// their fields: measured about 135 bytes per stored document and 85 per
// new entry of the file), read once per collection (Store.AllLicenses and
// its siblings): it detects duplicates, resolves references and
// recognises unchanged entries with it, without a query per entry. A generated
// 100 MB file of about 250,000 entries is checked with a peak heap of
// about 43 MiB (BenchmarkImportDryRunPeakHeap100MB).
//
// Each entry is checked by its entity's Validate, and its references
// resolved: a license by SPDX id, datasets and artifacts by name@version,
// in the database or earlier in the file. The sections are read in file
// order (licenses, datasets, artifacts, versions is the order that works):
// a reference to an entry further down is a rejection that says so.
// Unknown fields are rejections (a misspelt "sha265" must not pass
// silently); so are entries deeper than MaxEntryDepth, duplicates, missing
// references, and a changed path, size or sha256 of a published artifact
// or dataset. A rejected entry does not stop the others, unless
// AllOrNothing is set.
//
// Errors (with the report so far): [harmonia.CodeInvalid] for a file that
// cannot be read on (invalid JSON, an entry over MaxEntryBytes, another
// or no format_version, data after the inventory; the error names the section
// and entry), and for an all-or-nothing import refused because of
// rejections; [harmonia.CodeInternal] for the server and the reader.
// Entries written before a fatal error stay written: each is complete and
// valid on its own, and a second import finishes the job.
func Import(ctx context.Context, store *harmonia.Store, r io.Reader, opts *ImportOptions) (*ImportReport, error) {
	var o ImportOptions
	if opts != nil {
		o = *opts
	}
	o.BatchSize = cmp.Or(o.BatchSize, ImportBatchSizeDefault)
	o.MaxEntryBytes = cmp.Or(o.MaxEntryBytes, MaxEntryBytesDefault)
	o.MaxRejections = cmp.Or(o.MaxRejections, MaxRejectionsDefault)
	switch {
	case store == nil:
		return nil, importErrf("", "a *harmonia.Store is required")
	case o.BatchSize < 0, o.MaxEntryBytes < 0, o.MaxRejections < 0:
		return nil, importErrf("", "BatchSize, MaxEntryBytes and MaxRejections must not be negative")
	}
	if !o.AllOrNothing || o.DryRun {
		return newImporter(store, o, o.DryRun, "import").run(ctx, r)
	}
	src, rewind, cleanup, err := rewindable(r)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rep, err := newImporter(store, o, true, "check").run(ctx, src)
	if err != nil {
		return rep, err
	}
	if n := rep.Rejected(); n > 0 {
		return rep, &harmonia.Error{Code: harmonia.CodeInvalid, Entity: EntityInventory, Field: rep.firstRejectionField(),
			Reason: fmt.Sprintf("all-or-nothing import refused: %d entries rejected (first: %s); nothing was written", n, rep.firstRejection())}
	}
	src, err = rewind()
	if err != nil {
		return rep, err
	}
	return newImporter(store, o, false, "import").run(ctx, src)
}

func (r *ImportReport) firstRejection() string {
	if len(r.Rejections) == 0 {
		return "not listed"
	}
	return r.Rejections[0].String()
}

func (r *ImportReport) firstRejectionField() string {
	if len(r.Rejections) == 0 {
		return ""
	}
	return fmt.Sprintf("%s[%d]", r.Rejections[0].Section, r.Rejections[0].Index)
}

// rewindable returns a reader for a first pass over r and a function that
// returns a reader for a second pass: r itself rewound when it can seek,
// else a temporary copy made during the first pass.
func rewindable(r io.Reader) (io.Reader, func() (io.Reader, error), func(), error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			return rs, func() (io.Reader, error) {
				if _, err := rs.Seek(start, io.SeekStart); err != nil {
					return nil, &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityInventory, Reason: "rewind the file: " + err.Error(), Err: err}
				}
				return rs, nil
			}, func() {}, nil
		}
	}
	tmp, err := os.CreateTemp("", "harmonia-import-*.json")
	if err != nil {
		return nil, nil, nil, &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityInventory, Reason: "spool the file: " + err.Error(), Err: err}
	}
	cleanup := func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}
	return io.TeeReader(r, tmp), func() (io.Reader, error) {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return nil, &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityInventory, Reason: "rewind the spooled file: " + err.Error(), Err: err}
		}
		return tmp, nil
	}, cleanup, nil
}

func importErrf(field, format string, args ...any) *harmonia.Error {
	reason := fmt.Sprintf(format, args...)
	return &harmonia.Error{Code: harmonia.CodeInvalid, Entity: EntityInventory, Field: field, Reason: reason,
		Fields: []harmonia.FieldError{{Field: field, Reason: reason}}}
}

// License is a license entry of the file.
type License struct {
	SPDXID        string `json:"spdx_id"`
	TextPath      string `json:"text_path,omitempty"`
	CommercialUse bool   `json:"commercial_use"`
	Notes         string `json:"notes,omitempty"`
}

// Hashes holds the digests of a dataset or artifact entry.
type Hashes struct {
	SHA256 string `json:"sha256"`
}

// Dataset is a dataset entry of the file; License names its license by
// SPDX id.
type Dataset struct {
	Name      string   `json:"name"`
	Version   string   `json:"version"`
	Path      string   `json:"path"`
	SizeBytes int64    `json:"size_bytes"`
	Hashes    Hashes   `json:"hashes"`
	License   string   `json:"license,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Notes     string   `json:"notes,omitempty"`
	CreatedBy string   `json:"created_by,omitempty"`
}

// Artifact is an artifact entry of the file: a dataset's fields, the
// datasets it was built from (as name@version) and its creation time
// (RFC 3339).
type Artifact struct {
	Name      string   `json:"name"`
	Version   string   `json:"version"`
	Path      string   `json:"path"`
	SizeBytes int64    `json:"size_bytes"`
	Hashes    Hashes   `json:"hashes"`
	License   string   `json:"license,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Notes     string   `json:"notes,omitempty"`
	CreatedBy string   `json:"created_by,omitempty"`
	Datasets  []string `json:"datasets,omitempty"`
	CreatedAt string   `json:"created_at,omitempty"`
}

// Version is a version entry of the file: its artifacts and datasets as
// name@version, and its publication time (RFC 3339).
type Version struct {
	VersionTag  string   `json:"version_tag"`
	Artifacts   []string `json:"artifacts"`
	Datasets    []string `json:"datasets,omitempty"`
	PublishedBy string   `json:"published_by"`
	PublishedAt string   `json:"published_at"`
	Notes       string   `json:"notes,omitempty"`
}

// keyHash is the first 16 bytes of the SHA-256 of a natural key.
type keyHash [16]byte

func hashKey(key string) keyHash {
	sum := sha256.Sum256([]byte(key))
	return keyHash(sum[:16])
}

// Flags of a keyRec.
const (
	// fromFile: an entry of this file has the key (keyRec.index says
	// which).
	fromFile uint8 = 1 << iota
	// rejected: that entry was rejected.
	rejected
	// inDB: a document has the key (keyRec.id is its id).
	inDB
	published
	hasSHA
	hasLicense
	// commercial: the license allows commercial use (for artifacts and
	// datasets: their license does).
	commercial
)

// keyRec is what the importer keeps per natural key.
type keyRec struct {
	id    bson.ObjectID
	flags uint8
	index int32
	// fp fingerprints the fields an import may change; cfp the content
	// fields (path, size, sha256) that a publish freezes.
	fp, cfp uint64
}

// keyIndex holds the keyRecs of one collection, loaded on first use:
// those of the documents in the database, and in a leaner map those of
// the file's entries that are new (they need no fingerprints: nothing is
// compared with them), which keeps a large file's index about a third
// smaller.
type keyIndex struct {
	loaded bool
	db     map[keyHash]keyRec
	file   map[keyHash]fileRec
}

// fileRec is the keyRec of a key only this file has.
type fileRec struct {
	id    bson.ObjectID
	index int32
	flags uint8
}

func (x *keyIndex) get(h keyHash) (keyRec, bool) {
	if rec, ok := x.db[h]; ok {
		return rec, true
	}
	f, ok := x.file[h]
	return keyRec{id: f.id, index: f.index, flags: f.flags}, ok
}

func (x *keyIndex) put(h keyHash, rec keyRec) {
	if _, ok := x.db[h]; ok {
		x.db[h] = rec
		return
	}
	x.file[h] = fileRec{id: rec.id, index: rec.index, flags: rec.flags}
}

// fingerprint hashes field values, each length-prefixed.
type fingerprint struct{ b []byte }

func (f *fingerprint) str(s string) *fingerprint {
	f.b = binary.AppendUvarint(f.b, uint64(len(s)))
	f.b = append(f.b, s...)
	return f
}

func (f *fingerprint) num(n int64) *fingerprint {
	f.b = binary.AppendVarint(f.b, n)
	return f
}

func (f *fingerprint) id(id bson.ObjectID) *fingerprint {
	f.b = append(f.b, id[:]...)
	return f
}

func (f *fingerprint) strs(ss []string) *fingerprint {
	f.num(int64(len(ss)))
	for _, s := range ss {
		f.str(s)
	}
	return f
}

func (f *fingerprint) ids(ids []bson.ObjectID) *fingerprint {
	f.num(int64(len(ids)))
	for _, id := range ids {
		f.id(id)
	}
	return f
}

func (f *fingerprint) sum() uint64 {
	s := sha256.Sum256(f.b)
	return binary.LittleEndian.Uint64(s[:8])
}

func licenseFP(l *harmonia.License) uint64 {
	commercial := int64(0)
	if l.CommercialUse {
		commercial = 1
	}
	return new(fingerprint).str(l.TextPath).num(commercial).str(l.Notes).sum()
}

// contentFP fingerprints the content fields of an artifact or dataset.
func contentFP(p string, size int64, sha string) uint64 {
	return new(fingerprint).str(p).num(size).str(sha).sum()
}

func datasetFP(d *harmonia.Dataset) uint64 {
	return new(fingerprint).str(d.Path).num(d.SizeBytes).str(d.Hashes.SHA256).id(d.LicenseID).
		strs(d.Tags).str(d.Notes).str(d.CreatedBy).sum()
}

func artifactFP(a *harmonia.ModelArtifact) uint64 {
	return new(fingerprint).str(a.Path).num(a.SizeBytes).str(a.Hashes.SHA256).id(a.LicenseID).
		strs(a.Tags).str(a.Notes).str(a.CreatedBy).ids(a.DatasetIDs).sum()
}

// kind is one of the entities the importer upserts: its section, its
// index, and the Store's bulk operations that write it.
type kind struct {
	section, entity string
	idx             keyIndex
	counts          *Counts
	batch           batch
	// insert and replace write a batch of the kind's entities.
	insert, replace func(ctx context.Context, items []any) ([]error, error)
}

// hash returns the index key of a natural key of this kind: an artifact's
// or dataset's "name@version" as [harmonia.NaturalKey] spells it (so that
// "RESNET50@1.0" and "resnet50@1.0", or a name in NFD and in NFC, are one
// entry, as they are in the database), a license's SPDX id as it is.
func (k *kind) hash(key string) keyHash {
	if k.section == SectionLicenses {
		return hashKey(key)
	}
	if name, version, ok := splitRef(key); ok {
		return hashKey(harmonia.NaturalKey(name, version))
	}
	return hashKey(key)
}

// batch holds a kind's pending writes: entities to insert and entities
// whose stored documents take their values.
type batch struct {
	entries int
	inserts []any
	insRefs []pendingRef
	updates []any
	updRefs []pendingRef
}

// bulk adapts one of the Store's typed bulk operations to a batch.
func bulk[T any](op func(context.Context, []T) ([]error, error)) func(context.Context, []any) ([]error, error) {
	return func(ctx context.Context, items []any) ([]error, error) {
		typed := make([]T, len(items))
		for i, it := range items {
			typed[i] = it.(T)
		}
		return op(ctx, typed)
	}
}

// pendingRef ties a pending write to its entry.
type pendingRef struct {
	index int
	key   string
	id    bson.ObjectID
	fp    uint64
}

// importer is one pass over one file.
type importer struct {
	store *harmonia.Store
	o     ImportOptions
	dry   bool
	pass  string
	rep   *ImportReport

	src *budgetReader
	dec *json.Decoder

	licenses, datasets, artifacts kind
	// licenseCommercial maps license ids to their commercial use, for
	// artifacts and datasets read from the database.
	licenseCommercial map[bson.ObjectID]bool
	versionTags       map[keyHash]int32
	sections          map[string]bool
	formatSeen        bool
}

func newImporter(store *harmonia.Store, o ImportOptions, dry bool, pass string) *importer {
	im := &importer{store: store, o: o, dry: dry, pass: pass, rep: &ImportReport{DryRun: dry},
		licenseCommercial: map[bson.ObjectID]bool{}, versionTags: map[keyHash]int32{}, sections: map[string]bool{}}
	im.licenses = kind{section: SectionLicenses, entity: harmonia.EntityLicense, counts: &im.rep.Licenses,
		insert: bulk(store.Bulk().InsertLicenses), replace: bulk(store.Bulk().ReplaceLicenses)}
	im.datasets = kind{section: SectionDatasets, entity: harmonia.EntityDataset, counts: &im.rep.Datasets,
		insert: bulk(store.Bulk().InsertDatasets), replace: bulk(store.Bulk().ReplaceDatasets)}
	im.artifacts = kind{section: SectionArtifacts, entity: harmonia.EntityArtifact, counts: &im.rep.Artifacts,
		insert: bulk(store.Bulk().InsertArtifacts), replace: bulk(store.Bulk().ReplaceArtifacts)}
	return im
}

// budgetReader counts the bytes read and refuses to read past a limit
// that the importer moves forward before each JSON value: no value can
// make the decoder buffer more than MaxEntryBytes.
type budgetReader struct {
	r     io.Reader
	n     int64
	limit int64
	// err is the last error of r other than io.EOF.
	err error
}

var errEntryTooLarge = errors.New("entry too large")

// Read reads from the underlying reader, at most up to the limit.
func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n >= b.limit {
		return 0, errEntryTooLarge
	}
	if int64(len(p)) > b.limit-b.n {
		p = p[:b.limit-b.n]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// allow lets the decoder read up to MaxEntryBytes more.
func (im *importer) allow() { im.src.limit = im.src.n + im.o.MaxEntryBytes }

func (im *importer) run(ctx context.Context, r io.Reader) (*ImportReport, error) {
	im.src = &budgetReader{r: r}
	im.dec = json.NewDecoder(im.src)
	err := im.parse(ctx)
	im.rep.Bytes = im.src.n
	if err != nil {
		// The pending batches are not written: take them out of the counts.
		for _, k := range []*kind{&im.licenses, &im.datasets, &im.artifacts} {
			k.counts.Inserted -= len(k.batch.inserts)
			k.counts.Updated -= len(k.batch.updates)
		}
	}
	return im.rep, err
}

// readErr turns an error of the decoder into the import's error, naming
// where it happened.
func (im *importer) readErr(where string, err error) error {
	if where == "" {
		where = "the inventory"
	}
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, errEntryTooLarge):
		return importErrf(where, "%s is larger than %d bytes (MaxEntryBytes)", where, im.o.MaxEntryBytes)
	case errors.As(err, &syn):
		return importErrf(where, "invalid JSON in %s at byte %d: %s", where, syn.Offset, syn.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return importErrf(where, "the file ends inside %s", where)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityInventory, Reason: err.Error(), Err: err}
	}
	if im.src.err != nil && errors.Is(err, im.src.err) {
		return &harmonia.Error{Code: harmonia.CodeInternal, Entity: EntityInventory, Field: where, Reason: "read " + where + ": " + err.Error(), Err: err}
	}
	return importErrf(where, "%s: %s", where, err.Error())
}

func (im *importer) token(where string) (json.Token, error) {
	im.allow()
	tok, err := im.dec.Token()
	if err != nil {
		return nil, im.readErr(where, err)
	}
	return tok, nil
}

func (im *importer) more() bool {
	im.allow()
	return im.dec.More()
}

func (im *importer) parse(ctx context.Context) error {
	tok, err := im.token("")
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return importErrf("", "the inventory must be a JSON object")
	}
	for im.more() {
		tok, err := im.token("")
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		switch key {
		case "format_version":
			im.formatSeen = true
			var v json.RawMessage
			im.allow()
			if err := im.dec.Decode(&v); err != nil {
				return im.readErr("format_version", err)
			}
			if string(v) != strconv.Itoa(FormatVersion) {
				return importErrf("format_version", "format_version %s is not supported (want %d)", textcut.Cut(string(v), 20), FormatVersion)
			}
		case SectionLicenses, SectionDatasets, SectionArtifacts, SectionVersions:
			if im.sections[key] {
				im.reject(SectionFile, -1, "", key, "the section appears twice; the second one was skipped")
				if err := im.skip(key); err != nil {
					return err
				}
				continue
			}
			im.sections[key] = true
			if err := im.section(ctx, key); err != nil {
				return err
			}
		default:
			im.reject(SectionFile, -1, "", key, "unknown top-level field; skipped")
			if err := im.skip(key); err != nil {
				return err
			}
		}
	}
	if _, err := im.token(""); err != nil {
		return err
	}
	im.allow()
	if _, err := im.dec.Token(); !errors.Is(err, io.EOF) {
		return importErrf("", "data after the inventory object")
	}
	if !im.formatSeen {
		return importErrf("format_version", "format_version is missing: an inventory file starts with \"format_version\": %d", FormatVersion)
	}
	return nil
}

// skip reads over one value, a token at a time, refusing deep nesting.
func (im *importer) skip(where string) error {
	depth := 0
	for {
		tok, err := im.token(where)
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			if depth > MaxEntryDepth*4 {
				return importErrf(where, "%s is nested deeper than %d levels", where, MaxEntryDepth*4)
			}
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// section reads one section's array, entry by entry.
func (im *importer) section(ctx context.Context, name string) error {
	tok, err := im.token(name)
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if tok != json.Delim('[') {
		im.reject(SectionFile, -1, "", name, "must be an array; skipped")
		if d, ok := tok.(json.Delim); ok && d == '{' {
			return im.skipRest(name)
		}
		return nil
	}
	if err := im.prepare(ctx, name); err != nil {
		return err
	}
	index := 0
	for ; im.more(); index++ {
		if err := ctx.Err(); err != nil {
			return im.readErr(name, err)
		}
		where := fmt.Sprintf("%s[%d]", name, index)
		var raw json.RawMessage
		im.allow()
		if err := im.dec.Decode(&raw); err != nil {
			return im.readErr(where, err)
		}
		if err := im.entry(ctx, name, index, raw); err != nil {
			return err
		}
	}
	if _, err := im.token(name); err != nil {
		return err
	}
	if err := im.flushAll(ctx); err != nil {
		return err
	}
	im.progress(name, index)
	return nil
}

// skipRest reads over the rest of an object whose '{' was read.
func (im *importer) skipRest(where string) error {
	for im.more() {
		if _, err := im.token(where); err != nil {
			return err
		}
		if err := im.skip(where); err != nil {
			return err
		}
	}
	_, err := im.token(where)
	return err
}

func (im *importer) progress(section string, entries int) {
	if im.o.Progress != nil {
		im.o.Progress(ImportProgress{Pass: im.pass, Section: section, Entries: entries, Bytes: im.src.n})
	}
}

// prepare loads what a section needs from the database.
func (im *importer) prepare(ctx context.Context, section string) error {
	needs := map[string][]*kind{
		SectionLicenses:  {&im.licenses},
		SectionDatasets:  {&im.licenses, &im.datasets},
		SectionArtifacts: {&im.licenses, &im.datasets, &im.artifacts},
		SectionVersions:  {&im.licenses, &im.datasets, &im.artifacts},
	}[section]
	for _, k := range needs {
		if err := im.load(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// load reads the keys and fingerprints of every stored entity of k, once,
// streaming them through the Store.
func (im *importer) load(ctx context.Context, k *kind) error {
	if k.idx.loaded {
		return nil
	}
	k.idx = keyIndex{loaded: true, db: map[keyHash]keyRec{}, file: map[keyHash]fileRec{}}
	switch k {
	case &im.licenses:
		for l, err := range im.store.AllLicenses(ctx, nil) {
			if err != nil {
				return err
			}
			rec := keyRec{id: l.ID, flags: inDB, fp: licenseFP(l)}
			if l.CommercialUse {
				rec.flags |= commercial
			}
			im.licenseCommercial[l.ID] = l.CommercialUse
			k.idx.db[hashKey(l.SPDXID)] = rec
		}
	case &im.datasets:
		for d, err := range im.store.AllDatasets(ctx, nil) {
			if err != nil {
				return err
			}
			k.idx.db[k.hash(d.Key())] = im.itemRec(d.ID, d.Published, d.Hashes.SHA256, d.LicenseID, datasetFP(d), contentFP(d.Path, d.SizeBytes, d.Hashes.SHA256))
		}
	default:
		for a, err := range im.store.AllArtifacts(ctx, nil) {
			if err != nil {
				return err
			}
			k.idx.db[k.hash(a.Key())] = im.itemRec(a.ID, a.Published, a.Hashes.SHA256, a.LicenseID, artifactFP(a), contentFP(a.Path, a.SizeBytes, a.Hashes.SHA256))
		}
	}
	return nil
}

// itemRec is the keyRec of an artifact or dataset in the database.
func (im *importer) itemRec(id bson.ObjectID, pub bool, sha string, licenseID bson.ObjectID, fp, cfp uint64) keyRec {
	rec := keyRec{id: id, flags: inDB, fp: fp, cfp: cfp}
	if pub {
		rec.flags |= published
	}
	if sha != "" {
		rec.flags |= hasSHA
	}
	if !licenseID.IsZero() {
		rec.flags |= hasLicense
		if im.licenseCommercial[licenseID] {
			rec.flags |= commercial
		}
	}
	return rec
}

// reject records one rejection, keeping at most MaxRejections.
func (im *importer) reject(section string, index int, key, field, reason string) {
	if section == SectionFile {
		im.rep.FileRejected++
	}
	if len(im.rep.Rejections) >= im.o.MaxRejections {
		im.rep.MoreRejections++
		return
	}
	im.rep.Rejections = append(im.rep.Rejections, Rejection{Section: section, Index: index, Key: key, Field: field, Reason: reason})
}

// problems collects the rejections of one entry.
type problems []harmonia.FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, harmonia.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// addValidation adds the field errors of an entity's Validate, with the
// entity's field names translated to the file's.
func (p *problems) addValidation(err error) {
	if err == nil {
		return
	}
	var he *harmonia.Error
	if !errors.As(err, &he) || len(he.Fields) == 0 {
		p.add("", "%v", err)
		return
	}
	for _, f := range he.Fields {
		p.add(fileField(f.Field), "%s", f.Reason)
	}
}

// fileField translates an entity's field name into the file's.
func fileField(f string) string {
	for entity, file := range map[string]string{"license_id": "license", "dataset_ids": "datasets", "artifact_ids": "artifacts"} {
		if rest, ok := strings.CutPrefix(f, entity); ok {
			return file + rest
		}
	}
	return f
}

// decodeEntry decodes one entry strictly: an object, not too deep, no
// unknown fields, the right types.
func decodeEntry(raw json.RawMessage, v any, p *problems) bool {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		p.add("", "an entry must be a JSON object")
		return false
	}
	if jsonDepth(raw) > MaxEntryDepth {
		p.add("", "the entry is nested deeper than %d levels", MaxEntryDepth)
		return false
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if err == nil {
		return true
	}
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ute):
		p.add(ute.Field, "must be %s, not %s", jsonType(ute.Type.String()), ute.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		p.add(name, "unknown field")
	default:
		p.add("", "%v", err)
	}
	return false
}

// jsonType names a Go type the way the file's author thinks of it.
func jsonType(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"):
		return "a whole number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

// jsonDepth returns the deepest nesting of arrays and objects in raw, a
// valid JSON value.
func jsonDepth(raw []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// localPath joins BaseDir to a relative local path.
func (im *importer) localPath(p string) string {
	if im.o.BaseDir == "" || p == "" || path.IsAbs(p) || filepath.IsAbs(p) {
		return p
	}
	if u, err := url.Parse(p); err == nil && len(u.Scheme) > 1 {
		return p
	}
	if harmonia.PathProblem(p) != "" {
		return p // left for validation to refuse as written
	}
	return filepath.Join(im.o.BaseDir, filepath.FromSlash(p))
}

// parseTime reads an RFC 3339 time of the file ("" is the zero time).
func parseTime(field, s string, p *problems) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		p.add(field, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, not %q", textcut.Cut(s, 40))
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}

// splitRef splits a "name@version" reference at its last '@'.
func splitRef(ref string) (string, string, bool) {
	i := strings.LastIndexByte(ref, '@')
	if i <= 0 || i == len(ref)-1 {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// resolve looks up the references of one entry in k's index. It returns
// their ids (a placeholder for entries of this file that a dry run did
// not write) and their keyRecs, and adds a problem for each one that
// does not resolve.
func (im *importer) resolve(k *kind, field string, refs []string, p *problems) ([]bson.ObjectID, []keyRec) {
	ids := make([]bson.ObjectID, 0, len(refs))
	recs := make([]keyRec, 0, len(refs))
	seen := make(map[string]bool, len(refs))
	for i, ref := range refs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if seen[ref] {
			p.add(f, "%s is listed twice", textcut.Cut(ref, 100))
			continue
		}
		seen[ref] = true
		if _, _, ok := splitRef(ref); !ok {
			p.add(f, "%q is not a name@version reference", textcut.Cut(ref, 100))
			continue
		}
		rec, ok := k.idx.get(k.hash(ref))
		switch {
		case ok && rec.flags&inDB != 0:
			ids, recs = append(ids, rec.id), append(recs, rec)
		case ok && rec.flags&rejected == 0:
			ids, recs = append(ids, bson.NewObjectID()), append(recs, rec)
		case ok:
			p.add(f, "%s %s was rejected (%s[%d])", k.entity, textcut.Cut(ref, 100), k.section, rec.index)
		default:
			p.add(f, "no %s %s in the database nor earlier in the file (sections are read in order: licenses, datasets, artifacts, versions)",
				k.entity, textcut.Cut(ref, 100))
		}
	}
	return ids, recs
}

// license resolves an entry's license, by its SPDX id in the canonical
// spelling; the zero id for none.
func (im *importer) license(spdx string, p *problems) (bson.ObjectID, keyRec) {
	if spdx == "" {
		return bson.ObjectID{}, keyRec{}
	}
	spdx = harmonia.NormalizeSPDXID(spdx)
	rec, ok := im.licenses.idx.get(hashKey(spdx))
	switch {
	case ok && rec.flags&inDB != 0:
		return rec.id, rec
	case ok && rec.flags&rejected == 0:
		return bson.NewObjectID(), rec
	case ok:
		p.add("license", "license %s was rejected (licenses[%d])", textcut.Cut(spdx, 100), rec.index)
	default:
		p.add("license", "no license with spdx_id %s in the database nor earlier in the file", textcut.Cut(spdx, 100))
	}
	return bson.ObjectID{}, keyRec{}
}

// entry processes one entry of a section.
func (im *importer) entry(ctx context.Context, section string, index int, raw json.RawMessage) error {
	var p problems
	switch section {
	case SectionLicenses:
		var f License
		if !decodeEntry(raw, &f, &p) {
			return im.rejectEntry(&im.licenses, index, f.SPDXID, p)
		}
		l := &harmonia.License{SPDXID: harmonia.NormalizeSPDXID(f.SPDXID), TextPath: im.localPath(f.TextPath), CommercialUse: f.CommercialUse, Notes: f.Notes}
		p.addValidation(l.Validate())
		rec := keyRec{fp: licenseFP(l)}
		if l.CommercialUse {
			rec.flags |= commercial
		}
		return im.upsert(ctx, &im.licenses, index, l.SPDXID, p, rec, l, &l.ID)
	case SectionDatasets:
		var f Dataset
		if !decodeEntry(raw, &f, &p) {
			return im.rejectEntry(&im.datasets, index, refKey(f.Name, f.Version), p)
		}
		licID, lic := im.license(f.License, &p)
		d := &harmonia.Dataset{Name: f.Name, Version: f.Version, Path: im.localPath(f.Path), SizeBytes: f.SizeBytes,
			Hashes: harmonia.Hashes{SHA256: f.Hashes.SHA256}, LicenseID: licID, Tags: f.Tags, Notes: f.Notes, CreatedBy: f.CreatedBy}
		p.addValidation(d.Validate())
		rec := itemFlags(d.Hashes.SHA256, f.License, lic, datasetFP(d), contentFP(d.Path, d.SizeBytes, d.Hashes.SHA256))
		return im.upsert(ctx, &im.datasets, index, d.Key(), p, rec, d, &d.ID)
	case SectionArtifacts:
		var f Artifact
		if !decodeEntry(raw, &f, &p) {
			return im.rejectEntry(&im.artifacts, index, refKey(f.Name, f.Version), p)
		}
		licID, lic := im.license(f.License, &p)
		dsIDs, _ := im.resolve(&im.datasets, "datasets", f.Datasets, &p)
		createdAt := parseTime("created_at", f.CreatedAt, &p)
		a := newArtifact(&f, im.localPath(f.Path), licID, dsIDs)
		a.CreatedAt = createdAt
		p.addValidation(a.Validate())
		rec := itemFlags(a.Hashes.SHA256, f.License, lic, artifactFP(a), contentFP(a.Path, a.SizeBytes, a.Hashes.SHA256))
		return im.upsert(ctx, &im.artifacts, index, a.Key(), p, rec, a, &a.ID)
	default:
		return im.version(ctx, index, raw)
	}
}

// newArtifact maps an artifact entry of the file to the entity, with its
// path and references resolved.
func newArtifact(f *Artifact, p string, licID bson.ObjectID, dsIDs []bson.ObjectID) *harmonia.ModelArtifact {
	a := &harmonia.ModelArtifact{Name: f.Name, Version: f.Version, Path: p, SizeBytes: f.SizeBytes,
		Hashes: harmonia.Hashes{SHA256: f.Hashes.SHA256}, LicenseID: licID, DatasetIDs: dsIDs, Tags: f.Tags, Notes: f.Notes, CreatedBy: f.CreatedBy}
	if len(a.DatasetIDs) == 0 {
		a.DatasetIDs = nil
	}
	return a
}

func refKey(name, version string) string {
	if name == "" && version == "" {
		return ""
	}
	return textcut.Cut(name, 200) + "@" + textcut.Cut(version, 100)
}

// itemFlags starts the keyRec of an artifact or dataset of the file.
func itemFlags(sha, spdx string, lic keyRec, fp, cfp uint64) keyRec {
	rec := keyRec{fp: fp, cfp: cfp}
	if sha != "" {
		rec.flags |= hasSHA
	}
	if spdx != "" {
		rec.flags |= hasLicense
		rec.flags |= lic.flags & commercial
	}
	return rec
}

// rejectEntry records an entry's problems and marks its key rejected.
func (im *importer) rejectEntry(k *kind, index int, key string, p problems) error {
	k.counts.Rejected++
	for _, f := range p {
		im.reject(k.section, index, key, f.Field, f.Reason)
	}
	if key != "" {
		h := k.hash(key)
		if rec, ok := k.idx.get(h); !ok || rec.flags&fromFile == 0 {
			rec.flags |= fromFile | rejected
			rec.index = int32(index)
			k.idx.put(h, rec)
		}
	}
	return nil
}

// upsert decides what one checked entry of k, the entity item whose ID
// is at id, becomes: a rejection, an insert, an update or nothing, and
// queues the write.
func (im *importer) upsert(ctx context.Context, k *kind, index int, key string, p problems, rec keyRec, item any, id *bson.ObjectID) error {
	h := k.hash(key)
	prev, exists := k.idx.get(h)
	if exists && prev.flags&fromFile != 0 {
		p.add("", "duplicate of %s[%d], which has the same key", k.section, prev.index)
		// The first entry keeps the key: report this one without marking it.
		k.counts.Rejected++
		for _, f := range p {
			im.reject(k.section, index, key, f.Field, f.Reason)
		}
		return nil
	}
	if exists && prev.flags&published != 0 && prev.cfp != rec.cfp {
		p.add("", "%s", harmonia.PublishedContentConflict(k.entity, key).Reason)
	}
	if len(p) > 0 {
		return im.rejectEntry(k, index, key, p)
	}
	rec.flags |= fromFile
	rec.index = int32(index)
	switch {
	case !exists:
		if !im.dry {
			*id = bson.NewObjectID()
			k.batch.inserts = append(k.batch.inserts, item)
			k.batch.insRefs = append(k.batch.insRefs, pendingRef{index: index, key: key, id: *id, fp: rec.fp})
			rec.flags |= inDB
		}
		rec.id = *id
		k.counts.Inserted++
	case prev.fp == rec.fp:
		rec.id, rec.flags = prev.id, rec.flags|prev.flags&(inDB|published)
		k.counts.Unchanged++
	default:
		rec.id, rec.flags = prev.id, rec.flags|prev.flags&(inDB|published)
		if !im.dry {
			*id = prev.id
			k.batch.updates = append(k.batch.updates, item)
			k.batch.updRefs = append(k.batch.updRefs, pendingRef{index: index, key: key, id: prev.id, fp: rec.fp})
		}
		k.counts.Updated++
	}
	k.idx.put(h, rec)
	if k == &im.licenses && !rec.id.IsZero() {
		im.licenseCommercial[rec.id] = rec.flags&commercial != 0
	}
	k.batch.entries++
	if k.batch.entries >= im.o.BatchSize {
		if err := im.flush(ctx, k); err != nil {
			return err
		}
		im.progress(k.section, index+1)
	}
	return nil
}

func (im *importer) flushAll(ctx context.Context) error {
	for _, k := range []*kind{&im.licenses, &im.datasets, &im.artifacts} {
		if err := im.flush(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// flush writes k's pending batch through the Store's bulk operations:
// the new entries with one insert, the changed ones with bulk updates.
// Entries that a concurrent writer got to first, or published or deleted
// meanwhile, become rejections.
func (im *importer) flush(ctx context.Context, k *kind) error {
	b := k.batch
	k.batch = batch{}
	if len(b.inserts) > 0 {
		errs, err := k.insert(ctx, b.inserts)
		if err != nil {
			return err
		}
		for i, e := range errs {
			if e == nil {
				continue
			}
			reason := e.Error()
			if errors.Is(e, harmonia.ErrConflict) {
				reason = "another writer inserted the same key during the import; import again to compare"
			}
			im.lostWrite(k, b.insRefs[i], reason, false)
			k.counts.Inserted--
		}
	}
	if len(b.updates) == 0 {
		return nil
	}
	errs, err := k.replace(ctx, b.updates)
	if err != nil {
		return err
	}
	for i, e := range errs {
		if e != nil {
			im.lostWrite(k, b.updRefs[i], "it was published or deleted during the import and was not updated", true)
			k.counts.Updated--
		}
	}
	return nil
}

// lostWrite turns a queued write that did not happen into a rejection.
// After a lost update the document is still there (inDB stays set); after
// a lost insert this import does not know its id.
func (im *importer) lostWrite(k *kind, r pendingRef, reason string, update bool) {
	k.counts.Rejected++
	im.reject(k.section, r.index, r.key, "", reason)
	h := k.hash(r.key)
	rec, _ := k.idx.get(h)
	rec.flags |= rejected
	if !update {
		rec.flags &^= inDB
	}
	k.idx.put(h, rec)
}

// version checks one version entry and publishes it.
func (im *importer) version(ctx context.Context, index int, raw json.RawMessage) error {
	var f Version
	var p problems
	c := &im.rep.Versions
	rejectAll := func() error {
		c.Rejected++
		for _, e := range p {
			im.reject(SectionVersions, index, textcut.Cut(f.VersionTag, 100), e.Field, e.Reason)
		}
		return nil
	}
	if !decodeEntry(raw, &f, &p) {
		return rejectAll()
	}
	h := hashKey(harmonia.NormalizeName(f.VersionTag))
	if first, ok := im.versionTags[h]; ok {
		p.add("version_tag", "duplicate of versions[%d], which has the same tag", first)
		return rejectAll()
	}
	im.versionTags[h] = int32(index)
	artIDs, artRecs := im.resolve(&im.artifacts, "artifacts", f.Artifacts, &p)
	dsIDs, dsRecs := im.resolve(&im.datasets, "datasets", f.Datasets, &p)
	publishedAt := parseTime("published_at", f.PublishedAt, &p)
	v := &harmonia.InventoryVersion{VersionTag: f.VersionTag, ArtifactIDs: artIDs, DatasetIDs: dsIDs, PublishedBy: f.PublishedBy, Notes: f.Notes}
	p.addValidation(v.Validate())
	if len(f.Artifacts)+len(f.Datasets) == 0 {
		p.add("artifacts", "a version needs at least one artifact or dataset")
	}
	im.checkPublishable("artifacts", f.Artifacts, artRecs, &p)
	im.checkPublishable("datasets", f.Datasets, dsRecs, &p)
	if len(p) > 0 {
		return rejectAll()
	}
	existing, err := im.store.GetVersionByTag(ctx, f.VersionTag)
	switch {
	case errors.Is(err, harmonia.ErrNotFound):
	case err != nil:
		return err
	case existing.HasContents(artIDs, dsIDs):
		c.Unchanged++
		return nil
	default:
		p.add("version_tag", "version %s exists with other contents; a published version cannot change", f.VersionTag)
		return rejectAll()
	}
	if im.dry {
		c.Inserted++
		return nil
	}
	res, err := im.store.Publish(ctx, harmonia.PublishRequest{VersionTag: f.VersionTag, ArtifactIDs: artIDs, DatasetIDs: dsIDs,
		PublishedBy: f.PublishedBy, Notes: f.Notes, RequireCommercialUse: im.o.RequireCommercialUse, PublishedAt: publishedAt})
	var he *harmonia.Error
	switch {
	case err == nil && res.Created:
		c.Inserted++
		im.markPublished(artRecs, f.Artifacts, &im.artifacts)
		im.markPublished(dsRecs, f.Datasets, &im.datasets)
	case err == nil:
		c.Unchanged++
	case errors.As(err, &he) && he.Code != harmonia.CodeInternal:
		p.add(fileField(he.Field), "%s", he.Reason)
		return rejectAll()
	default:
		return err
	}
	return nil
}

// checkPublishable adds a problem for each resolved artifact or dataset
// that Publish would refuse, by Publish's own rule
// ([harmonia.PublishProblem]).
func (im *importer) checkPublishable(field string, refs []string, recs []keyRec, p *problems) {
	if len(recs) != len(refs) {
		return // some did not resolve: already a problem
	}
	for i, rec := range recs {
		var lic *harmonia.License
		if rec.flags&hasLicense != 0 {
			lic = &harmonia.License{CommercialUse: rec.flags&commercial != 0}
		}
		if f, reason := harmonia.PublishProblem(rec.flags&hasSHA != 0, lic, im.o.RequireCommercialUse); f != "" {
			p.add(fmt.Sprintf("%s[%d]", field, i), "%s %s", refs[i], reason)
		}
	}
}

// markPublished records in the index that a publish froze these entries.
func (im *importer) markPublished(recs []keyRec, refs []string, k *kind) {
	for i := range recs {
		h := k.hash(refs[i])
		rec, _ := k.idx.get(h)
		rec.flags |= published
		k.idx.put(h, rec)
	}
}
