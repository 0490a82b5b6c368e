package embedded

import (
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// failMode is when a fail point acts, as mongod's configureFailPoint sets
// it: alwaysOn, off, {times: n} or {skip: n}.
type failMode struct {
	on      bool
	times   int64 // acts this many more times; < 0: no limit
	skip    int64 // lets this many pass first
	entered int64 // times it has acted since the server started
}

// parseFailMode reads configureFailPoint's mode.
func parseFailMode(mode bsoncore.Value) (failMode, *cmdError) {
	bad := errorf(codeBadValue, "configureFailPoint: mode must be alwaysOn, off, {times: n} or {skip: n}")
	switch {
	case mode.Type == bsoncore.TypeString && mode.StringValue() == "alwaysOn":
		return failMode{on: true, times: -1}, nil
	case mode.Type == bsoncore.TypeString && mode.StringValue() == "off":
		return failMode{}, nil
	case mode.Type == bsoncore.TypeEmbeddedDocument:
		d := mode.Document()
		if n, ok := d.Lookup("times").AsInt64OK(); ok && n >= 0 {
			return failMode{on: n > 0, times: n}, nil
		}
		if n, ok := d.Lookup("skip").AsInt64OK(); ok && n >= 0 {
			return failMode{on: true, times: -1, skip: n}, nil
		}
	}
	return failMode{}, bad
}

// fire reports whether the fail point acts on one more evaluation, and
// counts it.
func (m *failMode) fire() bool {
	if !m.on {
		return false
	}
	if m.skip > 0 {
		m.skip--
		return false
	}
	m.entered++
	if m.times > 0 {
		m.times--
		if m.times == 0 {
			m.on = false
		}
	}
	return true
}

// failPoint is mongod's failCommand fail point, which tests configure
// with the configureFailPoint command to make chosen commands fail,
// close the connection or wait.
type failPoint struct {
	mu   sync.Mutex
	mode failMode
	data failData
}

// failData is the data document of configureFailPoint, as mongod reads it.
type failData struct {
	FailCommands      []string `bson:"failCommands"`
	ErrorCode         *int32   `bson:"errorCode"`
	ErrorLabels       []string `bson:"errorLabels"`
	CloseConnection   bool     `bson:"closeConnection"`
	BlockConnection   bool     `bson:"blockConnection"`
	BlockTimeMS       int64    `bson:"blockTimeMS"`
	AppName           string   `bson:"appName"`
	WriteConcernError bson.Raw `bson:"writeConcernError"`
	// hasLabels: errorLabels was given (possibly empty), and replaces
	// the labels mongod would add.
	hasLabels bool
}

// failAction is what the fail point does to one command.
type failAction struct {
	block             time.Duration
	closeConn         bool
	err               *cmdError
	writeConcernError bson.Raw
	// labels, when hasLabels, replace the reply's error labels.
	labels    []string
	hasLabels bool
}

// configureFailPoint answers configureFailPoint for the fail points the
// front has: failCommand and onPrimaryTransactionalWrite.
func (f *front) configureFailPoint(cmd *command) bsoncore.Document {
	name, _ := cmd.doc.Index(0).Value().StringValueOK()
	mode, cerr := parseFailMode(cmd.lookup("mode"))
	if cerr != nil {
		return cerr.doc()
	}
	data, _ := cmd.lookup("data").DocumentOK()
	switch name {
	case "failCommand":
		return f.fail.configure(mode, data)
	case "onPrimaryTransactionalWrite":
		return f.writeFail.configure(mode, data)
	}
	return errorf(codeBadValue, "the embedded server has only the failCommand and onPrimaryTransactionalWrite fail points, not %q", name).doc()
}

// configure sets the failCommand fail point.
func (p *failPoint) configure(mode failMode, raw bsoncore.Document) bsoncore.Document {
	var data failData
	if raw != nil {
		if err := bson.Unmarshal(raw, &data); err != nil {
			return errorf(codeBadValue, "configureFailPoint: data: %v", err).doc()
		}
		_, err := raw.LookupErr("errorLabels")
		data.hasLabels = err == nil
	} else if mode.on {
		return errorf(codeBadValue, "configureFailPoint: failCommand needs data").doc()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	count := p.mode.entered
	mode.entered = count
	p.mode, p.data = mode, data
	return okDoc(bson.E{Key: "count", Value: count})
}

// match returns what the fail point does to command name from a client
// that named itself appName, and counts it, or nil.
func (p *failPoint) match(name, appName string) *failAction {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mode.on || !slices.Contains(p.data.FailCommands, name) {
		return nil
	}
	if p.data.AppName != "" && p.data.AppName != appName {
		return nil
	}
	if !p.mode.fire() {
		return nil
	}
	a := &failAction{
		closeConn:         p.data.CloseConnection,
		writeConcernError: p.data.WriteConcernError,
		labels:            slices.Clone(p.data.ErrorLabels),
		hasLabels:         p.data.hasLabels,
	}
	if p.data.BlockConnection {
		a.block = time.Duration(p.data.BlockTimeMS) * time.Millisecond
	}
	if p.data.ErrorCode != nil {
		a.err = errorf(*p.data.ErrorCode, "Failing command %s via 'failCommand' failpoint", name)
	}
	return a
}

// writeFailPoint is mongod's onPrimaryTransactionalWrite fail point: it
// acts on a retryable write once the write is done but before it is
// committed. closeConnection (true unless set false) closes the client's
// connection, so the reply is lost; failBeforeCommitExceptionCode fails
// the write with that code and the write is not applied.
type writeFailPoint struct {
	mu        sync.Mutex
	mode      failMode
	closeConn bool
	failCode  *int32
}

// configure sets the onPrimaryTransactionalWrite fail point.
func (p *writeFailPoint) configure(mode failMode, data bsoncore.Document) bsoncore.Document {
	closeConn := true
	if v, err := data.LookupErr("closeConnection"); err == nil {
		closeConn = truthy(v)
	}
	var failCode *int32
	if v, err := data.LookupErr("failBeforeCommitExceptionCode"); err == nil {
		n, ok := v.AsInt64OK()
		if !ok {
			return errorf(codeBadValue, "configureFailPoint: failBeforeCommitExceptionCode must be a number").doc()
		}
		c := int32(n)
		failCode = &c
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	count := p.mode.entered
	mode.entered = count
	p.mode, p.closeConn, p.failCode = mode, closeConn, failCode
	return okDoc(bson.E{Key: "count", Value: count})
}

// writeFault is what onPrimaryTransactionalWrite does to one write.
type writeFault struct {
	closeConn bool
	failCode  *int32
}

// match returns what the fail point does to the next retryable write, and
// counts it, or nil.
func (p *writeFailPoint) match() *writeFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mode.fire() {
		return nil
	}
	return &writeFault{closeConn: p.closeConn, failCode: p.failCode}
}
