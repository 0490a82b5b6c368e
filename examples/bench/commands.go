package main

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
)

// seedArtifacts writes n publishable artifacts under nLicenses licenses in
// a fresh database, with InsertMany (one command per 100,000 documents).
func seedArtifacts(ctx context.Context, store *harmonia.Store, n, nLicenses int) ([]bson.ObjectID, error) {
	lics := make([]bson.ObjectID, nLicenses)
	for i := range lics {
		l := &harmonia.License{SPDXID: []string{"MIT", "Apache-2.0", "BSD-3-Clause", "CC-BY-4.0", "MPL-2.0"}[i%5], CommercialUse: true}
		if err := store.CreateLicense(ctx, l); err != nil {
			return nil, err
		}
		lics[i] = l.ID
	}
	ids := make([]bson.ObjectID, n)
	docs := make([]any, n)
	now := store.Now()
	for i := range docs {
		ids[i] = bson.NewObjectID()
		docs[i] = &harmonia.ModelArtifact{
			ID: ids[i], SchemaVersion: harmonia.SchemaVersion, Name: fmt.Sprintf("model-%06d", i), NameKey: harmonia.NameKey(fmt.Sprintf("model-%06d", i)), Version: "1.0.0",
			Path: fmt.Sprintf("models/model-%06d.onnx", i), SizeBytes: int64(1000 + i), LicenseID: lics[i%len(lics)],
			Hashes:    harmonia.Hashes{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
			CreatedAt: now, UpdatedAt: now,
		}
	}
	if _, err := store.Database().Collection(harmonia.CollectionArtifacts).InsertMany(ctx, docs); err != nil {
		return nil, err
	}
	return ids, nil
}

// publishCommands counts the server commands of one Publish of k
// artifacts.
func publishCommands(ctx context.Context, b *bench, k int) (int, error) {
	db, counter, done := b.countingDB(ctx, fmt.Sprintf("publish_k%d", k))
	defer done()
	store, err := openStore(ctx, db)
	if err != nil {
		return 0, err
	}
	ids, err := seedArtifacts(ctx, store, k, 1)
	if err != nil {
		return 0, err
	}
	counter.Reset()
	if _, err := store.Publish(ctx, harmonia.PublishRequest{VersionTag: "bench", ArtifactIDs: ids, PublishedBy: "bench"}); err != nil {
		return 0, err
	}
	return counter.Total(), nil
}

// listCommands counts the server commands of listing m artifacts with
// their licenses.
func listCommands(ctx context.Context, b *bench, m int) (int, error) {
	db, counter, done := b.countingDB(ctx, fmt.Sprintf("list_m%d", m))
	defer done()
	store, err := openStore(ctx, db)
	if err != nil {
		return 0, err
	}
	if _, err := seedArtifacts(ctx, store, m, 5); err != nil {
		return 0, err
	}
	counter.Reset()
	page, err := store.ListArtifactsWithLicenses(ctx, harmonia.ArtifactFilter{Limit: m})
	if err != nil {
		return 0, err
	}
	if len(page.Items) != m {
		return 0, fmt.Errorf("listed %d artifacts, want %d", len(page.Items), m)
	}
	return counter.Total(), nil
}

func openStore(ctx context.Context, db *mongo.Database) (*harmonia.Store, error) {
	store, err := harmonia.Open(ctx, db, nil)
	if err != nil {
		return nil, err
	}
	return store, store.EnsureIndexes(ctx)
}
