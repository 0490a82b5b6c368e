package embedded

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Wire protocol facts the front relies on.
const (
	headerLen = 16 // messageLength, requestID, responseTo, opCode: int32 little-endian each

	// maxMessageLen is MongoDB's maxMessageSizeBytes; FerretDB uses the same limit.
	maxMessageLen = 48_000_000

	opCodeMsg = 2013

	flagChecksumPresent = 1 << 0
	flagMoreToCome      = 1 << 1
)

// castagnoli is the CRC-32C table of OP_MSG checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadLength reports a message header whose length is outside [headerLen, maxMessageLen].
var errBadLength = errors.New("message length out of range")

// front is the serializing proxy in front of FerretDB.
//
// Each client connection gets its own backend connection. A command holds
// cmd from the moment its request is written to the backend until its last
// reply has been read back into memory, so exactly one command is in flight
// in the backend at any time. FerretDB v1 is not atomic under concurrent
// writes; one command at a time makes every single command atomic.
//
// A request is read in full before cmd is taken, and replies are written to
// the client after cmd is released, so a slow or vanished client never holds
// up the others.
//
// The front also adds what FerretDB lacks (see the package documentation):
// the replica-set mode's hello and transactions (txn.go), validators
// (validators.go, write.go) and the failCommand fail point (failpoint.go).
type front struct {
	ln   net.Listener
	dial func() (net.Conn, error)
	log  *slog.Logger
	cfg  frontConfig

	// cmd is held while a command runs in the backend; it also guards
	// internal, sessions and active.
	cmd      sync.Mutex
	internal *backend            // the front's own backend connection, dialed on first use
	sessions map[string]*session // by sessionKey
	active   map[*txn]struct{}   // transactions in progress

	validators *validatorStore
	fail       failPoint
	writeFail  writeFailPoint
	clock      *clusterClock
	ids        *idIndexer // see idindex.go

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	closing chan struct{} // closed by close

	wg sync.WaitGroup
}

// frontConfig is what the front needs of the server's Options.
type frontConfig struct {
	replSet     string // replica set name; "" for a standalone server
	host        string // host:port clients reach the front at
	txnLifetime time.Duration
	txnWait     time.Duration
	electionID  bson.ObjectID
	now         func() time.Time // the clock $$NOW reads
	journal     *journal         // the transactions' undo journal; nil: none (see journal.go)
	dataDir     string           // FerretDB's data directory, for idindex.go
}

// errFrontClosed is returned to a command that waited while the front closed.
var errFrontClosed = errors.New("embedded: server closed")

// newFront serves ln until close, connecting each accepted client to a new
// backend connection from dial.
func newFront(ln net.Listener, dial func() (net.Conn, error), log *slog.Logger, cfg frontConfig, validators *validatorStore) *front {
	if cfg.txnLifetime <= 0 {
		cfg.txnLifetime = TransactionLifetimeDefault
	}
	if cfg.txnWait <= 0 {
		cfg.txnWait = TransactionWaitDefault
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if validators == nil {
		validators = &validatorStore{byNS: map[resource]*collValidator{}}
	}
	f := &front{
		ln:         ln,
		dial:       dial,
		log:        log,
		cfg:        cfg,
		sessions:   map[string]*session{},
		active:     map[*txn]struct{}{},
		validators: validators,
		clock:      newClusterClock(cfg.now),
		ids:        newIDIndexer(cfg.dataDir),
		conns:      make(map[net.Conn]struct{}),
		closing:    make(chan struct{}),
	}
	f.wg.Add(1)
	go f.accept()
	return f
}

// close stops accepting, closes every client and backend connection and
// waits for all of the front's goroutines to return.
func (f *front) close() {
	f.mu.Lock()
	if !f.closed {
		close(f.closing)
	}
	f.closed = true
	_ = f.ln.Close()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	f.cmd.Lock()
	f.abortOnClose()
	for t := range f.active {
		t.timer.Stop()
	}
	f.dropInternal()
	if f.cfg.journal != nil {
		_ = f.cfg.journal.close()
	}
	f.cmd.Unlock()
}

func (f *front) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if f.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little instead of spinning.
			f.log.Warn("embedded: accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		f.wg.Add(1)
		go f.serveConn(c)
	}
}

func (f *front) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// track registers c so that close can interrupt it. It reports false, and
// closes c, when the front is already closed.
func (f *front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		_ = c.Close()
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *front) release(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	_ = c.Close()
}

// internalBackend returns the front's own backend connection, dialing it
// first if needed. The caller holds f.cmd.
func (f *front) internalBackend() (*backend, error) {
	if f.internal != nil {
		return f.internal, nil
	}
	c, err := f.dial()
	if err != nil {
		return nil, err
	}
	if !f.track(c) {
		return nil, errFrontClosed
	}
	f.internal = newBackend(c)
	return f.internal, nil
}

// dropInternal closes the front's own backend connection after an error,
// so that the next use dials a fresh one. The caller holds f.cmd.
func (f *front) dropInternal() {
	if f.internal != nil {
		f.release(f.internal.conn)
		f.internal = nil
	}
}

func (f *front) serveConn(client net.Conn) {
	defer f.wg.Done()
	if !f.track(client) {
		return
	}
	defer f.release(client)

	bc, err := f.dial()
	if err != nil {
		f.log.Warn("embedded: cannot reach the backend", "err", err)
		return
	}
	if !f.track(bc) {
		return
	}
	defer f.release(bc)

	c := &clientConn{f: f, be: newBackend(bc)}
	err = c.relay(client)
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, errCloseByFailPoint):
	default:
		f.log.Debug("embedded: connection closed", "remote", client.RemoteAddr().String(), "err", err)
	}
}

// clientConn is the front's side of one client connection.
type clientConn struct {
	f       *front
	be      *backend
	appName string // from the client's handshake, for the fail point's appName
}

// errCloseByFailPoint closes a connection on the fail point's closeConnection.
var errCloseByFailPoint = errors.New("closed by the failCommand fail point")

// relay answers the client's commands, one at a time, until either side
// fails or goes away.
func (c *clientConn) relay(client net.Conn) error {
	cr := bufio.NewReader(client)
	for {
		req, err := readMessage(cr)
		if err != nil {
			return err
		}
		replies, err := c.handle(req)
		if err != nil {
			return err
		}
		if len(replies) == 0 {
			continue
		}
		bufs := net.Buffers(replies)
		if _, err := bufs.WriteTo(client); err != nil {
			return fmt.Errorf("client: %w", err)
		}
	}
}

// handle answers one request. It returns the replies the client expects:
// none for an OP_MSG request with moreToCome, otherwise the reply and any
// replies that follow it while moreToCome is set on them.
//
// FerretDB v1 answers every request, moreToCome or not, and a stray answer
// would be taken for the reply to the connection's next command. So the
// front clears moreToCome on the way in, waits for the backend's reply
// while still holding cmd (which also keeps an unacknowledged write from
// overlapping the next command) and drops that reply.
func (c *clientConn) handle(req []byte) ([][]byte, error) {
	noReply := isMsg(req) && msgFlags(req)&flagMoreToCome != 0
	if noReply {
		clearMoreToCome(req)
	}
	replies, err := c.dispatch(req)
	if err != nil || noReply {
		return nil, err
	}
	return replies, nil
}

// dispatch answers req: handshakes and heartbeats without the command
// lock, the commands the front implements itself, and every other command
// through the backend.
func (c *clientConn) dispatch(req []byte) ([][]byte, error) {
	f := c.f
	cmd, err := parseCommand(req)
	if err != nil {
		// Not a command the front takes apart (a legacy OP_QUERY, a
		// malformed message): FerretDB answers it.
		hello := isHello(req)
		if hello && opCode(req) == opCodeQuery {
			c.noteAppName(queryDocument(req))
		}
		replies, err := c.forward(req, !hello)
		if err == nil && hello {
			for i, rep := range replies {
				replies[i] = f.helloReply(rep)
			}
		}
		return replies, err
	}
	switch cmd.name {
	case "hello", "isMaster", "ismaster":
		c.noteAppName(cmd.doc)
		replies, err := c.forward(req, false)
		if err == nil {
			for i, rep := range replies {
				replies[i] = f.helloReply(rep)
			}
		}
		return replies, err
	case "configureFailPoint":
		return c.reply(cmd, f.configureFailPoint(cmd)), nil
	}

	tf := txnFieldsOf(cmd)
	inTxn := f.cfg.replSet != "" && tf.inTxn
	snapshotAt, cerr := f.checkReadConcern(cmd, inTxn)
	if cerr == nil {
		cerr = f.clock.checkGetMore(cmd)
	}
	if cerr == nil {
		cerr = f.rewriteNow(cmd)
	}
	if cerr != nil {
		if inTxn {
			f.failTxn(tf, "a command in it failed")
		}
		return c.finish(cmd, nil, result{doc: cerr.doc()}, snapshotAt)
	}
	act := f.fail.match(cmd.name, c.appName)
	if act != nil {
		if act.block > 0 {
			select {
			case <-time.After(act.block):
			case <-f.closing:
				return nil, errFrontClosed
			}
		}
		if act.closeConn {
			return nil, errCloseByFailPoint
		}
		if act.err != nil {
			// As on mongod, a command the fail point fails leaves its
			// transaction as it was, started if the command starts it.
			if inTxn && tf.start && tf.lsid != nil {
				f.cmd.Lock()
				_, _ = f.txnFor(sessionKey(tf.lsid), tf)
				f.cmd.Unlock()
			}
			return c.finish(cmd, act, result{doc: act.err.doc()}, snapshotAt)
		}
	}

	var res result
	switch {
	case cmd.name == "endSessions":
		res.doc = f.endSessions(cmd)
	case cmd.name == "killSessions" || cmd.name == "killAllSessions":
		res.doc = f.killSessions(cmd)
	case f.cfg.replSet != "" && (cmd.name == "commitTransaction" || cmd.name == "abortTransaction"):
		res.doc = f.commitOrAbort(cmd)
	case f.cfg.replSet != "" && strings.HasPrefix(cmd.name, "replSet"):
		res.doc = f.replSetCommand(cmd)
	case inTxn:
		res, err = f.txnCommand(c.be, cmd, tf)
	case f.isRetryableWrite(cmd, tf):
		res, err = c.retryableWrite(cmd, tf)
	default:
		if err = f.acquire(resourceOf(cmd), nil); err != nil {
			return nil, err
		}
		res, err = f.apply(c.be, cmd, nil)
		f.cmd.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	if writeCommands[cmd.name] {
		f.clock.wrote(writtenResources(cmd)...)
	}
	return c.finish(cmd, act, res, snapshotAt)
}

// finish completes the reply res to cmd as mongod would send it: with
// the fail point's writeConcernError and error labels (act, may be nil),
// the writeConcernError of a write concern the set cannot satisfy, a
// codeName for every code, the error labels mongod adds and, in the
// replica-set mode, the cluster time. A reply of several messages
// (exhaust) goes out as it came.
func (c *clientConn) finish(cmd *command, act *failAction, res result, snapshotAt bson.Timestamp) ([][]byte, error) {
	f := c.f
	if res.doc == nil && len(res.raw) != 1 {
		return res.raw, nil
	}
	orig, err := res.body()
	if err != nil {
		return nil, err
	}
	rep := orig
	if act != nil && act.writeConcernError != nil && replyOK(rep) {
		rep = editDoc(rep, nil, bson.D{{Key: "writeConcernError", Value: act.writeConcernError}})
	}
	if f.cfg.replSet != "" && replyOK(rep) {
		if wce := unsatisfiable(cmd); wce != nil {
			if _, err := rep.LookupErr("writeConcernError"); err != nil {
				rep = editDoc(rep, nil, bson.D{{Key: "writeConcernError", Value: wce}})
			}
		}
	}
	if !snapshotAt.IsZero() {
		f.clock.openedSnapshot(rep, resourceOf(cmd), snapshotAt)
	}
	f.clock.closedSnapshot(cmd, rep)
	rep = f.withDupKeyInfo(cmd, rep)
	if f.cfg.replSet != "" {
		// In the standalone mode, adding codeName to FerretDB's own
		// errors made a worker lose its lease in
		// TestLeaseHeldAgainstSlowServer (standalone lane, 3 of 3 runs;
		// not yet explained), so there only the front's own errors
		// carry one.
		rep = withCodeNames(rep)
	}
	if act != nil && act.hasLabels {
		if len(act.labels) > 0 {
			rep = editDoc(rep, nil, bson.D{{Key: "errorLabels", Value: act.labels}})
		}
	} else if _, err := rep.LookupErr("errorLabels"); err != nil {
		var code, wcCode int32
		if !replyOK(rep) {
			code, _ = rep.Lookup("code").AsInt32OK()
		}
		if wce, ok := rep.Lookup("writeConcernError").DocumentOK(); ok {
			wcCode, _ = wce.Lookup("code").AsInt32OK()
		}
		if labels := errorLabels(cmd, code, wcCode); len(labels) > 0 {
			rep = editDoc(rep, nil, bson.D{{Key: "errorLabels", Value: labels}})
		}
	}
	if f.cfg.replSet != "" {
		rep = f.withClusterTime(rep, snapshotAt)
	}
	if res.doc == nil && bytes.Equal(rep, orig) {
		return res.raw, nil
	}
	return c.reply(cmd, rep), nil
}

// noteAppName keeps the application name of a handshake, for the fail
// point's appName.
func (c *clientConn) noteAppName(hello bsoncore.Document) {
	if name, ok := hello.Lookup("client", "application", "name").StringValueOK(); ok {
		c.appName = name
	}
}

// reply encodes rep as the reply to cmd.
func (c *clientConn) reply(cmd *command, rep bsoncore.Document) [][]byte {
	return [][]byte{encodeMsg(rep, cmd.requestID)}
}

// forward sends req to the backend as it is and returns its replies,
// holding cmd throughout when serialize is set. Handshakes and heartbeats
// (hello, isMaster) touch no data and skip the lock: a driver whose
// heartbeat waited behind a long command (an updateMany of thousands of
// documents takes seconds here) would declare the server down and close
// every connection, the long command's included.
func (c *clientConn) forward(req []byte, serialize bool) ([][]byte, error) {
	if serialize {
		c.f.cmd.Lock()
		defer c.f.cmd.Unlock()
	}
	replies, err := c.be.send(req)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	return replies, nil
}

// failTxn aborts the transaction tf names, if it is in progress.
func (f *front) failTxn(tf txnFields, why string) {
	if tf.lsid == nil {
		return
	}
	f.cmd.Lock()
	defer f.cmd.Unlock()
	if s := f.sessions[sessionKey(tf.lsid)]; s != nil && s.txn != nil && s.txn.number == tf.number {
		f.abortLocked(s.txn, why)
	}
}

// readMessage reads one whole wire message: its header, then as many bytes
// as the header says. A length outside [headerLen, maxMessageLen] is an
// error wrapping errBadLength, and nothing past the header is read.
// Memory grows with the bytes actually received, not with the length the
// header claims.
func readMessage(r io.Reader) ([]byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(h[0:4]))
	if n < headerLen || n > maxMessageLen {
		return nil, fmt.Errorf("%w: %d", errBadLength, n)
	}
	var buf bytes.Buffer
	buf.Grow(min(int(n), 64<<10))
	buf.Write(h[:])
	if _, err := io.CopyN(&buf, r, int64(n)-headerLen); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// isMsg reports whether m is an OP_MSG long enough to carry flagBits.
func isMsg(m []byte) bool {
	return len(m) >= headerLen+4 && binary.LittleEndian.Uint32(m[12:16]) == opCodeMsg
}

func msgFlags(m []byte) uint32 {
	return binary.LittleEndian.Uint32(m[headerLen : headerLen+4])
}

// clearMoreToCome clears the moreToCome bit of an OP_MSG and, when the
// message carries a checksum, recomputes it (CRC-32C of everything before it).
func clearMoreToCome(m []byte) {
	flags := msgFlags(m) &^ flagMoreToCome
	binary.LittleEndian.PutUint32(m[headerLen:headerLen+4], flags)
	if flags&flagChecksumPresent != 0 && len(m) >= headerLen+8 {
		sum := crc32.Checksum(m[:len(m)-4], castagnoli)
		binary.LittleEndian.PutUint32(m[len(m)-4:], sum)
	}
}
