// Command quickstart connects to a MongoDB deployment, writes a document,
// reads it back (then deletes it) and says what it connected to.
//
//	go run ./examples/quickstart
//
// With HARMONIA_MONGODB_URI set it uses that deployment; otherwise it starts
// harmonia's embedded server (package embedded) in a temporary directory
// and removes it on exit.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia/embedded"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	lane, uri := "uri", os.Getenv("HARMONIA_MONGODB_URI")
	if uri == "" {
		srv, err := embedded.Start(ctx, embedded.Options{})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, srv.Close()) }()
		lane, uri = "embedded", srv.URI()
	}

	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, client.Disconnect(context.Background())) }()

	var build struct {
		Version string `bson:"version"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
		return fmt.Errorf("buildInfo: %w", err)
	}
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	transactions := "no"
	if hello.SetName != "" || hello.Msg == "isdbgrid" {
		transactions = "yes"
	}

	coll := client.Database("harmonia_quickstart").Collection("greetings")
	res, err := coll.InsertOne(ctx, bson.D{{Key: "text", Value: "hello from harmonia"}, {Key: "at", Value: time.Now()}})
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var back struct {
		Text string `bson:"text"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: res.InsertedID}}).Decode(&back); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: res.InsertedID}}); err != nil {
		return fmt.Errorf("clean up: %w", err)
	}

	fmt.Printf("connected:    lane %s, MongoDB-compatible server %s\n", lane, build.Version)
	fmt.Printf("transactions: %s\n", transactions)
	fmt.Printf("wrote and read back %v: %q\n", res.InsertedID, back.Text)
	return nil
}
