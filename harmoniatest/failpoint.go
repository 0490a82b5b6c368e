package harmoniatest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// failPointMu lets one test of the process at a time own the server's
// failCommand fail point: the server keeps one, whatever the client.
var failPointMu sync.Mutex

// FailPointDatabase returns a fresh database on a client of its own,
// named after the test, whose commands counter counts, and a function
// that sets the failCommand fail point (mode and data as the server's
// configureFailPoint takes them; data nil to switch it "off") for that
// client alone (the server's appName filter), so that parallel tests are
// not hit. The test owns the fail point until it ends, when it is
// switched off.
func FailPointDatabase(t testing.TB) (db *mongo.Database, set func(mode any, data bson.D), counter *CommandCounter) {
	t.Helper()
	failPointMu.Lock()
	t.Cleanup(failPointMu.Unlock)
	lane := CurrentLane(t)
	app := fmt.Sprintf("fp-%s", bson.NewObjectID().Hex())
	counter = &CommandCounter{}
	client, err := mongo.Connect(options.Client().ApplyURI(lane.URI).SetAppName(app).SetMonitor(counter.Monitor()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	db = client.Database(Database(t).Name())
	set = func(mode any, data bson.D) {
		t.Helper()
		cmd := bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: mode}}
		if data != nil {
			cmd = append(cmd, bson.E{Key: "data", Value: append(data, bson.E{Key: "appName", Value: app})})
		}
		require.NoError(t, client.Database("admin").RunCommand(context.Background(), cmd).Err())
	}
	t.Cleanup(func() { set("off", nil) })
	return db, set, counter
}
