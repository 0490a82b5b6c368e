package harmonia

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// StaleLeaseDefault is how long past its lease's expiry a running job
// must be before [Store.Check] reports it: no worker took it over.
const StaleLeaseDefault = 10 * time.Minute

// ProblemKind names what [Store.Check] found wrong. Kinds are stable
// strings, for scripts.
type ProblemKind string

// The problems Check reports.
const (
	// ProblemUnmarked: an artifact or dataset that a published version
	// lists does not name the version in published_in, or is not marked
	// published. Repaired (the mark is set).
	ProblemUnmarked ProblemKind = "unmarked"
	// ProblemDanglingMark: an artifact's or dataset's published_in names no
	// version, or a version that does not list it; or it is marked
	// published with no version behind the flag. Repaired (the mark is
	// removed).
	ProblemDanglingMark ProblemKind = "dangling_mark"
	// ProblemDigest: a version's stored digest differs from the digest of
	// its manifest, or it has none although the digest migration ran.
	// Reported only: it needs a person.
	ProblemDigest ProblemKind = "digest_mismatch"
	// ProblemManifest: a version's manifest does not list its artifact and
	// dataset ids, or a member's stored document differs from its
	// manifest item (name, version, sha256, size or license). Reported
	// only.
	ProblemManifest ProblemKind = "manifest_mismatch"
	// ProblemMissingReference: a reference resolves to nothing: an
	// artifact's or dataset's license, an artifact's dataset, a version's
	// member, an alias's target. Reported only.
	ProblemMissingReference ProblemKind = "missing_reference"
	// ProblemStalePublish: a staged publish pending for longer than
	// Options.RecoverAfter. Repaired as [Store.RecoverPublishes] does.
	ProblemStalePublish ProblemKind = "stale_pending_publish"
	// ProblemStaleLease: a running job whose lease expired more than
	// CheckOpts.StaleLease ago: no worker holds it. Reported only (the
	// next claim of its type takes it over).
	ProblemStaleLease ProblemKind = "stale_lease"
	// ProblemSchemaVersion: a document whose schema_version is older than
	// the applied migrations guarantee. Reported only (run the
	// migrations).
	ProblemSchemaVersion ProblemKind = "old_schema_version"
)

// Problem is one broken invariant that [Store.Check] found.
type Problem struct {
	// Kind says what is wrong.
	Kind ProblemKind `json:"kind"`
	// Entity is the kind of the document at fault (EntityArtifact,
	// EntityDataset, EntityVersion, EntityAlias, EntityJob).
	Entity string `json:"entity"`
	// Key is the document's natural key: "name@version" of an artifact
	// or dataset, a version's tag, an alias's name, a job's id.
	Key string `json:"key"`
	// ID is the document's id.
	ID bson.ObjectID `json:"id"`
	// Field is the stored field at fault, for example "published_in".
	Field string `json:"field"`
	// Version is the tag of the inventory version concerned, if any.
	Version string `json:"version,omitempty"`
	// Detail says what was found, for a person.
	Detail string `json:"detail"`
	// Repaired is true when Check, asked to repair, made it whole.
	Repaired bool `json:"repaired"`
}

// String formats the problem on one line.
func (p Problem) String() string {
	s := fmt.Sprintf("%s %s %s: %s: %s", p.Kind, p.Entity, p.Key, p.Field, p.Detail)
	if p.Repaired {
		s += " (repaired)"
	}
	return s
}

// CheckOpts configures [Store.Check]. The zero value (or nil) checks and
// changes nothing.
type CheckOpts struct {
	// Repair makes Check make whole what it can without guessing: marks
	// missing on a published version's members are set, marks naming no
	// version are removed, pending publishes older than
	// Options.RecoverAfter are settled as [Store.RecoverPublishes] does.
	// What needs a person (a drifted digest, content changed under a
	// published version, a missing reference) is reported, never changed.
	// Defaults to false.
	Repair bool
	// StaleLease is how long past its expiry a running job's lease must
	// be for Check to report it. Defaults to StaleLeaseDefault.
	StaleLease time.Duration
	// OnProblem, when set, receives each problem as it is found (with
	// Repaired set once its repair is done), and the report keeps only
	// the counts: memory then stays bounded however many problems there
	// are. Defaults to nil: the report lists every problem.
	OnProblem func(Problem)
}

// CheckReport says what [Store.Check] looked at and found.
type CheckReport struct {
	// Problems lists what was found, in the order found (empty when
	// CheckOpts.OnProblem received them).
	Problems []Problem `json:"problems"`
	// Found counts the problems found.
	Found int `json:"found"`
	// Repaired counts those of them that were repaired.
	Repaired int `json:"repaired"`
	// Checked counts the documents read, per collection.
	Checked map[string]int `json:"checked"`
}

// OK reports whether every problem found was repaired (or none was).
func (r *CheckReport) OK() bool { return r.Found == r.Repaired }

// Check reads the whole inventory once and reports every broken
// invariant, each with its entity, key and field (see [ProblemKind]):
//
//   - a published version whose artifacts or datasets do not all name it
//     in published_in or are not marked published;
//   - a published_in entry naming no visible version;
//   - a version whose stored digest is not its manifest's, or whose
//     manifest differs from its members' documents;
//   - a license, dataset, version member or alias target that does not
//     exist;
//   - a staged publish pending for longer than Options.RecoverAfter;
//   - a running job whose lease expired longer than opts.StaleLease ago;
//   - a document whose schema_version is below what the applied
//     migrations (the schema_migrations collection) guarantee.
//
// It streams artifacts and datasets in batches of ScanBatchSize: its
// memory grows with the versions (their member lists and manifests),
// the licenses and the problems, not with the number of artifacts. A
// problem is a result, not an error: see [CheckReport.OK]. With
// opts.Repair it also repairs what [CheckOpts].Repair says; a repair
// re-reads what it depends on, so that it never undoes a publish that
// began during the check. Check reads without a snapshot: run it when
// nothing publishes, or expect a publish in progress to show.
//
// Errors: [CodeInvalid] (a negative StaleLease), [CodeInternal].
func (s *Store) Check(ctx context.Context, opts *CheckOpts) (*CheckReport, error) {
	var o CheckOpts
	if opts != nil {
		o = *opts
	}
	if o.StaleLease < 0 {
		return nil, invalidf("store", "stale_lease", "must not be negative (0 takes the default)")
	}
	o.StaleLease = cmp.Or(o.StaleLease, StaleLeaseDefault)
	c := &checker{s: s, o: o, rep: &CheckReport{Problems: []Problem{}, Checked: map[string]int{}}}
	if err := c.run(ctx); err != nil {
		return nil, err
	}
	return c.rep, nil
}

// checkVersion is what the check keeps of one version.
type checkVersion struct {
	id       bson.ObjectID
	tag      string
	items    map[bson.ObjectID]ManifestItem // the manifest's, by id
	nMembers int
}

// memberOf records, for one artifact or dataset id, the published
// versions that list it and whether the scan saw it.
type memberOf struct {
	versions []*checkVersion
	seen     bool
}

// checker is the state of one Check.
type checker struct {
	s   *Store
	o   CheckOpts
	rep *CheckReport
	now time.Time
	// floors maps collections to the schema_version the applied
	// migrations guarantee; digests is true once versions must have one.
	floors  map[string]int
	digests bool
	spdx    map[bson.ObjectID]string
	// published and pending are the versions by id; members the ids the
	// published ones list, per collection.
	published map[bson.ObjectID]*checkVersion
	pending   map[bson.ObjectID]bool
	members   map[string]map[bson.ObjectID]*memberOf
}

func (c *checker) report(p Problem) {
	c.rep.Found++
	if p.Repaired {
		c.rep.Repaired++
	}
	if c.o.OnProblem != nil {
		c.o.OnProblem(p)
		return
	}
	c.rep.Problems = append(c.rep.Problems, p)
}

func (c *checker) run(ctx context.Context) error {
	c.now = c.s.Now()
	if c.o.Repair {
		rr, err := c.s.RecoverPublishes(ctx)
		if err != nil {
			return err
		}
		for _, tags := range []struct {
			tags []string
			what string
		}{{rr.Completed, "completed: every member carried its mark"}, {rr.RolledBack, "rolled back: its marks removed, the pending version deleted"}} {
			for _, tag := range tags.tags {
				c.report(Problem{Kind: ProblemStalePublish, Entity: EntityVersion, Key: tag, Field: "state", Version: tag,
					Detail: "staged publish pending for longer than " + c.s.opts.RecoverAfter.String() + "; " + tags.what, Repaired: true})
			}
		}
	}
	for _, step := range []func(context.Context) error{c.readMigrations, c.readLicenses, c.readVersions,
		func(ctx context.Context) error { return c.scanMembers(ctx, EntityArtifact, c.s.cols.artifacts) },
		func(ctx context.Context) error { return c.scanMembers(ctx, EntityDataset, c.s.cols.datasets) },
		c.missingMembers, c.checkAliases, c.checkJobs} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// schemaFloors says what each built-in migration guarantees of the
// documents' schema_version once applied: migration 2
// (migrate.VersionTagsV2) moves artifacts and datasets to version 2.
func schemaFloors() []struct {
	migration   int64
	collections []string
	version     int
} {
	return []struct {
		migration   int64
		collections []string
		version     int
	}{{2, []string{CollectionArtifacts, CollectionDatasets}, 2}}
}

// digestsMigration is migrate.VersionDigests: once applied, every
// version has a digest.
const digestsMigration = 5

func (c *checker) readMigrations(ctx context.Context) error {
	type rec struct {
		Version int64 `bson:"version"`
	}
	recs, err := findAll[rec](ctx, c.s.db.Collection(CollectionMigrations), "schema_migration", bson.D{{Key: "state", Value: "applied"}}, 16)
	if err != nil {
		return err
	}
	applied := map[int64]bool{}
	for _, r := range recs {
		applied[r.Version] = true
	}
	c.floors = map[string]int{}
	for _, f := range schemaFloors() {
		if applied[f.migration] {
			for _, col := range f.collections {
				c.floors[col] = max(c.floors[col], f.version)
			}
		}
	}
	c.digests = applied[digestsMigration]
	return nil
}

func (c *checker) readLicenses(ctx context.Context) error {
	c.spdx = map[bson.ObjectID]string{}
	for l, err := range scanFilter[License](ctx, c.s.cols.licenses, EntityLicense, bson.D{}, nil, ScanBatchSize) {
		if err != nil {
			return err
		}
		c.spdx[l.ID] = l.SPDXID
		c.rep.Checked[CollectionLicenses]++
	}
	return nil
}

func (c *checker) readVersions(ctx context.Context) error {
	c.published, c.pending = map[bson.ObjectID]*checkVersion{}, map[bson.ObjectID]bool{}
	c.members = map[string]map[bson.ObjectID]*memberOf{EntityArtifact: {}, EntityDataset: {}}
	for v, err := range scanFilter[InventoryVersion](ctx, c.s.cols.versions, EntityVersion, bson.D{}, nil, ScanBatchSize) {
		if err != nil {
			return err
		}
		c.rep.Checked[CollectionVersions]++
		if v.State != VersionPublished {
			c.pending[v.ID] = true
			if c.now.Sub(v.CreatedAt) > c.s.opts.RecoverAfter {
				c.report(Problem{Kind: ProblemStalePublish, Entity: EntityVersion, Key: v.VersionTag, ID: v.ID, Field: "state", Version: v.VersionTag,
					Detail: fmt.Sprintf("staged publish pending since %s, longer than %s", v.CreatedAt.Format(time.RFC3339), c.s.opts.RecoverAfter)})
			}
			continue
		}
		c.checkVersionDoc(v)
	}
	return nil
}

// checkVersionDoc checks a published version's digest and manifest and
// records its members.
func (c *checker) checkVersionDoc(v *InventoryVersion) {
	cv := &checkVersion{id: v.ID, tag: v.VersionTag, items: map[bson.ObjectID]ManifestItem{}, nMembers: len(v.ArtifactIDs) + len(v.DatasetIDs)}
	c.published[v.ID] = cv
	problem := func(kind ProblemKind, field, detail string) {
		c.report(Problem{Kind: kind, Entity: EntityVersion, Key: v.VersionTag, ID: v.ID, Field: field, Version: v.VersionTag, Detail: detail})
	}
	switch digest, err := ManifestDigest(v.Manifest); {
	case err != nil:
		problem(ProblemManifest, "manifest", err.Error())
	case v.Digest == "" && c.digests:
		problem(ProblemDigest, "digest", "no digest, although the digest migration ran; its manifest gives "+digest)
	case v.Digest != "" && v.Digest != digest:
		problem(ProblemDigest, "digest", fmt.Sprintf("stored digest %s, its manifest gives %s", v.Digest, digest))
	}
	for _, k := range []struct {
		entity, field string
		ids           []bson.ObjectID
		items         []ManifestItem
	}{{EntityArtifact, "artifact_ids", v.ArtifactIDs, v.Manifest.Artifacts}, {EntityDataset, "dataset_ids", v.DatasetIDs, v.Manifest.Datasets}} {
		listed := make(map[bson.ObjectID]bool, len(k.ids))
		for _, id := range k.ids {
			listed[id] = true
			m := c.members[k.entity][id]
			if m == nil {
				m = &memberOf{}
				c.members[k.entity][id] = m
			}
			m.versions = append(m.versions, cv)
		}
		for _, it := range k.items {
			cv.items[it.ID] = it
			if !listed[it.ID] {
				problem(ProblemManifest, "manifest", fmt.Sprintf("the manifest lists %s %s (%s), which %s does not", k.entity, it.Key(), it.ID.Hex(), k.field))
			}
		}
		for _, id := range k.ids {
			if _, ok := cv.items[id]; !ok {
				problem(ProblemManifest, "manifest", fmt.Sprintf("%s lists %s %s, which the manifest does not", k.field, k.entity, id.Hex()))
			}
		}
	}
}

// memberDoc is what the check reads of an artifact or dataset.
type memberDoc struct {
	ID            bson.ObjectID   `bson:"_id"`
	SchemaVersion *int            `bson:"schema_version"`
	Name          string          `bson:"name"`
	Version       string          `bson:"version"`
	SizeBytes     int64           `bson:"size_bytes"`
	Hashes        Hashes          `bson:"hashes"`
	LicenseID     bson.ObjectID   `bson:"license_id"`
	DatasetIDs    []bson.ObjectID `bson:"dataset_ids"`
	Published     bool            `bson:"published"`
	PublishedIn   []bson.ObjectID `bson:"published_in"`
}

func (d *memberDoc) key() string { return d.Name + "@" + d.Version }

// markFix is the repair of one document's marks.
type markFix struct {
	doc      *memberDoc
	add      []*checkVersion
	dangling []bson.ObjectID
	problems []Problem
}

// scanMembers streams the artifacts or datasets (entity) of col and
// checks each, in batches: references, schema_version, manifests, marks.
func (c *checker) scanMembers(ctx context.Context, entity string, col *mongo.Collection) error {
	batch := make([]*memberDoc, 0, ScanBatchSize)
	for d, err := range scanFilter[memberDoc](ctx, col, entity, bson.D{}, nil, ScanBatchSize) {
		if err != nil {
			return err
		}
		c.rep.Checked[col.Name()]++
		batch = append(batch, d)
		if len(batch) == ScanBatchSize {
			if err := c.checkBatch(ctx, entity, col, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return c.checkBatch(ctx, entity, col, batch)
}

func (c *checker) checkBatch(ctx context.Context, entity string, col *mongo.Collection, batch []*memberDoc) error {
	if len(batch) == 0 {
		return nil
	}
	var lineage []bson.ObjectID
	for _, d := range batch {
		lineage = append(lineage, d.DatasetIDs...)
	}
	datasets, err := existing(ctx, c.s.cols.datasets, lineage)
	if err != nil {
		return err
	}
	var fixes []*markFix
	for _, d := range batch {
		problem := func(kind ProblemKind, field, version, detail string) Problem {
			return Problem{Kind: kind, Entity: entity, Key: d.key(), ID: d.ID, Field: field, Version: version, Detail: detail}
		}
		sv := 1
		if d.SchemaVersion != nil {
			sv = *d.SchemaVersion
		}
		if floor := c.floors[col.Name()]; sv < floor {
			c.report(problem(ProblemSchemaVersion, "schema_version", "", fmt.Sprintf("schema_version %d, below the %d the applied migrations guarantee", sv, floor)))
		}
		if _, ok := c.spdx[d.LicenseID]; !d.LicenseID.IsZero() && !ok {
			c.report(problem(ProblemMissingReference, "license_id", "", "no license with id "+d.LicenseID.Hex()))
		}
		for _, id := range d.DatasetIDs {
			if !datasets[id] {
				c.report(problem(ProblemMissingReference, "dataset_ids", "", "no dataset with id "+id.Hex()))
			}
		}
		m := c.members[entity][d.ID]
		if m != nil {
			m.seen = true
			for _, v := range m.versions {
				for _, p := range c.manifestDrift(d, v) {
					c.report(problem(ProblemManifest, p[0], v.tag, p[1]))
				}
			}
		}
		if f := c.marks(entity, d, m); f != nil {
			fixes = append(fixes, f)
		}
	}
	return c.repairMarks(ctx, col, fixes)
}

// manifestDrift compares d with v's manifest item: the fields that
// differ, each with a description.
func (c *checker) manifestDrift(d *memberDoc, v *checkVersion) [][2]string {
	it, ok := v.items[d.ID]
	if !ok {
		return nil // reported with the version
	}
	var out [][2]string
	for _, f := range []struct {
		field      string
		was, stock any
	}{{"name", it.Name, d.Name}, {"version", it.Version, d.Version}, {"hashes.sha256", it.SHA256, d.Hashes.SHA256},
		{"size_bytes", it.SizeBytes, d.SizeBytes}, {"license_id", it.LicenseSPDXID, c.spdx[d.LicenseID]}} {
		if f.was != f.stock {
			out = append(out, [2]string{f.field, fmt.Sprintf("version %s published %v, the document has %v", v.tag, f.was, f.stock)})
		}
	}
	return out
}

// marks checks d's published flag and published_in against the
// published versions that list it (m, nil for none), and returns what
// a repair would change, or nil.
func (c *checker) marks(entity string, d *memberDoc, m *memberOf) *markFix {
	f := &markFix{doc: d}
	problem := func(kind ProblemKind, field, version, detail string) {
		f.problems = append(f.problems, Problem{Kind: kind, Entity: entity, Key: d.key(), ID: d.ID, Field: field, Version: version, Detail: detail})
	}
	names := make(map[bson.ObjectID]bool, len(d.PublishedIn))
	for _, id := range d.PublishedIn {
		names[id] = true
	}
	listedBy := map[bson.ObjectID]bool{}
	if m != nil {
		for _, v := range m.versions {
			listedBy[v.id] = true
			if !names[v.id] {
				f.add = append(f.add, v)
				problem(ProblemUnmarked, "published_in", v.tag, "published in version "+v.tag+", which its published_in does not name")
			}
		}
	}
	unjudged := false // an entry this check leaves to another problem
	for _, id := range d.PublishedIn {
		v := c.published[id]
		switch {
		case c.pending[id]:
			unjudged = true // a publish in progress, or a stale one reported with its version
		case v == nil:
			f.dangling = append(f.dangling, id)
			problem(ProblemDanglingMark, "published_in", "", "names "+id.Hex()+", which is no visible version")
		case !listedBy[id] && hasItem(v, d.ID):
			// The version's manifest lists it: reported with the version,
			// whose contents need a person; the mark stays.
			unjudged = true
		case !listedBy[id]:
			f.dangling = append(f.dangling, id)
			problem(ProblemDanglingMark, "published_in", v.tag, "names version "+v.tag+", which does not list it")
		}
	}
	switch {
	case len(listedBy) > 0 && !d.Published && len(f.add) == 0:
		problem(ProblemUnmarked, "published", "", "listed by a published version but not marked published")
	case len(listedBy) == 0 && !unjudged && d.Published && len(f.dangling) == 0:
		problem(ProblemDanglingMark, "published", "", "marked published, but no version lists it")
	}
	if len(f.problems) == 0 {
		return nil
	}
	return f
}

// repairMarks reports the problems of fixes and, when repairing, makes
// each document's marks whole: it adds the versions that list it, and
// removes the entries that name no version (after reading again that the
// version still does not exist, so that a publish begun since is left
// alone), then sets published from what published_in holds.
func (c *checker) repairMarks(ctx context.Context, col *mongo.Collection, fixes []*markFix) error {
	if !c.o.Repair || len(fixes) == 0 {
		for _, f := range fixes {
			for _, p := range f.problems {
				c.report(p)
			}
		}
		return nil
	}
	var dangling []bson.ObjectID
	for _, f := range fixes {
		dangling = append(dangling, f.dangling...)
	}
	exist, err := existing(ctx, c.s.cols.versions, dangling)
	if err != nil {
		return err
	}
	for _, f := range fixes {
		repaired, err := c.repairOne(ctx, col, f, exist)
		if err != nil {
			return err
		}
		for _, p := range f.problems {
			p.Repaired = repaired
			c.report(p)
		}
	}
	return nil
}

func (c *checker) repairOne(ctx context.Context, col *mongo.Collection, f *markFix, exist map[bson.ObjectID]bool) (bool, error) {
	id := bson.E{Key: "_id", Value: f.doc.ID}
	var pull []bson.ObjectID
	for _, v := range f.dangling {
		if !exist[v] || c.published[v] != nil {
			pull = append(pull, v)
		}
	}
	if len(pull) < len(f.dangling) {
		return false, nil // a version appeared since it was read: leave it to the next check
	}
	// One $pull per entry: the embedded server's $pull takes values, not
	// conditions such as $in.
	for _, v := range pull {
		if _, err := col.UpdateOne(ctx, bson.D{id}, bson.D{{Key: "$pull", Value: bson.D{{Key: "published_in", Value: v}}}}); err != nil {
			return false, wrapErr(EntityVersion, "remove dangling marks", err)
		}
	}
	for _, v := range f.add {
		if _, err := col.UpdateOne(ctx, bson.D{id}, markUpdate(v.id)); err != nil {
			return false, wrapErr(EntityVersion, "set missing marks", err)
		}
	}
	if len(f.add) > 0 {
		return true, nil // markUpdate set published
	}
	// published follows published_in: true where an entry is left, false
	// where none is (checked by the server, as a rollback does).
	update := func(filter bson.D, value bool) error {
		_, err := col.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "published", Value: value}}}})
		return wrapErr(EntityVersion, "set published", err)
	}
	if len(f.doc.PublishedIn) > len(pull) {
		return true, update(bson.D{id}, true)
	}
	return true, update(bson.D{id, {Key: "$or", Value: bson.A{
		bson.D{{Key: "published_in", Value: bson.D{{Key: "$size", Value: 0}}}},
		bson.D{{Key: "published_in", Value: bson.D{{Key: "$exists", Value: false}}}},
	}}}, false)
}

func hasItem(v *checkVersion, id bson.ObjectID) bool {
	_, ok := v.items[id]
	return ok
}

// existing returns which of ids name a document of col, in one command
// (none for no ids).
func existing(ctx context.Context, col *mongo.Collection, ids []bson.ObjectID) (map[bson.ObjectID]bool, error) {
	out := map[bson.ObjectID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	type idDoc struct {
		ID bson.ObjectID `bson:"_id"`
	}
	docs, err := findAll[idDoc](ctx, col, col.Name(), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, len(ids),
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		out[d.ID] = true
	}
	return out, nil
}

// missingMembers reports the members of published versions that the scan
// did not see: they do not exist.
func (c *checker) missingMembers(context.Context) error {
	for _, k := range []struct{ entity, field string }{{EntityArtifact, "artifact_ids"}, {EntityDataset, "dataset_ids"}} {
		for id, m := range c.members[k.entity] {
			if m.seen {
				continue
			}
			for _, v := range m.versions {
				detail := fmt.Sprintf("lists %s %s, which does not exist", k.entity, id.Hex())
				if it, ok := v.items[id]; ok {
					detail = fmt.Sprintf("lists %s %s (%s), which does not exist", k.entity, it.Key(), id.Hex())
				}
				c.report(Problem{Kind: ProblemMissingReference, Entity: EntityVersion, Key: v.tag, ID: v.id, Field: k.field, Version: v.tag, Detail: detail})
			}
		}
	}
	return nil
}

func (c *checker) checkAliases(ctx context.Context) error {
	for d, err := range scanFilter[aliasDoc](ctx, c.s.cols.aliases, EntityAlias, bson.D{}, nil, ScanBatchSize) {
		if err != nil {
			return err
		}
		c.rep.Checked[CollectionAliases]++
		if d.VersionTag == "" {
			continue // deleted
		}
		v := c.published[d.VersionID]
		switch {
		case v == nil:
			c.report(Problem{Kind: ProblemMissingReference, Entity: EntityAlias, Key: d.Name, ID: d.ID, Field: "version_id", Version: d.VersionTag,
				Detail: fmt.Sprintf("points at %s (%s), which is no published version", d.VersionTag, d.VersionID.Hex())})
		case v.tag != d.VersionTag:
			c.report(Problem{Kind: ProblemMissingReference, Entity: EntityAlias, Key: d.Name, ID: d.ID, Field: "version_tag", Version: d.VersionTag,
				Detail: fmt.Sprintf("names tag %s, but its version_id is version %s", d.VersionTag, v.tag)})
		}
	}
	return nil
}

func (c *checker) checkJobs(ctx context.Context) error {
	cutoff := c.now.Add(-c.o.StaleLease)
	filter := bson.D{{Key: "status", Value: JobRunning}, c.s.leaseExpired(c.now), {Key: "lease_expires_at", Value: bson.D{{Key: "$lt", Value: cutoff}}}}
	for j, err := range scanFilter[Job](ctx, c.s.cols.jobs, EntityJob, filter, nil, ScanBatchSize) {
		if err != nil {
			return err
		}
		c.report(Problem{Kind: ProblemStaleLease, Entity: EntityJob, Key: j.ID.Hex(), ID: j.ID, Field: "lease_expires_at",
			Detail: fmt.Sprintf("running on worker %q under a lease that expired more than %s ago", j.WorkerID, c.o.StaleLease)})
	}
	return nil
}
