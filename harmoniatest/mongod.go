package harmoniatest

// The mongod lane. No mongod binary can be had on the project's own
// machines; CI runs this code against a stand-in (internal/fakemongod)
// that takes mongod's flags and serves the embedded replica-set mode.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tryvium-travels/memongo/memongolog"
	"github.com/tryvium-travels/memongo/mongobin"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// replicaSetName is the name of the single-node replica set the lane starts.
const replicaSetName = "rs0"

// startMongod starts mongod as a single-node replica set in a temporary
// directory, initiates the set and waits for its primary. It returns the
// connection string and a function that stops mongod and removes the
// directory.
func startMongod(ctx context.Context, getenv func(string) string) (uri string, stop func() error, err error) {
	bin := getenv(EnvMongodBin)
	if bin == "" {
		if bin, err = downloadMongod(getenv); err != nil {
			return "", nil, err
		}
	}

	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "harmoniatest-mongod-")
	if err != nil {
		return "", nil, err
	}
	logPath := filepath.Join(dir, "mongod.log")
	cmd := exec.Command(bin,
		"--replSet", replicaSetName,
		"--port", strconv.Itoa(port),
		"--dbpath", dir,
		"--bind_ip", "127.0.0.1",
		"--logpath", logPath,
	)
	if err := cmd.Start(); err != nil {
		return "", nil, errors.Join(fmt.Errorf("start %s: %w", bin, err), os.RemoveAll(dir))
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop = func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		return os.RemoveAll(dir)
	}

	uri = fmt.Sprintf("mongodb://127.0.0.1:%d/?directConnection=true", port)
	if err := initiate(ctx, uri, port); err != nil {
		logTail, _ := os.ReadFile(logPath)
		if len(logTail) > 4000 {
			logTail = logTail[len(logTail)-4000:]
		}
		return "", nil, errors.Join(fmt.Errorf("%s: %w\nend of mongod.log:\n%s", bin, err, bytes.TrimSpace(logTail)), stop())
	}
	return uri, stop, nil
}

// initiate runs replSetInitiate on the mongod at uri and waits until it is
// a writable primary.
func initiate(ctx context.Context, uri string, port int) error {
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.Background()) }()

	config := bson.D{
		{Key: "_id", Value: replicaSetName},
		{Key: "members", Value: bson.A{bson.D{{Key: "_id", Value: 0}, {Key: "host", Value: fmt.Sprintf("127.0.0.1:%d", port)}}}},
	}
	// Server selection waits for mongod to listen. A set initiated
	// already (AlreadyInitialized, 23) only needs its primary.
	err = client.Database("admin").RunCommand(ctx, bson.D{{Key: "replSetInitiate", Value: config}}).Err()
	var ce mongo.CommandError
	if err != nil && !(errors.As(err, &ce) && ce.Code == 23) {
		return fmt.Errorf("replSetInitiate: %w", err)
	}
	for {
		h, err := hello(ctx, client)
		if err == nil && h.IsWritablePrimary {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a primary: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// downloadMongod returns the path of a cached mongod of version
// HARMONIA_TEST_MONGOD_VERSION for this platform, downloading it first if
// needed.
func downloadMongod(getenv func(string) string) (string, error) {
	version := getenv(EnvMongodVersion)
	spec, err := mongobin.MakeDownloadSpec(version)
	if err != nil {
		return "", fmt.Errorf("%s=%q: %w", EnvMongodVersion, version, err)
	}
	cache := getenv("MEMONGO_CACHE_PATH")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(dir, "memongo")
	}
	logger := memongolog.New(log.New(os.Stderr, "", 0), memongolog.LogLevelInfo)
	return mongobin.GetOrDownloadMongod(spec.GetDownloadURL(), cache, logger)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
