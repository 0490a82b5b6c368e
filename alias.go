package harmonia

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Collections and entity names of aliases.
const (
	// CollectionAliases holds one document per alias: its current target
	// and the sequence number of its last move.
	CollectionAliases = "aliases"
	// CollectionAliasHistory holds one record per alias move, the audit
	// trail that [Store.AliasHistory] and [Store.WatchAlias] read.
	CollectionAliasHistory = "alias_history"
	// EntityAlias names aliases in errors.
	EntityAlias = "alias"
)

// Steps of the staged alias move, in order. Tests inject failures at each.
const (
	stepAliasPending = "alias_pending"
	stepAliasRecord  = "alias_record"
	stepAliasApply   = "alias_apply"
)

// ErrAliasMoved is the cause of the conflict SetAlias and DeleteAlias
// return when the alias does not point where the caller expected (the
// compare-and-set failed). Test for it with
//
//	errors.Is(err, harmonia.ErrAliasMoved)
var ErrAliasMoved = errors.New("alias moved")

// Alias is a name ("production", "canary") that points at a published
// inventory version and is moved on purpose, with [Store.SetAlias].
type Alias struct {
	// Name is the alias's name, validated like a tag.
	Name string
	// VersionTag is the tag of the version the alias points at.
	VersionTag string
	// VersionID is that version's id.
	VersionID bson.ObjectID
	// Digest is that version's content digest.
	Digest string
	// Seq is the sequence number of the alias's last move: 1 for its
	// first, one more for each move after it.
	Seq int64
	// UpdatedBy and UpdatedAt say who moved it last, and when.
	UpdatedBy string
	UpdatedAt time.Time
}

// AliasMove is one move of an alias as its audit trail records it.
type AliasMove struct {
	// ID identifies the record.
	ID bson.ObjectID `bson:"_id" json:"id" validate:"-"`
	// SchemaVersion is the record's schema version.
	SchemaVersion int `bson:"schema_version" json:"schema_version" validate:"-"`
	// Alias is the name of the alias moved.
	Alias string `bson:"alias" json:"alias" validate:"required,tag"`
	// Seq numbers the alias's moves, 1, 2, 3…, without gaps.
	Seq int64 `bson:"seq" json:"seq" validate:"-"`
	// From is the version tag the alias pointed at before ("" for none).
	From string `bson:"from" json:"from" validate:"max=100"`
	// To is the version tag it points at after ("" when deleted).
	To string `bson:"to" json:"to" validate:"max=100"`
	// Digest is the content digest of To's version ("" when deleted).
	Digest string `bson:"digest" json:"digest" validate:"-"`
	// By names who moved the alias.
	By string `bson:"by" json:"by" validate:"required,max=200,nocontrol"`
	// At is when the alias moved.
	At time.Time `bson:"at" json:"at" validate:"-"`
	// Reason is the optional reason given for the move.
	Reason string `bson:"reason" json:"reason,omitempty" validate:"max=2000"`
}

// aliasDoc is the stored form of an alias. Pending is the move in
// progress of a staged move (deployments without transactions); it locks
// the alias against other moves until it is applied or rolled back.
type aliasDoc struct {
	ID            bson.ObjectID `bson:"_id" validate:"-"`
	SchemaVersion int           `bson:"schema_version" validate:"-"`
	Name          string        `bson:"name" validate:"required,tag"`
	VersionTag    string        `bson:"version_tag" validate:"max=100"`
	VersionID     bson.ObjectID `bson:"version_id" validate:"-"`
	Digest        string        `bson:"digest" validate:"-"`
	Seq           int64         `bson:"seq" validate:"-"`
	UpdatedBy     string        `bson:"updated_by" validate:"max=200"`
	Pending       *AliasMove    `bson:"pending,omitempty" validate:"-"`
	CreatedAt     time.Time     `bson:"created_at" validate:"-"`
	UpdatedAt     time.Time     `bson:"updated_at" validate:"-"`
}

func (d *aliasDoc) alias() *Alias {
	return &Alias{Name: d.Name, VersionTag: d.VersionTag, VersionID: d.VersionID, Digest: d.Digest,
		Seq: d.Seq, UpdatedBy: d.UpdatedBy, UpdatedAt: d.UpdatedAt}
}

// SetAliasOpts says who moves an alias, why, and where the caller expects
// it to point before the move.
type SetAliasOpts struct {
	// By names who moves the alias; it goes into the audit trail.
	// Required.
	By string
	// Reason is kept with the move in the audit trail. Optional.
	Reason string
	// ExpectVersion makes the move a compare-and-set: it happens only if
	// the alias points at this version tag now, and otherwise fails with a
	// conflict ([ErrAliasMoved]) naming where it points. Empty means no
	// expectation, unless ExpectAbsent is set.
	ExpectVersion string
	// ExpectAbsent makes the move happen only if the alias does not point
	// anywhere yet (it never existed or was deleted).
	ExpectAbsent bool
	// ExpectSeq makes the move a compare-and-set on the alias's move
	// number ([Alias].Seq): it happens only if the alias's last move is
	// this one, and otherwise fails with a conflict ([ErrAliasMoved]).
	// Unlike ExpectVersion it also refuses an alias moved away and back
	// since it was read. It is checked in the same write as
	// ExpectVersion. 0 means no expectation.
	ExpectSeq int64
}

func (o *SetAliasOpts) validate() error {
	if o == nil || o.By == "" {
		return invalidf(EntityAlias, "by", "SetAliasOpts.By must name who moves the alias")
	}
	if o.ExpectAbsent && (o.ExpectVersion != "" || o.ExpectSeq != 0) {
		return invalidf(EntityAlias, "expect", "ExpectAbsent excludes ExpectVersion and ExpectSeq")
	}
	if o.ExpectSeq < 0 {
		return invalidf(EntityAlias, "expect_seq", "ExpectSeq must not be negative")
	}
	return nil
}

func validAliasName(name string) error {
	if !validTag(name) {
		return invalidf(EntityAlias, "name", "alias name %q must be 1 to 64 of a-z, 0-9 and (after the first) . _ : / + -", echo(name))
	}
	return nil
}

// expect checks the caller's expectation against the alias's current
// target from and move number seq (0: no alias yet). The write that
// follows is conditional on seq, so the check holds at the write.
func (o *SetAliasOpts) expect(name, from string, seq int64) error {
	actual := from
	if actual == "" {
		actual = "nothing"
	}
	switch {
	case o.ExpectAbsent && from != "":
		return &Error{Code: CodeConflict, Entity: EntityAlias, Field: "version_tag", Err: ErrAliasMoved,
			Reason: fmt.Sprintf("alias %s points at %s, not at nothing as expected", name, actual)}
	case o.ExpectVersion != "" && from != NormalizeName(o.ExpectVersion):
		return &Error{Code: CodeConflict, Entity: EntityAlias, Field: "version_tag", Err: ErrAliasMoved,
			Reason: fmt.Sprintf("alias %s points at %s, not at %s as expected", name, actual, o.ExpectVersion)}
	case o.ExpectSeq != 0 && seq != o.ExpectSeq:
		return &Error{Code: CodeConflict, Entity: EntityAlias, Field: "seq", Err: ErrAliasMoved,
			Reason: fmt.Sprintf("alias %s is at move %d (it points at %s), not at move %d as expected", name, seq, actual, o.ExpectSeq)}
	}
	return nil
}

// SetAlias points the alias name at the published version with versionTag,
// creating the alias on its first move, and records the move (who, when,
// why, from where) in the alias's audit trail in the same unit: one
// transaction where the deployment has them, elsewhere a staged move that
// never leaves a move without its record (the move is first noted on the
// alias as pending, then recorded, then applied; [Store.RecoverAliases]
// rolls back one interrupted by a crash). opts.By is required. With
// opts.ExpectVersion, opts.ExpectSeq or opts.ExpectAbsent the move is a
// compare-and-set: of several callers expecting the same target, exactly
// one moves the alias and the others get a conflict naming its actual
// target. Setting
// an alias to the version it points at is recorded as a move too.
//
// A version an alias points at stays published: harmonia has no call that
// deletes or unpublishes a published version.
//
// Errors: [CodeInvalid] (a bad alias name, no opts.By), [CodeNotFound]
// (no published version with versionTag), [CodeConflict] (the alias is not where opts expected,
// with cause [ErrAliasMoved]; a staged move rolled back by a recovery),
// [CodeInternal].
func (s *Store) SetAlias(ctx context.Context, name, versionTag string, opts *SetAliasOpts) (*AliasMove, error) {
	if err := validAliasName(name); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	v, err := s.GetVersionByTag(ctx, versionTag)
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Code: CodeNotFound, Entity: EntityAlias, Field: "version_tag",
			Reason: fmt.Sprintf("no published version with tag %q", echo(versionTag))}
	}
	if err != nil {
		return nil, err
	}
	return s.moveAlias(ctx, name, v, *opts)
}

// DeleteAliasOpts are the options of [Store.DeleteAlias].
type DeleteAliasOpts struct {
	// By names who removes the alias; it goes into the audit trail.
	// Required.
	By string
	// Reason is kept with the removal in the audit trail. Optional.
	Reason string
	// ExpectVersion makes the removal a compare-and-set: it happens only
	// if the alias points at this version tag now, and otherwise fails
	// with a conflict ([ErrAliasMoved]). Empty means no expectation.
	ExpectVersion string
	// ExpectSeq makes the removal a compare-and-set on the alias's move
	// number, as [SetAliasOpts].ExpectSeq does. 0 means no expectation.
	ExpectSeq int64
}

// DeleteAlias removes the alias name: it no longer resolves nor is listed.
// The removal is a move to no version, recorded in the audit trail like
// any other (its To is empty); setting the alias again continues its
// history.
//
// Errors: [CodeInvalid], [CodeNotFound] (no such alias), [CodeConflict]
// (see SetAlias), [CodeInternal].
func (s *Store) DeleteAlias(ctx context.Context, name string, opts *DeleteAliasOpts) (*AliasMove, error) {
	if err := validAliasName(name); err != nil {
		return nil, err
	}
	if opts == nil || opts.By == "" {
		return nil, invalidf(EntityAlias, "by", "DeleteAliasOpts.By must name who removes the alias")
	}
	o := SetAliasOpts{By: opts.By, Reason: opts.Reason, ExpectVersion: opts.ExpectVersion, ExpectSeq: opts.ExpectSeq}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return s.moveAlias(ctx, name, nil, o)
}

// errAliasRaced says that another move changed the alias between our read
// and our write: read it again and retry.
var errAliasRaced = errors.New("alias changed concurrently")

// moveAlias moves name to v (nil: delete), retrying when it raced with
// another move; the expectation is checked against each fresh read.
func (s *Store) moveAlias(ctx context.Context, name string, v *InventoryVersion, o SetAliasOpts) (*AliasMove, error) {
	for {
		var m *AliasMove
		var err error
		if s.caps.Transactions {
			m, err = s.moveAliasTxn(ctx, name, v, o)
		} else {
			m, err = s.moveAliasStaged(ctx, name, v, o)
		}
		if errors.Is(err, errAliasRaced) || mongo.IsDuplicateKeyError(err) {
			if ctx.Err() != nil {
				return nil, wrapErr(EntityAlias, "move alias", ctx.Err())
			}
			continue
		}
		if err != nil {
			return nil, wrapErr(EntityAlias, "move alias "+name, err)
		}
		return m, nil
	}
}

// aliasByName reads the alias document; nil when there is none.
func (s *Store) aliasByName(ctx context.Context, name string) (*aliasDoc, error) {
	var d aliasDoc
	err := s.cols.aliases.FindOne(ctx, bson.D{{Key: "name", Value: name}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, wrapErr(EntityAlias, "find alias "+name, err)
	}
	return &d, nil
}

// newMove prepares the record of moving cur (nil: no alias yet) to v.
func (s *Store) newMove(name string, cur *aliasDoc, v *InventoryVersion, o SetAliasOpts) (*AliasMove, error) {
	from, seq := "", int64(0)
	if cur != nil {
		from, seq = cur.VersionTag, cur.Seq
	}
	if v == nil && from == "" {
		return nil, notFoundf(EntityAlias, "no alias %s", name)
	}
	if err := o.expect(name, from, seq); err != nil {
		return nil, err
	}
	m := &AliasMove{ID: bson.NewObjectID(), SchemaVersion: SchemaVersion, Alias: name, Seq: seq + 1, From: from,
		By: o.By, At: s.Now(), Reason: o.Reason}
	if v != nil {
		m.To, m.Digest = v.VersionTag, v.Digest
	}
	if err := validateEntity(EntityAlias, m); err != nil {
		return nil, err
	}
	return m, nil
}

// applied is the $set of an alias document once move m is applied.
func applied(m *AliasMove, v *InventoryVersion) bson.D {
	var vid bson.ObjectID
	if v != nil {
		vid = v.ID
	}
	return bson.D{{Key: "version_tag", Value: m.To}, {Key: "version_id", Value: vid}, {Key: "digest", Value: m.Digest},
		{Key: "seq", Value: m.Seq}, {Key: "updated_by", Value: m.By}, {Key: "updated_at", Value: m.At}}
}

func newAliasDoc(name string, now time.Time) *aliasDoc {
	return &aliasDoc{ID: bson.NewObjectID(), SchemaVersion: SchemaVersion, Name: name, CreatedAt: now, UpdatedAt: now}
}

// moveAliasTxn reads the alias, writes the record and moves the alias in
// one transaction.
func (s *Store) moveAliasTxn(ctx context.Context, name string, v *InventoryVersion, o SetAliasOpts) (*AliasMove, error) {
	sess, err := s.db.Client().StartSession()
	if err != nil {
		return nil, wrapErr(EntityAlias, "start session", err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	res, err := sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		cur, err := s.aliasByName(ctx, name)
		if err != nil {
			return nil, err
		}
		m, err := s.newMove(name, cur, v, o)
		if err != nil {
			return nil, err
		}
		if err := s.aliasStep(ctx, stepAliasPending); err != nil {
			return nil, err
		}
		if err := s.aliasStep(ctx, stepAliasRecord); err != nil {
			return nil, err
		}
		if _, err := s.cols.aliasHistory.InsertOne(ctx, m); err != nil {
			return nil, err
		}
		if err := s.aliasStep(ctx, stepAliasApply); err != nil {
			return nil, err
		}
		if cur == nil {
			d := newAliasDoc(name, m.At)
			d.VersionTag, d.Digest, d.Seq, d.UpdatedBy, d.UpdatedAt = m.To, m.Digest, m.Seq, m.By, m.At
			if v != nil {
				d.VersionID = v.ID
			}
			_, err := s.cols.aliases.InsertOne(ctx, d)
			return m, err
		}
		r, err := s.cols.aliases.UpdateOne(ctx, bson.D{{Key: "_id", Value: cur.ID}, {Key: "seq", Value: cur.Seq}},
			bson.D{{Key: "$set", Value: applied(m, v)}})
		if err != nil {
			return nil, err
		}
		if r.MatchedCount != 1 {
			return nil, errAliasRaced
		}
		return m, nil
	}, options.Transaction().SetWriteConcern(writeconcern.Majority()))
	if err != nil {
		return nil, err
	}
	return res.(*AliasMove), nil
}

// moveAliasStaged moves the alias without a transaction, in three writes
// that each keep the trail whole:
//
//  1. the move is noted on the alias as pending (a compare-and-set on its
//     seq with no move pending), which locks the alias;
//  2. the record is inserted (records beyond the alias's seq are not part
//     of its history until the alias reaches them);
//  3. the alias is moved and the pending note removed, in one update
//     conditional on the note.
//
// A failure after step 1 rolls the move back; a crash leaves the note for
// RecoverAliases (or the next move, once it is older than
// Options.RecoverAfter) to roll back.
func (s *Store) moveAliasStaged(ctx context.Context, name string, v *InventoryVersion, o SetAliasOpts) (*AliasMove, error) {
	cur, err := s.aliasByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Pending != nil {
		if s.Now().Sub(cur.Pending.At) > s.opts.RecoverAfter {
			if err := s.rollbackMove(ctx, cur.ID, cur.Pending); err != nil {
				return nil, err
			}
			return nil, errAliasRaced
		}
		select {
		case <-ctx.Done():
			return nil, wrapErr(EntityAlias, "wait for a concurrent move", ctx.Err())
		case <-time.After(pendingPollDefault):
		}
		return nil, errAliasRaced
	}
	m, err := s.newMove(name, cur, v, o)
	if err != nil {
		return nil, err
	}
	if err := s.aliasStep(ctx, stepAliasPending); err != nil {
		return nil, err
	}
	if cur == nil {
		cur = newAliasDoc(name, m.At)
		cur.Pending = m
		if _, err := s.cols.aliases.InsertOne(ctx, cur); err != nil {
			return nil, err
		}
	} else {
		r, err := s.cols.aliases.UpdateOne(ctx, bson.D{{Key: "_id", Value: cur.ID}, {Key: "seq", Value: cur.Seq}, {Key: "pending", Value: bson.D{{Key: "$exists", Value: false}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "pending", Value: m}}}})
		if err != nil {
			return nil, err
		}
		if r.MatchedCount != 1 {
			return nil, errAliasRaced
		}
	}
	if err := s.finishMove(ctx, cur.ID, m, v); err != nil {
		if rerr := s.rollbackMove(context.WithoutCancel(ctx), cur.ID, m); rerr != nil {
			s.log.WarnContext(ctx, "harmonia: rollback of a failed alias move did not finish; RecoverAliases will", "alias", name, "error", rerr)
		}
		return nil, err
	}
	return m, nil
}

// finishMove runs steps 2 and 3 of a staged move.
func (s *Store) finishMove(ctx context.Context, aliasID bson.ObjectID, m *AliasMove, v *InventoryVersion) error {
	if err := s.aliasStep(ctx, stepAliasRecord); err != nil {
		return err
	}
	// Records beyond the alias's seq are left by a rollback that did not
	// finish; this move's seq is ours while the pending note holds.
	if _, err := s.cols.aliasHistory.DeleteMany(ctx, bson.D{{Key: "alias", Value: m.Alias}, {Key: "seq", Value: bson.D{{Key: "$gte", Value: m.Seq}}}}); err != nil {
		return err
	}
	if _, err := s.cols.aliasHistory.InsertOne(ctx, m); err != nil {
		return err
	}
	if err := s.aliasStep(ctx, stepAliasApply); err != nil {
		return err
	}
	r, err := s.cols.aliases.UpdateOne(ctx, bson.D{{Key: "_id", Value: aliasID}, {Key: "pending._id", Value: m.ID}},
		bson.D{{Key: "$set", Value: applied(m, v)}, {Key: "$unset", Value: bson.D{{Key: "pending", Value: ""}}}})
	if err != nil {
		return err
	}
	if r.MatchedCount != 1 {
		return conflictf(EntityAlias, "pending", "the move of alias %s was rolled back by a recovery before it could be applied", m.Alias)
	}
	return nil
}

// rollbackMove undoes the pending move m of the alias: it removes the
// pending note first (so that the move can no longer be applied), then the
// move's record, if it was written.
func (s *Store) rollbackMove(ctx context.Context, aliasID bson.ObjectID, m *AliasMove) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.cols.aliases.UpdateOne(ctx, bson.D{{Key: "_id", Value: aliasID}, {Key: "pending._id", Value: m.ID}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "pending", Value: ""}}}}); err != nil {
		return wrapErr(EntityAlias, "roll back pending move", err)
	}
	if _, err := s.cols.aliasHistory.DeleteOne(ctx, bson.D{{Key: "_id", Value: m.ID}}); err != nil {
		return wrapErr(EntityAlias, "delete record of a rolled back move", err)
	}
	return nil
}

func (s *Store) aliasStep(ctx context.Context, name string) error {
	if s.hooks.aliasStep != nil {
		return s.hooks.aliasStep(ctx, name)
	}
	return nil
}

// AliasRecoverReport says what RecoverAliases did.
type AliasRecoverReport struct {
	// RolledBack lists the aliases whose interrupted move was rolled back.
	RolledBack []string
}

// RecoverAliases rolls back the staged alias moves that a crash
// interrupted: every move pending for longer than Options.RecoverAfter is
// removed from its alias together with its record, so that the alias and
// its audit trail agree (the move happened with its record, or neither
// did). The next move of an alias does the same for that alias. On
// deployments with transactions there is nothing to recover.
//
// Errors: [CodeInternal].
func (s *Store) RecoverAliases(ctx context.Context) (*AliasRecoverReport, error) {
	rep := &AliasRecoverReport{}
	stale, err := findAll[*aliasDoc](ctx, s.cols.aliases, EntityAlias, bson.D{
		{Key: "pending.at", Value: bson.D{{Key: "$lt", Value: s.Now().Add(-s.opts.RecoverAfter)}}}}, 16)
	if err != nil {
		return nil, err
	}
	for _, d := range stale {
		if err := s.rollbackMove(ctx, d.ID, d.Pending); err != nil {
			return rep, err
		}
		rep.RolledBack = append(rep.RolledBack, d.Name)
	}
	if len(rep.RolledBack) > 0 {
		s.log.InfoContext(ctx, "harmonia: rolled back interrupted alias moves", "aliases", rep.RolledBack)
	}
	return rep, nil
}

// GetAlias returns the alias name.
//
// Errors: [CodeInvalid] (a bad name), [CodeNotFound] (no such alias, or
// it was deleted), [CodeInternal].
func (s *Store) GetAlias(ctx context.Context, name string) (*Alias, error) {
	if err := validAliasName(name); err != nil {
		return nil, err
	}
	d, err := s.aliasByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if d == nil || d.VersionTag == "" {
		return nil, notFoundf(EntityAlias, "no alias %s", name)
	}
	return d.alias(), nil
}

// ResolveAlias returns the published version the alias name points at.
//
// Errors: [CodeInvalid], [CodeNotFound] (no such alias), [CodeInternal].
func (s *Store) ResolveAlias(ctx context.Context, name string) (*InventoryVersion, error) {
	a, err := s.GetAlias(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.GetVersion(ctx, a.VersionID)
}

// ListAliases returns every alias, by name. Aliases are few (a handful per
// deployment), so there is no paging.
//
// Errors: [CodeInternal].
func (s *Store) ListAliases(ctx context.Context) ([]*Alias, error) {
	docs, err := findAll[*aliasDoc](ctx, s.cols.aliases, EntityAlias, bson.D{{Key: "version_tag", Value: bson.D{{Key: "$ne", Value: ""}}}}, 100,
		options.Find().SetSort(bson.D{{Key: "name", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]*Alias, len(docs))
	for i, d := range docs {
		out[i] = d.alias()
	}
	return out, nil
}

// AliasHistoryFilter selects the moves [Store.AliasHistory] returns.
type AliasHistoryFilter struct {
	// AfterSeq returns the moves after this sequence number; 0 starts at
	// the first move.
	AfterSeq int64
	// Limit bounds how many moves are returned. Defaults to
	// ListLimitDefault; at most ListLimitMax.
	Limit int
}

// AliasHistory returns the moves of the alias name, oldest first: exactly
// the moves that happened, each once, in order of their Seq.
//
// Errors: [CodeInvalid] (a bad name), [CodeNotFound] (the alias never
// existed), [CodeInternal].
func (s *Store) AliasHistory(ctx context.Context, name string, f AliasHistoryFilter) ([]*AliasMove, error) {
	if err := validAliasName(name); err != nil {
		return nil, err
	}
	d, err := s.aliasByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, notFoundf(EntityAlias, "no alias %s", name)
	}
	limit, err := pageLimit(EntityAlias, f.Limit)
	if err != nil {
		return nil, err
	}
	return s.movesBetween(ctx, name, f.AfterSeq, d.Seq, limit)
}

// movesBetween reads the records of the moves after seq from, up to seq
// to: the moves applied to the alias (a record beyond the alias's seq
// belongs to a staged move not applied yet).
func (s *Store) movesBetween(ctx context.Context, name string, from, to int64, limit int) ([]*AliasMove, error) {
	if to <= from {
		return []*AliasMove{}, nil
	}
	moves, err := findAll[*AliasMove](ctx, s.cols.aliasHistory, EntityAlias, bson.D{{Key: "alias", Value: name},
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: from}, {Key: "$lte", Value: to}}}}, limit,
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	if moves == nil {
		moves = []*AliasMove{}
	}
	return moves, nil
}
