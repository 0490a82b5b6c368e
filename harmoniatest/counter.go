package harmoniatest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ignoredCommands are the driver's handshake, authentication, monitoring
// and session housekeeping, which a CommandCounter leaves out (lower case).
var ignoredCommands = map[string]bool{
	"hello":        true,
	"ismaster":     true,
	"ping":         true,
	"endsessions":  true,
	"saslstart":    true,
	"saslcontinue": true,
	"authenticate": true,
	"getnonce":     true,
}

// CommandCounter counts the commands a client sends, by command name
// ("insert", "find", "findAndModify", ...), leaving out the driver's own
// traffic: hello, isMaster, ping, endSessions and authentication. It is
// safe for concurrent use; the zero value is ready to use. Attach it to a
// client with [options.ClientOptions.SetMonitor] and [CommandCounter.Monitor],
// or get a counted database from [CountingDatabase].
type CommandCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Monitor returns a command monitor that counts into c.
func (c *CommandCounter) Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if ignoredCommands[strings.ToLower(e.CommandName)] {
				return
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.counts == nil {
				c.counts = make(map[string]int)
			}
			c.counts[e.CommandName]++
		},
	}
}

// Total returns the number of commands counted.
func (c *CommandCounter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// Count returns the number of commands named name counted, with the
// spelling the driver uses ("findAndModify").
func (c *CommandCounter) Count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name]
}

// Counts returns the counts by command name, as a new map.
func (c *CommandCounter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Names returns the names of the commands counted, sorted.
func (c *CommandCounter) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.counts))
}

// Reset sets every count to zero.
func (c *CommandCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.counts)
}

// CountingDatabase returns a new database on the shared server, like
// [Database], through a client of its own that reports every command to
// the returned counter. The database is dropped and the client
// disconnected when the test ends.
func CountingDatabase(t testing.TB) (*mongo.Database, *CommandCounter) {
	t.Helper()
	srv := sharedServer(t)
	counter := &CommandCounter{}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.lane.URI).SetMonitor(counter.Monitor()))
	if err != nil {
		t.Fatalf("harmoniatest: connect: %v", err)
	}
	t.Cleanup(func() {
		if err := client.Disconnect(context.Background()); err != nil {
			t.Errorf("harmoniatest: disconnect: %v", err)
		}
	})
	return freshDatabase(t, client), counter
}
