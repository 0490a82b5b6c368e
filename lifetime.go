package harmonia

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

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
