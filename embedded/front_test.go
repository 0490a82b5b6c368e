package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func appendUint32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

func header(length, requestID, responseTo, opCode int32) []byte {
	b := make([]byte, 0, headerLen)
	for _, v := range []int32{length, requestID, responseTo, opCode} {
		b = appendUint32(b, uint32(v))
	}
	return b
}

// msg builds an OP_MSG carrying payload after its flagBits; the front
// never looks further than the flags.
func msg(requestID, responseTo int32, flags uint32, payload string) []byte {
	m := header(int32(headerLen+4+len(payload)), requestID, responseTo, opCodeMsg)
	m = appendUint32(m, flags)
	return append(m, payload...)
}

// backends hands the test the far end of every backend connection the
// front dials.
type backends struct {
	t     *testing.T
	conns chan net.Conn
	fail  atomic.Bool
}

func (b *backends) dial() (net.Conn, error) {
	if b.fail.Load() {
		return nil, errors.New("backend down")
	}
	near, far := net.Pipe()
	b.t.Cleanup(func() { _ = far.Close() })
	b.conns <- far
	return near, nil
}

// next returns the backend end of the next client connection.
func (b *backends) next() net.Conn {
	b.t.Helper()
	select {
	case c := <-b.conns:
		return c
	case <-time.After(10 * time.Second):
		b.t.Fatal("the front dialed no backend")
		return nil
	}
}

func startFront(t *testing.T) (*front, *backends) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &backends{t: t, conns: make(chan net.Conn, 64)}
	f := newFront(ln, b.dial, slog.New(slog.DiscardHandler), frontConfig{}, nil)
	t.Cleanup(f.close)
	return f, b
}

func dialFront(t *testing.T, f *front) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.ln.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(10*time.Second)))
	_, err := c.Write(b)
	require.NoError(t, err)
}

func read(t *testing.T, c net.Conn) []byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	m, err := readMessage(c)
	require.NoError(t, err)
	return m
}

// requireEOF checks that c is closed by its peer with nothing left to read.
func requireEOF(t *testing.T, c net.Conn) {
	t.Helper()
	// A pipe whose far end is closed refuses deadlines but reads EOF at once.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := io.ReadAll(c)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection not closed")
	require.Empty(t, data)
}

// requireUnlocked checks that no command holds the front's lock.
func requireUnlocked(t *testing.T, f *front) {
	t.Helper()
	require.True(t, f.cmd.TryLock(), "the command lock is still held")
	f.cmd.Unlock()
}

// requireRoundTrip sends one command from a new client and answers it.
func requireRoundTrip(t *testing.T, f *front, b *backends) {
	t.Helper()
	c := dialFront(t, f)
	req := msg(100, 0, 0, "probe")
	write(t, c, req)
	be := b.next()
	require.Equal(t, req, read(t, be))
	rep := msg(101, 100, 0, "probe reply")
	write(t, be, rep)
	require.Equal(t, rep, read(t, c))
}

func TestReadMessage(t *testing.T) {
	whole := msg(1, 0, 0, "payload")
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"whole":          {append(whole[:len(whole):len(whole)], "next message"...), nil},
		"empty":          {nil, io.EOF},
		"short header":   {whole[:10], io.ErrUnexpectedEOF},
		"short body":     {whole[:len(whole)-1], io.ErrUnexpectedEOF},
		"length 15":      {header(15, 1, 0, opCodeMsg), errBadLength},
		"negative":       {header(-1, 1, 0, opCodeMsg), errBadLength},
		"over the limit": {header(maxMessageLen+1, 1, 0, opCodeMsg), errBadLength},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := readMessage(bytes.NewReader(tc.in))
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, whole, m)
		})
	}
}

func TestFrontRoundTrip(t *testing.T) {
	f, b := startFront(t)
	c := dialFront(t, f)
	be := b.next()
	for i := range int32(3) {
		req := msg(10+i, 0, 0, fmt.Sprint("request ", i))
		write(t, c, req)
		require.Equal(t, req, read(t, be))
		rep := msg(20+i, 10+i, 0, fmt.Sprint("reply ", i))
		write(t, be, rep)
		require.Equal(t, rep, read(t, c))
	}
	// A legacy OP_QUERY (the handshake of old drivers) gets one reply.
	query := append(header(headerLen+4, 30, 0, 2004), 0, 0, 0, 0)
	write(t, c, query)
	require.Equal(t, query, read(t, be))
	reply := append(header(headerLen+4, 31, 30, 1), 0, 0, 0, 0)
	write(t, be, reply)
	require.Equal(t, reply, read(t, c))
}

func TestFrontBadLength(t *testing.T) {
	f, b := startFront(t)
	for _, length := range []int32{5, 15, -1, maxMessageLen + 1, 100_000_000} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			c := dialFront(t, f)
			be := b.next()
			write(t, c, header(length, 1, 0, opCodeMsg))
			requireEOF(t, c)
			requireEOF(t, be) // nothing reached the backend
			requireUnlocked(t, f)
		})
	}
	requireRoundTrip(t, f, b)
}

func TestFrontClientDisconnectsMidMessage(t *testing.T) {
	f, b := startFront(t)
	c := dialFront(t, f)
	be := b.next()
	req := msg(1, 0, 0, "a request cut in half")
	write(t, c, req[:len(req)/2])
	requireRoundTrip(t, f, b) // the half message holds nothing up
	require.NoError(t, c.Close())
	requireEOF(t, be)
	requireUnlocked(t, f)
	requireRoundTrip(t, f, b)
}

func TestFrontBackendDiesMidReply(t *testing.T) {
	f, b := startFront(t)
	c := dialFront(t, f)
	be := b.next()
	req := msg(1, 0, 0, "request")
	write(t, c, req)
	require.Equal(t, req, read(t, be))
	rep := msg(2, 1, 0, "a reply cut in half")
	write(t, be, rep[:len(rep)/2])
	require.NoError(t, be.Close())
	requireEOF(t, c) // no partial reply reaches the client
	requireUnlocked(t, f)
	requireRoundTrip(t, f, b)
}

func TestFrontClientGoneBeforeReply(t *testing.T) {
	f, b := startFront(t)
	c := dialFront(t, f)
	be := b.next()
	req := msg(1, 0, 0, "request")
	write(t, c, req)
	require.NoError(t, c.Close())
	require.Equal(t, req, read(t, be))
	write(t, be, msg(2, 1, 0, "reply nobody reads"))
	requireEOF(t, be)
	requireUnlocked(t, f)
	requireRoundTrip(t, f, b)
}

func TestFrontBackendUnreachable(t *testing.T) {
	f, b := startFront(t)
	b.fail.Store(true)
	c := dialFront(t, f)
	requireEOF(t, c)
	b.fail.Store(false)
	requireRoundTrip(t, f, b)
}

// A request with moreToCome expects no reply. FerretDB replies anyway, so
// the front waits for that reply under the lock and drops it.
func TestFrontMoreToComeRequest(t *testing.T) {
	f, b := startFront(t)
	c := dialFront(t, f)
	be := b.next()

	req := msg(1, 0, flagMoreToCome, "unacknowledged write")
	write(t, c, req)
	got := read(t, be)
	require.Equal(t, msg(1, 0, 0, "unacknowledged write"), got, "moreToCome is cleared towards the backend")
	require.False(t, f.cmd.TryLock(), "the lock is released before the backend answered")
	write(t, be, msg(2, 1, 0, "answer the client must not see"))

	req = msg(3, 0, 0, "next command")
	write(t, c, req)
	require.Equal(t, req, read(t, be))
	rep := msg(4, 3, 0, "its reply")
	write(t, be, rep)
	require.Equal(t, rep, read(t, c))
}

func TestFrontMoreToComeRequestWithChecksum(t *testing.T) {
	f, b := startFront(t)
	c := dialFront(t, f)
	be := b.next()

	req := msg(1, 0, flagMoreToCome|flagChecksumPresent, "body....")
	req = appendUint32(req, 0)
	binary.LittleEndian.PutUint32(req, uint32(len(req)))
	write(t, c, req)
	got := read(t, be)
	assert.Equal(t, uint32(flagChecksumPresent), msgFlags(got))
	sum := crc32.Checksum(got[:len(got)-4], crc32.MakeTable(crc32.Castagnoli))
	assert.Equal(t, sum, binary.LittleEndian.Uint32(got[len(got)-4:]), "checksum")
	write(t, be, msg(2, 1, 0, "dropped"))
	requireRoundTripOn(t, c, be)
}

// requireRoundTripOn sends one command on an existing client connection.
func requireRoundTripOn(t *testing.T, c, be net.Conn) {
	t.Helper()
	req := msg(50, 0, 0, "probe")
	write(t, c, req)
	require.Equal(t, req, read(t, be))
	rep := msg(51, 50, 0, "probe reply")
	write(t, be, rep)
	require.Equal(t, rep, read(t, c))
}

// Replies with moreToCome are followed by more replies; the command holds
// the lock until the last one.
func TestFrontMoreToComeReply(t *testing.T) {
	f, b := startFront(t)
	c := dialFront(t, f)
	be := b.next()

	req := msg(1, 0, 1<<16, "exhaustAllowed request")
	write(t, c, req)
	require.Equal(t, req, read(t, be))
	replies := [][]byte{
		msg(2, 1, flagMoreToCome, "first"),
		msg(3, 2, flagMoreToCome, "second"),
		msg(4, 3, 0, "last"),
	}
	for _, rep := range replies[:2] {
		write(t, be, rep)
	}
	require.False(t, f.cmd.TryLock(), "the lock is released before the last reply")
	write(t, be, replies[2])
	for _, rep := range replies {
		require.Equal(t, rep, read(t, c))
	}
	requireUnlocked(t, f)
	requireRoundTripOn(t, c, be)
}

// Many clients at once: the backends never see two commands in flight.
func TestFrontSerializes(t *testing.T) {
	f, b := startFront(t)
	const clients, each = 8, 50
	var inFlight, maxInFlight atomic.Int32

	var wg sync.WaitGroup
	for range clients {
		c := dialFront(t, f)
		be := b.next()
		wg.Go(func() { // backend
			for {
				req, err := readMessage(be)
				if err != nil {
					return
				}
				n := inFlight.Add(1)
				for {
					m := maxInFlight.Load()
					if n <= m || maxInFlight.CompareAndSwap(m, n) {
						break
					}
				}
				for range 10 {
					runtime.Gosched()
				}
				inFlight.Add(-1)
				id := int32(binary.LittleEndian.Uint32(req[4:8]))
				if _, err := be.Write(msg(id+1, id, 0, "reply")); err != nil {
					return
				}
			}
		})
		wg.Go(func() { // client
			defer c.Close()
			for i := range int32(each) {
				if _, err := c.Write(msg(2*i, 0, 0, "request")); err != nil {
					t.Error(err)
					return
				}
				rep, err := readMessage(c)
				if err != nil {
					t.Error(err)
					return
				}
				if got := int32(binary.LittleEndian.Uint32(rep[8:12])); got != 2*i {
					t.Errorf("reply to %d, want %d", got, 2*i)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d clients x %d commands: at most %d in flight in the backends", clients, each, maxInFlight.Load())
	assert.EqualValues(t, 1, maxInFlight.Load())
}

func TestFrontCloseUnblocks(t *testing.T) {
	f, b := startFront(t)
	idle := dialFront(t, f)
	b.next()
	busy := dialFront(t, f)
	be := b.next()
	req := msg(1, 0, 0, "never answered")
	write(t, busy, req)
	require.Equal(t, req, read(t, be)) // the command now holds the lock

	f.close() // returns only once every goroutine of the front has
	requireEOF(t, idle)
	requireEOF(t, busy)
	_, err := net.DialTimeout("tcp", f.ln.Addr().String(), time.Second)
	require.Error(t, err)
	requireUnlocked(t, f)
}

// close waits for a connection that is still dialing its backend, and the
// front closes the backend connection that dial then returns.
func TestFrontCloseWaitsForConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dialing, release := make(chan struct{}), make(chan struct{})
	near, far := net.Pipe()
	t.Cleanup(func() { _ = far.Close() })
	f := newFront(ln, func() (net.Conn, error) {
		close(dialing)
		<-release
		return near, nil
	}, slog.New(slog.DiscardHandler), frontConfig{}, nil)

	c := dialFront(t, f)
	<-dialing
	closed := make(chan struct{})
	go func() {
		f.close()
		close(closed)
	}()
	requireEOF(t, c) // close has begun
	select {
	case <-closed:
		t.Fatal("close returned while a connection was still dialing")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-closed
	requireEOF(t, far)
}

// TestFrontHelloSkipsTheLock checks that a heartbeat is answered while a
// long command holds the lock: a driver whose heartbeat waited would
// declare the server down and drop every connection.
func TestFrontHelloSkipsTheLock(t *testing.T) {
	f, b := startFront(t)
	slow := dialFront(t, f)
	slowReq := msg(1, 0, 0, "long updateMany")
	write(t, slow, slowReq)
	slowBE := b.next()
	require.Equal(t, slowReq, read(t, slowBE)) // the backend holds it unanswered
	require.False(t, f.cmd.TryLock(), "the long command holds the lock")

	mon := dialFront(t, f)
	hello := opMsgSections(7, 0, 0, bodySection(marshal(t, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})))
	write(t, mon, hello)
	monBE := b.next()
	require.Equal(t, hello, read(t, monBE))
	rep := opMsgSections(8, 7, 0, bodySection(marshal(t, cappedReply())))
	write(t, monBE, rep)
	require.Equal(t, rep, read(t, mon), "hello answered while the lock is held")

	other := dialFront(t, f)
	write(t, other, msg(20, 0, 0, "find"))
	otherBE := b.next()
	require.NoError(t, otherBE.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err := readMessage(otherBE)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "an ordinary command waits for the lock")

	write(t, slowBE, msg(2, 1, 0, "done"))
	read(t, slow)
	require.NoError(t, otherBE.SetReadDeadline(time.Now().Add(10*time.Second)))
	require.Equal(t, msg(20, 0, 0, "find"), read(t, otherBE), "the waiting command goes through once the lock is free")
}
