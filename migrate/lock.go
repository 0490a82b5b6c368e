package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
)

// LockCollection is the collection that holds the runners' lock: one
// document whose _id is LockID.
const LockCollection = "schema_migrations_lock"

// LockID is the _id of the lock document: its unique key.
const LockID = "schema_migrations"

// errLockLost is the cause of a run's cancellation when its lease could
// not be renewed (another runner took the lock over after it expired).
var errLockLost = errors.New("migrate: the lock was lost: another runner took it over after its lease expired")

// lockDoc is the lease document.
type lockDoc struct {
	ID         string    `bson:"_id"`
	Owner      string    `bson:"owner"`
	Token      string    `bson:"token"`
	AcquiredAt time.Time `bson:"acquired_at"`
	ExpiresAt  time.Time `bson:"expires_at"`
}

// locked runs f while holding the lock. The context f receives is
// cancelled, with errLockLost as its cause, if the lease cannot be renewed.
func (r *Runner) locked(ctx context.Context, f func(ctx context.Context) error) error {
	token, err := r.acquire(ctx)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		r.renew(lctx, token, cancel)
	}()
	err = func() error {
		if err := r.ensureRecordIndex(lctx); err != nil {
			return err
		}
		return f(lctx)
	}()
	cancel(nil)
	<-renewed
	return errors.Join(err, r.release(ctx, token))
}

// acquire takes the lock: it inserts the lock document or takes over an
// expired one, and otherwise waits (polling) up to Options.LockWait. It
// returns the lease's token.
func (r *Runner) acquire(ctx context.Context) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	token := hex.EncodeToString(b[:])
	deadline := time.Now().Add(r.opts.LockWait)
	for {
		now := r.now()
		doc := lockDoc{ID: LockID, Owner: r.opts.Owner, Token: token, AcquiredAt: now, ExpiresAt: now.Add(r.opts.LockLease)}
		_, err := r.lockCol.InsertOne(ctx, doc)
		if err == nil {
			return token, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return "", internal("take the lock", err)
		}
		var prev lockDoc
		err = r.lockCol.FindOneAndUpdate(ctx,
			bson.D{{Key: "_id", Value: LockID}, {Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: doc.Owner}, {Key: "token", Value: token},
				{Key: "acquired_at", Value: now}, {Key: "expires_at", Value: doc.ExpiresAt}}}}).Decode(&prev)
		if err == nil {
			r.opts.Logger.WarnContext(ctx, "migrate: took over an expired lock; its holder crashed or hung",
				"previous_owner", prev.Owner, "expired_at", prev.ExpiresAt)
			return token, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return "", internal("take over the lock", err)
		}
		if !time.Now().Before(deadline) {
			holder, herr := r.lockStatus(ctx)
			if herr != nil || holder == nil {
				return "", &harmonia.Error{Code: harmonia.CodeConflict, Entity: EntityMigration, Field: "lock",
					Reason: fmt.Sprintf("the migration lock stayed busy for %s", r.opts.LockWait), Err: herr}
			}
			return "", &harmonia.Error{Code: harmonia.CodeConflict, Entity: EntityMigration, Field: "lock",
				Reason: fmt.Sprintf("the migration lock is held by %s until %s (waited %s)", holder.Owner,
					holder.ExpiresAt.Format(time.RFC3339Nano), r.opts.LockWait)}
		}
		select {
		case <-ctx.Done():
			return "", internal("wait for the lock", ctx.Err())
		case <-time.After(r.opts.LockPoll):
		}
	}
}

// renew extends the lease every third of it until ctx is done, and
// cancels the run when the lease is gone: taken over by another runner,
// or not renewed (server unreachable) before it expired.
func (r *Runner) renew(ctx context.Context, token string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(r.opts.LockLease / 3)
	defer t.Stop()
	lastRenewed := r.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.now()
		res, err := r.lockCol.UpdateOne(ctx, bson.D{{Key: "_id", Value: LockID}, {Key: "token", Value: token}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: now.Add(r.opts.LockLease)}}}})
		switch {
		case err == nil && res.MatchedCount == 1:
			lastRenewed = now
		case err == nil:
			cancel(errLockLost)
			return
		case ctx.Err() != nil:
			return
		case now.Sub(lastRenewed) >= r.opts.LockLease:
			cancel(fmt.Errorf("%w (last error: %v)", errLockLost, err))
			return
		default:
			r.opts.Logger.WarnContext(ctx, "migrate: could not renew the lock; will retry", "error", err)
		}
	}
}

// release deletes the lock document if it is still this lease's.
func (r *Runner) release(ctx context.Context, token string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := r.lockCol.DeleteOne(ctx, bson.D{{Key: "_id", Value: LockID}, {Key: "token", Value: token}}); err != nil {
		return internal("release the lock", err)
	}
	return nil
}

// lockStatus reads the lock; nil when nobody holds it.
func (r *Runner) lockStatus(ctx context.Context) (*LockStatus, error) {
	var d lockDoc
	err := r.lockCol.FindOne(ctx, bson.D{{Key: "_id", Value: LockID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, internal("read the lock", err)
	}
	return &LockStatus{Owner: d.Owner, AcquiredAt: d.AcquiredAt, ExpiresAt: d.ExpiresAt, Expired: !d.ExpiresAt.After(r.now())}, nil
}
