package harmonia

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// ErrTransactionLifetime is wrapped by the error of a unit of work (a
// Publish, an [Store.InTransaction]) that the server aborted because it
// ran past the server's transaction lifetime limit (MongoDB's
// transactionLifetimeLimitSeconds, 60 s by default; the embedded
// server's Options.TransactionLifetime). Nothing of it was written. Such
// errors are also [CodeConflict]; retrying the same work gets cut again.
var ErrTransactionLifetime = errors.New("the transaction ran past the server's transaction lifetime limit")

// transactionLifetimeMongoDB is MongoDB's default transaction lifetime:
// a transaction aborted as NoSuchTransaction after running this long was
// most likely cut by it.
const transactionLifetimeMongoDB = 60 * time.Second

// codeNoSuchTransaction is the server's error code for a command or a
// commit of an aborted transaction.
const codeNoSuchTransaction = 251

// lifetimeExceeded reports whether err says the server aborted a
// transaction that had run for took because of its lifetime: a
// NoSuchTransaction error that says so (the embedded server does), or one
// after at least MongoDB's default lifetime.
func lifetimeExceeded(err error, took time.Duration) bool {
	var se mongo.ServerError
	if err == nil || !errors.As(err, &se) || !se.HasErrorCode(codeNoSuchTransaction) {
		return false
	}
	return strings.Contains(err.Error(), "lifetime") || took >= transactionLifetimeMongoDB
}

// lifetimeError is the error of a transaction cut by the server's
// lifetime after took. It does not wrap err: the driver retries a
// callback whose error carries the TransientTransactionError label, and
// the same work would run as long and be cut again.
func lifetimeError(took time.Duration, err error) *Error {
	return &Error{Code: CodeConflict, Entity: "transaction", Field: "lifetime", Err: ErrTransactionLifetime,
		Reason: fmt.Sprintf("the server aborted the transaction after %s, past its transaction lifetime limit (%v); nothing was written: "+
			"split the work into smaller units (for a publish, fewer artifacts per version), or raise the server's transactionLifetimeLimitSeconds "+
			"(the harmonia command's own embedded server: --txn-lifetime)", took.Round(time.Second), err)}
}
