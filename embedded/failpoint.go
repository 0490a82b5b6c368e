package embedded

import (
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// failPoint is mongod's failCommand fail point, which tests configure
// with the configureFailPoint command to make chosen commands fail,
// close the connection or wait.
type failPoint struct {
	mu      sync.Mutex
	on      bool
	times   int64 // commands left to fail; < 0: always
	entered int64 // commands it has acted on since the server started
	data    failData
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
}

// failAction is what the fail point does to one command.
type failAction struct {
	block             time.Duration
	closeConn         bool
	err               *cmdError
	writeConcernError bson.Raw
}

// configure answers configureFailPoint.
func (p *failPoint) configure(cmd *command) bsoncore.Document {
	if name, _ := cmd.doc.Index(0).Value().StringValueOK(); name != "failCommand" {
		return errorf(codeBadValue, "the embedded server has only the failCommand fail point, not %q", name).doc()
	}
	mode := cmd.lookup("mode")
	on, times := true, int64(-1)
	switch {
	case mode.Type == bsoncore.TypeString && mode.StringValue() == "alwaysOn":
	case mode.Type == bsoncore.TypeString && mode.StringValue() == "off":
		on = false
	case mode.Type == bsoncore.TypeEmbeddedDocument:
		n, ok := mode.Document().Lookup("times").AsInt64OK()
		if !ok || n < 0 {
			return errorf(codeBadValue, "configureFailPoint: mode must be alwaysOn, off or {times: n}").doc()
		}
		times = n
	default:
		return errorf(codeBadValue, "configureFailPoint: mode must be alwaysOn, off or {times: n}").doc()
	}
	var data failData
	if d, ok := cmd.lookup("data").DocumentOK(); ok {
		if err := bson.Unmarshal(d, &data); err != nil {
			return errorf(codeBadValue, "configureFailPoint: data: %v", err).doc()
		}
	} else if on {
		return errorf(codeBadValue, "configureFailPoint: failCommand needs data").doc()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	count := p.entered
	p.on, p.times, p.data = on && times != 0, times, data
	return okDoc(bson.E{Key: "count", Value: count})
}

// match returns what the fail point does to command name from a client
// that named itself appName, and counts it, or nil.
func (p *failPoint) match(name, appName string) *failAction {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on || !slices.Contains(p.data.FailCommands, name) {
		return nil
	}
	if p.data.AppName != "" && p.data.AppName != appName {
		return nil
	}
	p.entered++
	if p.times > 0 {
		p.times--
		if p.times == 0 {
			p.on = false
		}
	}
	a := &failAction{closeConn: p.data.CloseConnection, writeConcernError: p.data.WriteConcernError}
	if p.data.BlockConnection {
		a.block = time.Duration(p.data.BlockTimeMS) * time.Millisecond
	}
	if p.data.ErrorCode != nil {
		a.err = errorf(*p.data.ErrorCode, "Failing command %s via 'failCommand' failpoint", name)
		a.err.labels = slices.Clone(p.data.ErrorLabels)
	}
	return a
}
