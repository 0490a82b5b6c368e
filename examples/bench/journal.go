package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/embedded"
)

// journalRuns is how many publishes each side of the journal figure
// times; the figure is their median.
const journalRuns = 3

// benchJournal times a Publish of c.publishLarge artifacts on an embedded
// replica set with a data directory, with its transaction journal and
// without (embedded.Options.NoJournal), each on a server of its own.
func benchJournal(ctx context.Context, _ *bench, c config) ([]figure, error) {
	with, err := timePublishes(ctx, c.publishLarge, false)
	if err != nil {
		return nil, err
	}
	without, err := timePublishes(ctx, c.publishLarge, true)
	if err != nil {
		return nil, err
	}
	k := c.publishLarge
	return []figure{
		{fmt.Sprintf("publish_journal_s_k%d", k), fmt.Sprintf("Publish of %d artifacts, embedded replica set on a directory, journal", k),
			with.Seconds(), "%.3f", fmt.Sprintf("median of %d", journalRuns)},
		{fmt.Sprintf("publish_nojournal_s_k%d", k), "… the same without the journal (NoJournal)",
			without.Seconds(), "%.3f", fmt.Sprintf("median of %d", journalRuns)},
		{fmt.Sprintf("journal_cost_pct_k%d", k), "what the journal adds to that publish, %",
			100 * (with.Seconds() - without.Seconds()) / without.Seconds(), "%.1f", ""},
	}, nil
}

// timePublishes starts a server on a new directory and returns the median
// time of journalRuns publishes of k artifacts each.
func timePublishes(ctx context.Context, k int, noJournal bool) (_ time.Duration, err error) {
	dir, err := os.MkdirTemp("", "harmonia-bench-journal-")
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	// A loaded machine may take longer than MongoDB's 60 s lifetime.
	srv, err := embedded.Start(ctx, embedded.Options{Dir: dir, ReplicaSet: "rs0", NoJournal: noJournal, TransactionLifetime: 10 * time.Minute})
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, client.Disconnect(context.WithoutCancel(ctx))) }()
	var took []time.Duration
	for i := range journalRuns {
		store, err := openStore(ctx, client.Database(fmt.Sprintf("bench_journal_%d", i)))
		if err != nil {
			return 0, err
		}
		ids, err := seedArtifacts(ctx, store, k, 1)
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		if _, err := store.Publish(ctx, harmonia.PublishRequest{VersionTag: "bench", ArtifactIDs: ids, PublishedBy: "bench"}); err != nil {
			return 0, err
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	return took[len(took)/2], nil
}
