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
	"sync"
	"time"
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
type front struct {
	ln   net.Listener
	dial func() (net.Conn, error)
	log  *slog.Logger

	cmd sync.Mutex // one command in flight in the backend

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	wg sync.WaitGroup
}

// newFront serves ln until close, connecting each accepted client to a new
// backend connection from dial.
func newFront(ln net.Listener, dial func() (net.Conn, error), log *slog.Logger) *front {
	f := &front{
		ln:    ln,
		dial:  dial,
		log:   log,
		conns: make(map[net.Conn]struct{}),
	}
	f.wg.Add(1)
	go f.accept()
	return f
}

// close stops accepting, closes every client and backend connection and
// waits for all of the front's goroutines to return.
func (f *front) close() {
	f.mu.Lock()
	f.closed = true
	_ = f.ln.Close()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
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

func (f *front) serveConn(client net.Conn) {
	defer f.wg.Done()
	if !f.track(client) {
		return
	}
	defer f.release(client)

	backend, err := f.dial()
	if err != nil {
		f.log.Warn("embedded: cannot reach the backend", "err", err)
		return
	}
	if !f.track(backend) {
		return
	}
	defer f.release(backend)

	err = f.relay(client, backend)
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		f.log.Debug("embedded: connection closed", "remote", client.RemoteAddr().String(), "err", err)
	}
}

// relay forwards commands from client to backend, one at a time, until
// either side fails or goes away. It lowers the maxWriteBatchSize of hello
// replies to maxWriteBatch (see there why).
func (f *front) relay(client, backend net.Conn) error {
	cr := bufio.NewReader(client)
	br := bufio.NewReader(backend)
	for {
		req, err := readMessage(cr)
		if err != nil {
			return err
		}
		hello := isHello(req)
		replies, err := f.roundTrip(backend, br, req, !hello)
		if err != nil {
			return fmt.Errorf("backend: %w", err)
		}
		if len(replies) == 0 {
			continue
		}
		if hello {
			for i, rep := range replies {
				replies[i] = capHelloReply(rep)
			}
		}
		bufs := net.Buffers(replies)
		if _, err := bufs.WriteTo(client); err != nil {
			return fmt.Errorf("client: %w", err)
		}
	}
}

// roundTrip sends one request to the backend and reads all of its replies,
// holding cmd throughout when serialize is set. Handshakes and heartbeats
// (hello, isMaster) touch no data and skip the lock: a driver whose
// heartbeat waited behind a long command (an updateMany of thousands of
// documents takes seconds here) would declare the server down and close
// every connection, the long command's included. It returns the replies the client expects: none
// for an OP_MSG request with moreToCome, otherwise the reply and any
// replies that follow it while moreToCome is set on them.
//
// FerretDB v1 answers every request, moreToCome or not, and a stray answer
// would be taken for the reply to the connection's next command. So the
// front clears moreToCome on the way in, waits for the backend's reply
// while still holding cmd (which also keeps an unacknowledged write from
// overlapping the next command) and drops that reply.
func (f *front) roundTrip(backend io.Writer, br *bufio.Reader, req []byte, serialize bool) ([][]byte, error) {
	noReply := isMsg(req) && msgFlags(req)&flagMoreToCome != 0
	if noReply {
		clearMoreToCome(req)
	}

	if serialize {
		f.cmd.Lock()
		defer f.cmd.Unlock()
	}

	if _, err := backend.Write(req); err != nil {
		return nil, err
	}
	var replies [][]byte
	for {
		rep, err := readMessage(br)
		if err != nil {
			return nil, err
		}
		replies = append(replies, rep)
		if !isMsg(rep) || msgFlags(rep)&flagMoreToCome == 0 {
			break
		}
	}
	if noReply {
		return nil, nil
	}
	return replies, nil
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
