package harmonia_test

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

// exampleStore starts an in-memory embedded server and opens a Store on
// it. A real service passes its own *mongo.Database to harmonia.Open.
func exampleStore(ctx context.Context) (*harmonia.Store, func()) {
	srv, err := embedded.Start(ctx, embedded.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		log.Fatal(err)
	}
	store, err := harmonia.Open(ctx, client.Database("example"), nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.EnsureIndexes(ctx); err != nil {
		log.Fatal(err)
	}
	return store, func() {
		_ = client.Disconnect(context.Background())
		_ = srv.Close()
	}
}

// Create a license and an artifact under it.
func ExampleStore_CreateArtifact() {
	ctx := context.Background()
	store, done := exampleStore(ctx)
	defer done()

	lic := &harmonia.License{SPDXID: "Apache-2.0", CommercialUse: true}
	if err := store.CreateLicense(ctx, lic); err != nil {
		log.Fatal(err)
	}
	a := &harmonia.ModelArtifact{
		Name: "resnet50", Version: "1.2.0", Path: "models/resnet50.onnx", SizeBytes: 102400,
		Hashes:    harmonia.Hashes{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		LicenseID: lic.ID, Tags: []string{"vision", "onnx"}, CreatedBy: "ml-platform",
	}
	if err := store.CreateArtifact(ctx, a); err != nil {
		log.Fatal(err)
	}
	got, err := store.GetArtifactByKey(ctx, "resnet50", "1.2.0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Key(), got.Path, got.SchemaVersion, got.ID == a.ID)
	// Output: resnet50@1.2.0 models/resnet50.onnx 2 true
}

// List artifacts with their licenses: two server commands for the whole
// page, however many artifacts it holds.
func ExampleStore_ListArtifactsWithLicenses() {
	ctx := context.Background()
	store, done := exampleStore(ctx)
	defer done()

	for _, spdx := range []string{"MIT", "Apache-2.0"} {
		lic := &harmonia.License{SPDXID: spdx}
		if err := store.CreateLicense(ctx, lic); err != nil {
			log.Fatal(err)
		}
		a := &harmonia.ModelArtifact{Name: "model-" + spdx, Version: "1", Path: "models/" + spdx + ".bin", LicenseID: lic.ID}
		if err := store.CreateArtifact(ctx, a); err != nil {
			log.Fatal(err)
		}
	}
	page, err := store.ListArtifactsWithLicenses(ctx, harmonia.Filter{NamePrefix: "model-"})
	if err != nil {
		log.Fatal(err)
	}
	for _, item := range page.Items {
		fmt.Println(item.Artifact.Name, "is under", item.License.SPDXID)
	}
	// Output:
	// model-MIT is under MIT
	// model-Apache-2.0 is under Apache-2.0
}

// Invalid input is refused before anything is written, with an error that
// names the entity, the field and the reason.
func ExampleError() {
	ctx := context.Background()
	store, done := exampleStore(ctx)
	defer done()

	err := store.CreateArtifact(ctx, &harmonia.ModelArtifact{
		Name: "resnet50", Version: "1.2.0", Path: "../../etc/passwd",
		Hashes: harmonia.Hashes{SHA256: "not-a-digest"},
	})
	var he *harmonia.Error
	if errors.As(err, &he) {
		fmt.Println("code:", he.Code, "entity:", he.Entity)
		for _, f := range he.Fields {
			fmt.Printf("%s: %s\n", f.Field, f.Reason)
		}
	}
	fmt.Println(errors.Is(err, harmonia.ErrInvalid))
	// Output:
	// code: invalid entity: model_artifact
	// path: must not contain .. segments
	// hashes.sha256: must be 64 lowercase hex characters
	// true
}

// Publish an immutable inventory version. On a replica set it runs in one
// transaction; on the embedded server (no transactions) it runs the
// staged publish, with the same all-or-nothing result.
func ExampleStore_Publish() {
	ctx := context.Background()
	store, done := exampleStore(ctx)
	defer done()

	lic := &harmonia.License{SPDXID: "Apache-2.0", CommercialUse: true}
	if err := store.CreateLicense(ctx, lic); err != nil {
		log.Fatal(err)
	}
	a := &harmonia.ModelArtifact{
		Name: "resnet50", Version: "1.2.0", Path: "models/resnet50.onnx", SizeBytes: 102400,
		Hashes:    harmonia.Hashes{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		LicenseID: lic.ID,
	}
	if err := store.CreateArtifact(ctx, a); err != nil {
		log.Fatal(err)
	}
	req := harmonia.PublishRequest{
		VersionTag: "2026.11.0", ArtifactIDs: []bson.ObjectID{a.ID},
		PublishedBy: "ml-platform", RequireCommercialUse: true,
	}
	res, err := store.Publish(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", res.Created, "path:", res.Path)
	for _, item := range res.Version.Manifest.Artifacts {
		fmt.Println(item.Key(), item.LicenseSPDXID)
	}

	// Publishing the same tag with the same contents is idempotent.
	again, err := store.Publish(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created again:", again.Created)

	// A published artifact cannot be deleted.
	err = store.DeleteArtifact(ctx, a.ID)
	fmt.Println(errors.Is(err, harmonia.ErrConflict))
	// Output:
	// created: true path: staged
	// resnet50@1.2.0 Apache-2.0
	// created again: false
	// true
}
