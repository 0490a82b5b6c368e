// Command publish records a license and two artifacts, publishes them as an
// inventory version, and shows that publishing is atomic, idempotent and
// protective: the same request again changes nothing, other contents under
// the same tag are refused, and a published artifact cannot be deleted.
//
//	go run ./examples/publish [-uri mongodb://…] [-tag 2026.11.0]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/examples/internal/exampledb"
)

func main() {
	uri := flag.String("uri", "", "MongoDB URI (default $HARMONIA_MONGODB_URI, else an embedded server)")
	tag := flag.String("tag", "2026.11.0", "version tag to publish")
	flag.Parse()
	if err := run(context.Background(), *uri, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, uri, tag string) (err error) {
	conn, err := exampledb.Connect(ctx, exampledb.Options{URI: uri, Database: "harmonia_publish_example"})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	store, err := harmonia.Open(ctx, conn.DB, &harmonia.Options{EnsureIndexes: true})
	if err != nil {
		return err
	}

	// Get-or-create: a rerun against a kept database finds what it
	// registered; other bytes under an existing name@version would be a
	// conflict naming hashes.sha256.
	lic := &harmonia.License{SPDXID: "Apache-2.0", CommercialUse: true}
	if _, err := store.GetOrCreateLicense(ctx, lic); err != nil {
		return err
	}
	var ids []bson.ObjectID
	for _, name := range []string{"resnet50", "bert-base"} {
		a := &harmonia.ModelArtifact{Name: name, Version: "1.0.0", Path: "models/" + name + ".onnx", SizeBytes: 1024,
			Hashes: harmonia.Hashes{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, LicenseID: lic.ID}
		if _, err := store.GetOrCreateArtifact(ctx, a); err != nil {
			return err
		}
		ids = append(ids, a.ID)
	}

	req := harmonia.PublishRequest{VersionTag: tag, ArtifactIDs: ids, PublishedBy: "examples/publish", RequireCommercialUse: true}
	res, err := store.Publish(ctx, req)
	if err != nil {
		return err
	}
	fmt.Printf("published %s (%s path, created=%t) on %s:\n", res.Version.VersionTag, res.Path, res.Created, conn.Lane)
	for _, it := range res.Version.Manifest.Artifacts {
		fmt.Printf("  %-20s %s  %s\n", it.Key(), it.LicenseSPDXID, it.SHA256[:12])
	}

	again, err := store.Publish(ctx, req)
	if err != nil {
		return err
	}
	fmt.Printf("same request again: created=%t (idempotent)\n", again.Created)

	req.ArtifactIDs = ids[:1]
	_, err = store.Publish(ctx, req)
	fmt.Printf("other contents under %s: %v\n", tag, err)
	if !errors.Is(err, harmonia.ErrConflict) {
		return fmt.Errorf("expected a conflict, got %v", err)
	}
	err = store.DeleteArtifact(ctx, ids[0])
	fmt.Printf("delete a published artifact: %v\n", err)
	if !errors.Is(err, harmonia.ErrConflict) {
		return fmt.Errorf("expected a conflict, got %v", err)
	}
	return nil
}
