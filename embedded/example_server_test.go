package embedded_test

import (
	"context"
	"fmt"
	"log"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia/embedded"
)

// Start a server with its data in memory, connect the ordinary driver to
// it, and use it as a (standalone, transaction-less) MongoDB.
func ExampleStart() {
	ctx := context.Background()
	srv, err := embedded.Start(ctx, embedded.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = client.Disconnect(ctx) }()

	col := client.Database("inventory").Collection("licenses")
	if _, err := col.InsertOne(ctx, bson.D{{Key: "spdx_id", Value: "MIT"}}); err != nil {
		log.Fatal(err)
	}
	var got struct {
		SPDXID string `bson:"spdx_id"`
	}
	if err := col.FindOne(ctx, bson.D{}).Decode(&got); err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.SPDXID)
	// Output:
	// MIT
}
