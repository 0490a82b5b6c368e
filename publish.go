package harmonia

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// PublishPath says how a Publish ran.
type PublishPath string

// Publish paths.
const (
	// PublishTransaction: one multi-document transaction (replica set or
	// mongos).
	PublishTransaction PublishPath = "transaction"
	// PublishStaged: the staged publish of deployments without
	// transactions (a pending version, idempotent marks, then the flip to
	// published).
	PublishStaged PublishPath = "staged"
)

// Steps of the staged publish, in order. Tests inject failures at each.
const (
	stepInsertPending  = "insert_pending"
	stepMarkArtifacts  = "mark_artifacts"
	stepMarkDatasets   = "mark_datasets"
	stepFlip           = "flip"
	pendingPollDefault = 20 * time.Millisecond
)

// PublishRequest names the contents of a new inventory version.
type PublishRequest struct {
	// VersionTag names the version, for example "2026.11.0". Required.
	VersionTag string
	// ArtifactIDs and DatasetIDs are the version's contents; at least one
	// of them must be non-empty, and neither may repeat an id.
	ArtifactIDs []bson.ObjectID
	DatasetIDs  []bson.ObjectID
	// PublishedBy names who publishes. Required.
	PublishedBy string
	// Notes is free text kept with the version.
	Notes string
	// RequireCommercialUse refuses the publish unless every license of
	// its artifacts and datasets allows commercial use.
	RequireCommercialUse bool
	// PublishedAt overrides the publication time (an importer replaying
	// history sets it). Defaults to the Store's clock.
	PublishedAt time.Time
}

// PublishResult reports what Publish did.
type PublishResult struct {
	// Version is the published version: the new one, or the existing one
	// with the same tag and contents.
	Version *InventoryVersion
	// Created is false when a version with the same tag and the same
	// contents existed already and was returned unchanged.
	Created bool
	// Path says how the publish ran: in a transaction or staged.
	Path PublishPath
}

// Publish creates the inventory version req describes and marks its
// artifacts and datasets published, as one unit: either all of it becomes
// visible or none of it does.
//
// On a deployment with transactions it runs in one transaction (majority
// write concern). Elsewhere it runs the staged publish: the version is
// inserted as pending (invisible to readers; the unique tag index makes
// concurrent publishes of one tag safe), the artifacts and datasets are
// marked with idempotent updates, and the version flips to published. A
// failure rolls the marks back; a crash leaves a pending version that
// RecoverPublishes, or any later Publish, settles once it is older than
// Options.RecoverAfter.
//
// Every version carries the digest of its contents ([ManifestDigest]).
// Publishing a tag again with the same contents (the same digest) returns
// the existing version with Created false, after making sure that every
// one of its artifacts and datasets is marked published in it (a version
// torn by a crash or a raw write is healed so). The number of server commands does not grow
// with the number of artifacts.
//
// Called with a ctx that carries a session in a transaction (the callback
// of [Store.InTransaction] or of the caller's own Session.WithTransaction),
// Publish joins that transaction: it opens no session of its own, and the
// version becomes visible when the caller commits, or never. On a
// deployment without transactions that is an error wrapping
// [ErrNoTransactions], and nothing is written.
//
// Errors: [CodeInvalid] (a bad request, missing artifacts or datasets — all
// named —, an artifact or dataset without sha256 or license, a license
// that forbids commercial use when that is required; nothing written),
// [CodeConflict] (the tag exists with other contents; an artifact was
// deleted during the publish), [CodeInternal].
func (s *Store) Publish(ctx context.Context, req PublishRequest) (*PublishResult, error) {
	req.VersionTag = NormalizeName(req.VersionTag)
	if err := req.validate(); err != nil {
		return nil, err
	}
	if err := s.requireUnique(ctx, EntityVersion, CollectionVersions); err != nil {
		return nil, err
	}
	if inTransaction(ctx) {
		if !s.caps.Transactions {
			return nil, errNoTransactions(s.caps, "Publish cannot join the caller's transaction")
		}
		res, err := s.publishIn(ctx, req)
		if err != nil {
			return nil, wrapErr(EntityVersion, "publish", err)
		}
		return res, nil
	}
	if s.caps.Transactions {
		return s.publishTxn(ctx, req)
	}
	if _, err := s.RecoverPublishes(ctx); err != nil {
		return nil, err
	}
	return s.publishStaged(ctx, req)
}

func (r *PublishRequest) validate() error {
	v := InventoryVersion{VersionTag: r.VersionTag, PublishedBy: r.PublishedBy, Notes: r.Notes,
		ArtifactIDs: r.ArtifactIDs, DatasetIDs: r.DatasetIDs}
	if err := validateEntity(EntityVersion, &v); err != nil {
		return err
	}
	if len(r.ArtifactIDs)+len(r.DatasetIDs) == 0 {
		return invalidf(EntityVersion, "artifact_ids", "a version needs at least one artifact or dataset")
	}
	return nil
}

// buildVersion reads the request's artifacts, datasets and their licenses
// (three commands), checks them, and returns the version document to
// insert. It is side-effect free, so a transaction may run it again.
func (s *Store) buildVersion(ctx context.Context, req PublishRequest, state VersionState) (*InventoryVersion, error) {
	arts, err := byIDs[*ModelArtifact](ctx, s.cols.artifacts, EntityVersion, req.ArtifactIDs)
	if err != nil {
		return nil, err
	}
	dss, err := byIDs[*Dataset](ctx, s.cols.datasets, EntityVersion, req.DatasetIDs)
	if err != nil {
		return nil, err
	}
	if err := missingRefs(req, arts, dss); err != nil {
		return nil, err
	}
	items := make([]ManifestItem, 0, len(arts)+len(dss))
	licOf := make([]bson.ObjectID, 0, len(items))
	for _, a := range arts {
		items = append(items, ManifestItem{ID: a.ID, Name: a.Name, Version: a.Version, SHA256: a.Hashes.SHA256, SizeBytes: a.SizeBytes})
		licOf = append(licOf, a.LicenseID)
	}
	for _, d := range dss {
		items = append(items, ManifestItem{ID: d.ID, Name: d.Name, Version: d.Version, SHA256: d.Hashes.SHA256, SizeBytes: d.SizeBytes})
		licOf = append(licOf, d.LicenseID)
	}
	licenses, err := s.licensesByID(ctx, licOf)
	if err != nil {
		return nil, err
	}
	if err := checkPublishable(req, items, licOf, len(arts), licenses); err != nil {
		return nil, err
	}
	now := s.Now()
	publishedAt := now
	if !req.PublishedAt.IsZero() {
		publishedAt = req.PublishedAt.UTC().Truncate(time.Millisecond)
	}
	manifest := Manifest{Artifacts: items[:len(arts)], Datasets: items[len(arts):]}
	digest, err := ManifestDigest(manifest)
	if err != nil {
		return nil, err
	}
	v := &InventoryVersion{
		ID: bson.NewObjectID(), SchemaVersion: SchemaVersion, VersionTag: req.VersionTag, State: state,
		// Never nil: a nil slice is stored as null, which the collection's
		// validator (bsonType array) refuses.
		ArtifactIDs: orEmpty(req.ArtifactIDs), DatasetIDs: orEmpty(req.DatasetIDs),
		Manifest: manifest, Digest: digest,
		PublishedBy: req.PublishedBy, PublishedAt: publishedAt, Notes: req.Notes, CreatedAt: now, UpdatedAt: now,
	}
	return v, nil
}

// orEmpty returns s, or an empty slice for nil, so that it is stored as an
// array rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// missingRefs names every requested id that was not found.
func missingRefs(req PublishRequest, arts []*ModelArtifact, dss []*Dataset) error {
	found := map[bson.ObjectID]bool{}
	for _, a := range arts {
		found[a.ID] = true
	}
	for _, d := range dss {
		found[d.ID] = true
	}
	var fields []FieldError
	for _, id := range req.ArtifactIDs {
		if !found[id] {
			fields = append(fields, FieldError{Field: "artifact_ids", Reason: "no model_artifact with id " + id.Hex()})
		}
	}
	for _, id := range req.DatasetIDs {
		if !found[id] {
			fields = append(fields, FieldError{Field: "datasets", Reason: "no dataset with id " + id.Hex()})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	reason := fmt.Sprintf("%d referenced artifacts or datasets do not exist: %s", len(fields), fields[0].Reason)
	for _, f := range fields[1:] {
		reason += ", " + f.Reason
	}
	return &Error{Code: CodeInvalid, Entity: EntityVersion, Field: fields[0].Field, Reason: reason, Fields: fields}
}

// checkPublishable requires a sha256 and a license on every item (the
// first nArts are artifacts; licOf[i] is item i's license id), and
// commercial use when asked; it fills in each item's SPDX id.
func checkPublishable(req PublishRequest, items []ManifestItem, licOf []bson.ObjectID, nArts int, licenses map[bson.ObjectID]*License) error {
	var fields []FieldError
	for i := range items {
		it := &items[i]
		kind := EntityArtifact
		if i >= nArts {
			kind = EntityDataset
		}
		lic := licenses[licOf[i]]
		if field, reason := PublishProblem(it.SHA256 != "", lic, req.RequireCommercialUse); field != "" {
			fields = append(fields, FieldError{Field: field, Reason: fmt.Sprintf("%s %s %s", kind, it.Key(), reason)})
		}
		if lic != nil {
			it.LicenseSPDXID = lic.SPDXID
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalid, Entity: EntityVersion, Field: fields[0].Field, Reason: fields[0].Reason, Fields: fields}
}

// PublishProblem says why Publish refuses an artifact or dataset that has
// a sha256 digest or not (hasSHA256) and is under license (nil for none):
// the field ("hashes.sha256" or "license_id") and the reason, or two empty
// strings when it does not.
// Publish applies it to every item; tools that check ahead, such as an
// importer's dry run, apply the same rule.
func PublishProblem(hasSHA256 bool, license *License, requireCommercialUse bool) (field, reason string) {
	switch {
	case !hasSHA256:
		return "hashes.sha256", "has no hashes.sha256"
	case license == nil:
		return "license_id", "has no license"
	case requireCommercialUse && !license.CommercialUse && license.SPDXID != "":
		return "license_id", "is under " + license.SPDXID + ", which does not allow commercial use"
	case requireCommercialUse && !license.CommercialUse:
		return "license_id", "is under a license that does not allow commercial use"
	}
	return "", ""
}

// sameContents reports whether v has the contents of the request, whose
// manifest digest is digest: by digest, or, for a version published
// before digests, by its artifact and dataset ids.
func sameContents(v *InventoryVersion, digest string, req PublishRequest) bool {
	if v.Digest != "" {
		return v.Digest == digest
	}
	return v.HasContents(req.ArtifactIDs, req.DatasetIDs)
}

// HasContents reports whether v holds exactly these artifacts and
// datasets, in any order: the test of an idempotent Publish.
func (v *InventoryVersion) HasContents(artifactIDs, datasetIDs []bson.ObjectID) bool {
	return sameIDSet(v.ArtifactIDs, artifactIDs) && sameIDSet(v.DatasetIDs, datasetIDs)
}

func sameIDSet(a, b []bson.ObjectID) bool {
	if len(a) != len(b) {
		return false
	}
	set := make(map[bson.ObjectID]bool, len(a))
	for _, id := range a {
		set[id] = true
	}
	for _, id := range b {
		if !set[id] {
			return false
		}
	}
	return true
}

// existingResult answers a publish whose tag exists: the same contents
// (digest) are an idempotent success once every member carries the
// version's mark (see heal), others a conflict.
func (s *Store) existingResult(ctx context.Context, v *InventoryVersion, digest string, req PublishRequest, path PublishPath) (*PublishResult, error) {
	if !sameContents(v, digest, req) {
		return nil, conflictf(EntityVersion, "version_tag", "version %q exists with other contents", echo(req.VersionTag))
	}
	if err := s.heal(ctx, v); err != nil {
		return nil, err
	}
	return &PublishResult{Version: v, Created: false, Path: path}, nil
}

// heal marks every artifact and dataset of the published version v as
// published in it: a no-op on a whole version, and the repair of one torn
// by a crash or a raw write (its unmarked members would be editable). One
// idempotent update per collection; members that no longer exist are
// [Store.Check]'s to report.
func (s *Store) heal(ctx context.Context, v *InventoryVersion) error {
	for _, c := range []struct {
		col *mongo.Collection
		ids []bson.ObjectID
	}{{s.cols.artifacts, v.ArtifactIDs}, {s.cols.datasets, v.DatasetIDs}} {
		if len(c.ids) == 0 {
			continue
		}
		if _, err := c.col.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: c.ids}}}}, markUpdate(v.ID)); err != nil {
			return wrapErr(EntityVersion, "mark the members of version "+v.VersionTag, err)
		}
	}
	return nil
}

// markUpdate adds versionID to published_in and sets published.
func markUpdate(versionID bson.ObjectID) bson.D {
	return bson.D{
		{Key: "$set", Value: bson.D{{Key: "published", Value: true}}},
		{Key: "$addToSet", Value: bson.D{{Key: "published_in", Value: versionID}}},
	}
}

// mark marks ids in col as published in versionID and checks that every
// one of them was still there.
func (s *Store) mark(ctx context.Context, col *mongo.Collection, entity string, versionID bson.ObjectID, ids []bson.ObjectID) error {
	if len(ids) == 0 {
		return nil
	}
	res, err := col.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, markUpdate(versionID))
	if err != nil {
		return wrapErr(EntityVersion, "mark "+entity+"s published", err)
	}
	if int(res.MatchedCount) != len(ids) {
		return conflictf(EntityVersion, entity, "%d of %d %ss were deleted during the publish", len(ids)-int(res.MatchedCount), len(ids), entity)
	}
	return nil
}

func (s *Store) publishTxn(ctx context.Context, req PublishRequest) (*PublishResult, error) {
	var res *PublishResult
	err := s.InTransaction(ctx, func(ctx context.Context) error {
		var err error
		res, err = s.publishIn(ctx, req)
		return err
	})
	if err != nil {
		if mongo.IsDuplicateKeyError(err) {
			v, gerr := s.versionByTag(ctx, req.VersionTag, VersionPublished)
			if gerr != nil {
				return nil, gerr
			}
			want, berr := s.buildVersion(ctx, req, VersionPublished)
			if berr != nil {
				return nil, berr
			}
			return s.existingResult(ctx, v, want.Digest, req, PublishTransaction)
		}
		var le *Error
		if errors.Is(err, ErrTransactionLifetime) && errors.As(err, &le) {
			le.Reason = fmt.Sprintf("publish of %d artifacts and %d datasets: %s", len(req.ArtifactIDs), len(req.DatasetIDs), le.Reason)
		}
		return nil, wrapErr(EntityVersion, "publish", err)
	}
	return res, nil
}

// publishIn publishes inside the transaction ctx carries: a version of
// the same tag that is there already is compared instead of written again
// (the caller's transaction would not survive the duplicate key).
// WithTransaction may run it again, so it writes nothing outside ctx.
func (s *Store) publishIn(ctx context.Context, req PublishRequest) (*PublishResult, error) {
	v, err := s.buildVersion(ctx, req, VersionPublished)
	if err != nil {
		return nil, err
	}
	existing, err := s.versionByTag(ctx, req.VersionTag, VersionPublished)
	switch {
	case err == nil:
		return s.existingResult(ctx, existing, v.Digest, req, PublishTransaction)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	if err := s.step(ctx, stepInsertPending); err != nil {
		return nil, err
	}
	if _, err := s.cols.versions.InsertOne(ctx, v); err != nil {
		return nil, err
	}
	if err := s.mark(ctx, s.cols.artifacts, EntityArtifact, v.ID, v.ArtifactIDs); err != nil {
		return nil, err
	}
	if err := s.mark(ctx, s.cols.datasets, EntityDataset, v.ID, v.DatasetIDs); err != nil {
		return nil, err
	}
	return &PublishResult{Version: v, Created: true, Path: PublishTransaction}, nil
}

func (s *Store) step(ctx context.Context, name string) error {
	if s.hooks.publishStep != nil {
		return s.hooks.publishStep(ctx, name)
	}
	return nil
}

func (s *Store) publishStaged(ctx context.Context, req PublishRequest) (*PublishResult, error) {
	for {
		v, err := s.buildVersion(ctx, req, VersionPending)
		if err != nil {
			return nil, err
		}
		if err := s.step(ctx, stepInsertPending); err != nil {
			return nil, wrapErr(EntityVersion, "publish", err)
		}
		_, err = s.cols.versions.InsertOne(ctx, v)
		if mongo.IsDuplicateKeyError(err) {
			res, retry, err := s.awaitExisting(ctx, req, v.Digest)
			if retry {
				continue
			}
			return res, err
		}
		if err != nil {
			return nil, wrapErr(EntityVersion, "insert pending version", err)
		}
		if err := s.finishStaged(ctx, v); err != nil {
			s.rollbackStaged(ctx, v.ID, v.ArtifactIDs, v.DatasetIDs)
			return nil, wrapErr(EntityVersion, "publish", err)
		}
		v.State = VersionPublished
		return &PublishResult{Version: v, Created: true, Path: PublishStaged}, nil
	}
}

// finishStaged runs the staged publish's steps after the pending insert.
func (s *Store) finishStaged(ctx context.Context, v *InventoryVersion) error {
	if err := s.step(ctx, stepMarkArtifacts); err != nil {
		return err
	}
	if err := s.mark(ctx, s.cols.artifacts, EntityArtifact, v.ID, v.ArtifactIDs); err != nil {
		return err
	}
	if err := s.step(ctx, stepMarkDatasets); err != nil {
		return err
	}
	if err := s.mark(ctx, s.cols.datasets, EntityDataset, v.ID, v.DatasetIDs); err != nil {
		return err
	}
	if err := s.step(ctx, stepFlip); err != nil {
		return err
	}
	return s.flip(ctx, v.ID, bson.D{{Key: "_id", Value: v.ID}, {Key: "state", Value: VersionPending}})
}

// flip turns the pending version matched by filter into a published one.
func (s *Store) flip(ctx context.Context, id bson.ObjectID, filter bson.D) error {
	res, err := s.cols.versions.UpdateOne(ctx, filter, bson.D{
		{Key: "$set", Value: bson.D{{Key: "state", Value: VersionPublished}, {Key: "updated_at", Value: s.Now()}}},
		{Key: "$unset", Value: bson.D{{Key: "recovery_token", Value: ""}, {Key: "recovery_until", Value: ""}}},
	})
	if err != nil {
		return wrapErr(EntityVersion, "flip version to published", err)
	}
	if res.MatchedCount != 1 {
		return conflictf(EntityVersion, "state", "pending version %s was settled by a recovery before it could be published", id.Hex())
	}
	return nil
}

// rollbackStaged undoes a staged publish that failed: it removes the
// version from its artifacts' and datasets' published_in, clears
// published where no other version remains, and deletes the pending
// version last, so that a crash in between leaves the pending version for
// RecoverPublishes to finish the job. It runs even when ctx is cancelled.
func (s *Store) rollbackStaged(ctx context.Context, versionID bson.ObjectID, artIDs, dsIDs []bson.ObjectID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.unmarkAndDelete(ctx, versionID, artIDs, dsIDs, nil); err != nil {
		s.log.WarnContext(ctx, "harmonia: rollback of a failed publish did not finish; RecoverPublishes will", "version_id", versionID.Hex(), "error", err)
	}
}

func (s *Store) unmarkAndDelete(ctx context.Context, versionID bson.ObjectID, artIDs, dsIDs []bson.ObjectID, claim bson.D) error {
	for _, c := range []struct {
		col *mongo.Collection
		ids []bson.ObjectID
	}{{s.cols.artifacts, artIDs}, {s.cols.datasets, dsIDs}} {
		if len(c.ids) == 0 {
			continue
		}
		in := bson.E{Key: "_id", Value: bson.D{{Key: "$in", Value: c.ids}}}
		if _, err := c.col.UpdateMany(ctx, bson.D{in, {Key: "published_in", Value: versionID}},
			bson.D{{Key: "$pull", Value: bson.D{{Key: "published_in", Value: versionID}}}}); err != nil {
			return wrapErr(EntityVersion, "unmark", err)
		}
		if _, err := c.col.UpdateMany(ctx, bson.D{in, {Key: "published", Value: true}, {Key: "published_in", Value: bson.D{{Key: "$size", Value: 0}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "published", Value: false}}}}); err != nil {
			return wrapErr(EntityVersion, "unmark", err)
		}
	}
	filter := append(bson.D{{Key: "_id", Value: versionID}, {Key: "state", Value: VersionPending}}, claim...)
	if _, err := s.cols.versions.DeleteOne(ctx, filter); err != nil {
		return wrapErr(EntityVersion, "delete pending version", err)
	}
	return nil
}

// awaitExisting handles a publish whose tag is taken: a published version
// answers at once; a pending one (another publish in progress) is waited
// for until it settles. retry is true when the pending version vanished
// (it was rolled back) and the publish should try again.
func (s *Store) awaitExisting(ctx context.Context, req PublishRequest, digest string) (res *PublishResult, retry bool, err error) {
	for {
		v, err := findOne[InventoryVersion](ctx, s.cols.versions, EntityVersion, bson.D{{Key: "version_tag", Value: req.VersionTag}}, "tag "+req.VersionTag)
		if errors.Is(err, ErrNotFound) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		if v.State == VersionPublished {
			res, err := s.existingResult(ctx, v, digest, req, PublishStaged)
			return res, false, err
		}
		if !sameContents(v, digest, req) {
			return nil, false, conflictf(EntityVersion, "version_tag", "version %q is being published with other contents", echo(req.VersionTag))
		}
		if s.Now().Sub(v.CreatedAt) > s.opts.RecoverAfter {
			if _, err := s.RecoverPublishes(ctx); err != nil {
				return nil, false, err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, false, wrapErr(EntityVersion, "wait for a concurrent publish", ctx.Err())
		case <-time.After(pendingPollDefault):
		}
	}
}

// PublishRecoverReport says what RecoverPublishes did: the staged
// publishes it settled.
type PublishRecoverReport struct {
	// Completed lists the tags of pending versions it found fully marked
	// and flipped to published.
	Completed []string
	// RolledBack lists the tags of pending versions it undid.
	RolledBack []string
}

// RecoverPublishes settles staged publishes left pending by a crash: every
// pending version older than Options.RecoverAfter is either completed
// (when all its artifacts and datasets carry its mark) or rolled back
// (marks removed, version deleted). It is safe to run from several
// processes at once: each pending version is claimed with a lease before
// it is touched. Publish calls it before each staged publish.
//
// Errors: [CodeInternal].
func (s *Store) RecoverPublishes(ctx context.Context) (*PublishRecoverReport, error) {
	rep := &PublishRecoverReport{}
	now := s.Now()
	cutoff := now.Add(-s.opts.RecoverAfter)
	stale, err := findAll[*InventoryVersion](ctx, s.cols.versions, EntityVersion,
		bson.D{{Key: "state", Value: VersionPending}, {Key: "created_at", Value: bson.D{{Key: "$lt", Value: cutoff}}}}, 16,
		options.Find().SetLimit(100))
	if err != nil {
		return nil, err
	}
	for _, v := range stale {
		done, completed, err := s.recoverOne(ctx, v, now)
		if err != nil {
			return rep, err
		}
		switch {
		case !done:
		case completed:
			rep.Completed = append(rep.Completed, v.VersionTag)
		default:
			rep.RolledBack = append(rep.RolledBack, v.VersionTag)
		}
	}
	if len(rep.Completed)+len(rep.RolledBack) > 0 {
		s.log.InfoContext(ctx, "harmonia: recovered interrupted publishes", "completed", rep.Completed, "rolled_back", rep.RolledBack)
	}
	return rep, nil
}

// recoverOne claims one stale pending version and settles it. done is
// false when another recoverer holds it.
func (s *Store) recoverOne(ctx context.Context, v *InventoryVersion, now time.Time) (done, completed bool, err error) {
	token := bson.NewObjectID()
	claimed := bson.D{{Key: "_id", Value: v.ID}, {Key: "state", Value: VersionPending}, {Key: "recovery_token", Value: token}}
	res, err := s.cols.versions.UpdateOne(ctx, bson.D{
		{Key: "_id", Value: v.ID}, {Key: "state", Value: VersionPending},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "recovery_until", Value: bson.D{{Key: "$exists", Value: false}}}},
			bson.D{{Key: "recovery_until", Value: bson.D{{Key: "$lt", Value: now}}}},
		}},
	}, bson.D{{Key: "$set", Value: bson.D{{Key: "recovery_token", Value: token}, {Key: "recovery_until", Value: now.Add(s.opts.RecoverAfter)}}}})
	if err != nil {
		return false, false, wrapErr(EntityVersion, "claim pending version", err)
	}
	if res.MatchedCount == 0 {
		return false, false, nil
	}
	marked := func(col *mongo.Collection, ids []bson.ObjectID) (bool, error) {
		if len(ids) == 0 {
			return true, nil
		}
		n, err := col.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "published_in", Value: v.ID}})
		return int(n) == len(ids), err
	}
	artsOK, err := marked(s.cols.artifacts, v.ArtifactIDs)
	if err != nil {
		return false, false, wrapErr(EntityVersion, "check marks", err)
	}
	dsOK, err := marked(s.cols.datasets, v.DatasetIDs)
	if err != nil {
		return false, false, wrapErr(EntityVersion, "check marks", err)
	}
	if artsOK && dsOK {
		if err := s.flip(ctx, v.ID, claimed); err != nil {
			return false, false, err
		}
		return true, true, nil
	}
	if err := s.unmarkAndDelete(ctx, v.ID, v.ArtifactIDs, v.DatasetIDs, bson.D{{Key: "recovery_token", Value: token}}); err != nil {
		return false, false, err
	}
	return true, false, nil
}
