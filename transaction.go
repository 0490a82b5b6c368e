package harmonia

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// ErrNoTransactions is wrapped by the error of a call that needs a
// multi-document transaction on a deployment that has none (a standalone
// server): [Store.InTransaction], and Publish called inside a caller's
// transaction. Such errors are also [CodeInvalid].
var ErrNoTransactions = errors.New("the deployment has no multi-document transactions")

// InTransaction runs fn as one unit of work: every Store method (and every
// driver operation) that fn calls with the ctx it is given runs in one
// multi-document transaction, committed when fn returns nil and aborted
// when it returns an error, which InTransaction returns.
//
// fn may run more than once: the driver's Session.WithTransaction runs it
// again after a transient error (a write conflict, a failover) and retries
// a commit whose result is unknown. So fn must be idempotent and have no
// effect outside the database, and it must pass its ctx to every
// operation, or that operation runs outside the transaction.
//
// Called with a ctx already in a transaction, InTransaction joins it: fn
// runs in the caller's transaction, which the caller commits or aborts.
//
// On a deployment without transactions InTransaction runs nothing and
// returns a [CodeInvalid] error wrapping [ErrNoTransactions]: a
// standalone server cannot make several writes one unit. (Publish alone
// stays atomic there through its staged publish.)
//
// Errors: [CodeInvalid] (no transactions), fn's error, [CodeInternal].
func (s *Store) InTransaction(ctx context.Context, fn func(ctx context.Context) error) error {
	if fn == nil {
		return invalidf("store", "fn", "a function is required")
	}
	if inTransaction(ctx) {
		return fn(ctx)
	}
	if !s.caps.Transactions {
		return errNoTransactions(s.caps, "InTransaction cannot make one unit")
	}
	sess, err := s.db.Client().StartSession()
	if err != nil {
		return wrapErr("store", "start session", err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	txnOpts := options.Transaction().SetWriteConcern(writeconcern.Majority())
	attempt := time.Now()
	_, err = sess.WithTransaction(ctx, func(ctx context.Context) (any, error) {
		attempt = time.Now()
		err := fn(ctx)
		if lifetimeExceeded(err, time.Since(attempt)) {
			return nil, lifetimeError(time.Since(attempt), err)
		}
		return nil, err
	}, txnOpts)
	if lifetimeExceeded(err, time.Since(attempt)) {
		return lifetimeError(time.Since(attempt), err)
	}
	return err
}

// inTransaction reports whether ctx carries a session with a transaction
// in progress.
func inTransaction(ctx context.Context) bool {
	sess := mongo.SessionFromContext(ctx)
	return sess != nil && sess.TransactionRunning()
}

// errNoTransactions is the error of a call that needs a transaction on a
// deployment without them.
func errNoTransactions(caps Capabilities, what string) error {
	e := invalidf("store", "transactions", "%s: the deployment (%s %s) has no multi-document transactions; use a replica set or mongos",
		what, caps.Topology, caps.ServerVersion)
	e.Err = ErrNoTransactions
	return e
}
