package embedded

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// retryRecord is the reply to a session's latest retryable write, as
// mongod's config.transactions keeps it: a retry with the same txnNumber
// gets it again instead of writing again.
type retryRecord struct {
	number int64
	reply  bsoncore.Document
}

// retryableCommands are the writes a driver retries (with lsid and
// txnNumber, without autocommit).
var retryableCommands = map[string]bool{"insert": true, "update": true, "delete": true, "findAndModify": true}

// isRetryableWrite reports whether cmd is a retryable write the front
// records: one of retryableCommands carrying lsid and txnNumber outside a
// transaction, on the replica-set mode (mongod refuses txnNumber on a
// standalone server, and drivers send none there).
func (f *front) isRetryableWrite(cmd *command, tf txnFields) bool {
	return f.cfg.replSet != "" && retryableCommands[cmd.name] && tf.lsid != nil && tf.hasNumber &&
		cmd.lookup("autocommit").Type == 0
}

// retryableWrite runs the retryable write cmd at most once per txnNumber:
//   - a txnNumber below the session's latest is refused with
//     TransactionTooOld (225);
//   - the session's latest txnNumber, recorded, answers the recorded
//     reply without writing;
//   - a new txnNumber aborts the session's transaction in progress, if
//     any, runs the write and records its reply.
//
// The check, the write and the record happen under the command lock, so
// two attempts of one write never both apply. The onPrimaryTransactionalWrite
// fail point acts here, between the write and its commit.
func (c *clientConn) retryableWrite(cmd *command, tf txnFields) (result, error) {
	f := c.f
	if err := f.acquire(resourceOf(cmd), nil); err != nil {
		return result{}, err
	}
	defer f.cmd.Unlock()
	s := f.sessionFor(sessionKey(tf.lsid))
	switch {
	case tf.number < s.txnNumber:
		return result{doc: errorf(codeTransactionTooOld, "txnNumber %d is less than last txnNumber %d seen in session", tf.number, s.txnNumber).doc()}, nil
	case tf.number == s.txnNumber && s.retry != nil && s.retry.number == tf.number:
		return result{doc: s.retry.reply}, nil
	case tf.number == s.txnNumber && s.txn != nil && s.txn.number == tf.number:
		return result{doc: errorf(codeIncompleteTxnHistory,
			"Cannot run a retryable write with txnNumber %d: a transaction with that number ran on this session", tf.number).doc()}, nil
	case tf.number > s.txnNumber:
		if s.txn != nil && s.txn.state == txnActive {
			f.abortLocked(s.txn, "a newer txnNumber arrived on its session")
		}
		s.txnNumber, s.retry = tf.number, nil
	}

	fault := f.writeFail.match()
	if fault != nil && fault.failCode != nil {
		if fault.closeConn {
			return result{}, errCloseByFailPoint
		}
		return result{doc: errorf(*fault.failCode,
			"Failing write for %v:%d due to failpoint. The write must not be reflected.", bson.Raw(tf.lsid), tf.number).doc()}, nil
	}
	res, err := f.apply(c.be, cmd, nil)
	if err != nil {
		return result{}, err
	}
	rep, err := res.body()
	if err != nil {
		return result{}, err
	}
	if replyOK(rep) {
		s.retry = &retryRecord{number: tf.number, reply: rep}
	}
	if fault != nil && fault.closeConn {
		return result{}, errCloseByFailPoint
	}
	return res, nil
}

// sessionFor returns the session of key, new if the front knows none,
// and marks it used. The caller holds f.cmd.
func (f *front) sessionFor(key string) *session {
	s := f.sessions[key]
	if s == nil {
		s = &session{key: key, txnNumber: -1}
		f.sessions[key] = s
		f.pruneSessions()
	}
	s.lastUse = time.Now()
	return s
}

// killSessions answers killSessions (the sessions it lists) and
// killAllSessions (every session: the server has no users, so every
// pattern matches all): each one's transaction in progress is aborted,
// and later commands of it get NoSuchTransaction. The sessions' retryable
// write records stay, as mongod's config.transactions does.
func (f *front) killSessions(cmd *command) bsoncore.Document {
	arr, _ := cmd.lookup(cmd.name).ArrayOK()
	vals, _ := arr.Values()
	f.cmd.Lock()
	defer f.cmd.Unlock()
	kill := func(s *session) {
		if s.txn != nil && s.txn.state == txnActive {
			f.abortLocked(s.txn, "its session was killed")
		}
	}
	if cmd.name == "killAllSessions" {
		for _, s := range f.sessions {
			kill(s)
		}
		return okDoc()
	}
	for _, v := range vals {
		if lsid, ok := v.DocumentOK(); ok {
			if s := f.sessions[sessionKey(lsid)]; s != nil {
				kill(s)
			}
		}
	}
	return okDoc()
}
