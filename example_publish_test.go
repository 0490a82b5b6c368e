package harmonia_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
)

// Publish an immutable inventory version. On a replica set it runs in one
// transaction; on the embedded server (no transactions) it runs the
// staged publish, with the same all-or-nothing result.
func ExampleStore_Publish() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
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

// Compare two published versions by tag: what was added, removed or
// changed between them, from their manifests, in one read.
func ExampleStore_DiffVersionsByTag() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	lic := &harmonia.License{SPDXID: "MIT"}
	if err := store.CreateLicense(ctx, lic); err != nil {
		log.Fatal(err)
	}
	artifact := func(name, version, sum string) bson.ObjectID {
		a := &harmonia.ModelArtifact{Name: name, Version: version, Path: "models/" + name + "-" + version + ".onnx",
			Hashes: harmonia.Hashes{SHA256: strings.Repeat(sum, 64)}, LicenseID: lic.ID}
		if err := store.CreateArtifact(ctx, a); err != nil {
			log.Fatal(err)
		}
		return a.ID
	}
	resnet12, bert, resnet13, yolo := artifact("resnet50", "1.2.0", "a"), artifact("bert", "1.0.0", "b"),
		artifact("resnet50", "1.3.0", "c"), artifact("yolo", "0.9.0", "d")
	for _, req := range []harmonia.PublishRequest{
		{VersionTag: "2026.10.0", ArtifactIDs: []bson.ObjectID{resnet12, bert}, PublishedBy: "ml-platform"},
		{VersionTag: "2026.11.0", ArtifactIDs: []bson.ObjectID{resnet13, yolo}, PublishedBy: "ml-platform"},
	} {
		if _, err := store.Publish(ctx, req); err != nil {
			log.Fatal(err)
		}
	}
	d, err := store.DiffVersionsByTag(ctx, "2026.10.0", "2026.11.0")
	if err != nil {
		log.Fatal(err)
	}
	for _, it := range d.Added {
		fmt.Println("added", it.Key())
	}
	for _, it := range d.Removed {
		fmt.Println("removed", it.Key())
	}
	for _, c := range d.Changed {
		fmt.Println("changed", c.From.Key(), "->", c.To.Version)
	}
	// Output:
	// added yolo@0.9.0
	// removed bert@1.0.0
	// changed resnet50@1.2.0 -> 1.3.0
}

// Settle the publishes a crash left pending. Here a process died after
// inserting its pending version and before marking the artifacts
// (simulated by writing the pending version directly): once the version
// is older than Options.RecoverAfter, RecoverPublishes rolls it back, and
// its tag is free again. Every staged Publish runs the same recovery
// first.
func ExampleStore_RecoverPublishes() {
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	store, done := docdb.Store(ctx, &harmonia.Options{Test: &harmonia.TestOptions{Now: func() time.Time { return now }}})
	defer done()
	crashed := harmonia.InventoryVersion{ID: bson.NewObjectID(), SchemaVersion: harmonia.SchemaVersion,
		VersionTag: "2026.11.0", State: harmonia.VersionPending, ArtifactIDs: []bson.ObjectID{bson.NewObjectID()},
		DatasetIDs: []bson.ObjectID{}, Manifest: harmonia.Manifest{Artifacts: []harmonia.ManifestItem{}, Datasets: []harmonia.ManifestItem{}},
		PublishedBy: "ml-platform", CreatedAt: now, UpdatedAt: now}
	if _, err := store.Database().Collection(harmonia.CollectionVersions).InsertOne(ctx, crashed); err != nil {
		log.Fatal(err)
	}

	rep, err := store.RecoverPublishes(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("too young to settle:", rep.RolledBack)
	now = now.Add(harmonia.RecoverAfterDefault + time.Second)
	rep, err = store.RecoverPublishes(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rolled back:", rep.RolledBack, "completed:", rep.Completed)
	// Output:
	// too young to settle: []
	// rolled back: [2026.11.0] completed: []
}
