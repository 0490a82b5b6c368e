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

// publishExample publishes one version per tag, each with an artifact of
// its own, for the alias examples.
func publishExample(ctx context.Context, store *harmonia.Store, tags ...string) {
	lic := &harmonia.License{SPDXID: "Apache-2.0", CommercialUse: true}
	if err := store.CreateLicense(ctx, lic); err != nil {
		log.Fatal(err)
	}
	for i, tag := range tags {
		a := &harmonia.ModelArtifact{Name: "resnet50", Version: tag, Path: "models/resnet50-" + tag + ".onnx", SizeBytes: 1024,
			Hashes: harmonia.Hashes{SHA256: strings.Repeat(fmt.Sprint(i), 64)}, LicenseID: lic.ID}
		if err := store.CreateArtifact(ctx, a); err != nil {
			log.Fatal(err)
		}
		if _, err := store.Publish(ctx, harmonia.PublishRequest{VersionTag: tag, ArtifactIDs: []bson.ObjectID{a.ID}, PublishedBy: "ml-platform"}); err != nil {
			log.Fatal(err)
		}
	}
}

// Point "production" at a published version, then move it with
// compare-and-set: a deployer who expected another target gets a
// conflict naming where the alias points. Every move is in the audit
// trail.
func ExampleStore_SetAlias() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()
	publishExample(ctx, store, "2026.10.0", "2026.11.0")

	if _, err := store.SetAlias(ctx, "production", "2026.10.0", &harmonia.SetAliasOpts{By: "alice", ExpectAbsent: true}); err != nil {
		log.Fatal(err)
	}
	m, err := store.SetAlias(ctx, "production", "2026.11.0", &harmonia.SetAliasOpts{
		By: "bob", Reason: "passed canary", ExpectVersion: "2026.10.0"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("moved", m.From, "->", m.To, "seq", m.Seq)

	// A second deployer still expects 2026.10.0.
	_, err = store.SetAlias(ctx, "production", "2026.10.0", &harmonia.SetAliasOpts{By: "carol", ExpectVersion: "2026.10.0"})
	fmt.Println(errors.Is(err, harmonia.ErrAliasMoved), strings.Contains(err.Error(), "points at 2026.11.0"))

	v, err := store.ResolveAlias(ctx, "production")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("production is", v.VersionTag, v.Digest == m.Digest)
	moves, err := store.AliasHistory(ctx, "production", harmonia.AliasHistoryFilter{})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range moves {
		fmt.Printf("%d %q -> %q by %s (%s)\n", m.Seq, m.From, m.To, m.By, m.Reason)
	}
	// Output:
	// moved 2026.10.0 -> 2026.11.0 seq 2
	// true true
	// production is 2026.11.0 true
	// 1 "" -> "2026.10.0" by alice ()
	// 2 "2026.10.0" -> "2026.11.0" by bob (passed canary)
}

// Watch an alias: the first event is where it points now, then each move
// follows, once and in order, until the context ends.
func ExampleStore_WatchAlias() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()
	publishExample(ctx, store, "2026.10.0", "2026.11.0")
	if _, err := store.SetAlias(ctx, "production", "2026.10.0", &harmonia.SetAliasOpts{By: "alice"}); err != nil {
		log.Fatal(err)
	}

	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	seen := 0
	for ev, err := range store.WatchAlias(watchCtx, "production", &harmonia.WatchOpts{Interval: 10 * time.Millisecond}) {
		if err != nil {
			log.Print(err) // a failed poll: the watch goes on
			continue
		}
		fmt.Println("production ->", ev.To, "initial:", ev.Initial)
		if seen++; seen == 1 {
			// Someone moves the alias while we watch.
			if _, err := store.SetAlias(ctx, "production", "2026.11.0", &harmonia.SetAliasOpts{By: "bob"}); err != nil {
				log.Fatal(err)
			}
		} else {
			stop()
		}
	}
	// Output:
	// production -> 2026.10.0 initial: true
	// production -> 2026.11.0 initial: false
}
