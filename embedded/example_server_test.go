package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
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

// Start a one-member replica set and publish with harmonia: Publish takes
// its transaction path, and the validators EnsureIndexes installs refuse a
// writer that bypasses harmonia.
func ExampleStart_replicaSet() {
	ctx := context.Background()
	srv, err := embedded.Start(ctx, embedded.Options{InMemory: true, ReplicaSet: "rs0"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = client.Disconnect(ctx) }()

	store, err := harmonia.Open(ctx, client.Database("inventory"), nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		log.Fatal(err)
	}
	caps := store.Capabilities()
	fmt.Println("topology:", caps.Topology, "transactions:", caps.Transactions, "validators:", caps.Validators)

	lic := &harmonia.License{SPDXID: "Apache-2.0", CommercialUse: true}
	if err := store.CreateLicense(ctx, lic); err != nil {
		log.Fatal(err)
	}
	a := &harmonia.ModelArtifact{Name: "resnet50", Version: "1.2.0", Path: "models/resnet50.onnx", SizeBytes: 102400,
		Hashes: harmonia.Hashes{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, LicenseID: lic.ID}
	if err := store.CreateArtifact(ctx, a); err != nil {
		log.Fatal(err)
	}
	res, err := store.Publish(ctx, harmonia.PublishRequest{VersionTag: "2026.11.0", ArtifactIDs: []bson.ObjectID{a.ID}, PublishedBy: "ml-platform"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published:", res.Version.VersionTag, "path:", res.Path)

	_, err = client.Database("inventory").Collection(harmonia.CollectionArtifacts).InsertOne(ctx, bson.D{{Key: "name", Value: 42}})
	var we mongo.WriteException
	fmt.Println("raw insert refused:", errors.As(err, &we) && we.HasErrorCode(121)) // DocumentValidationFailure
	// Output:
	// topology: replica_set transactions: true validators: true
	// published: 2026.11.0 path: transaction
	// raw insert refused: true
}
