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

// benchJournal times Publishes of c.publishLarge artifacts on two
// embedded replica sets with a data directory each, one with its
// transaction journal and one without (embedded.Options.NoJournal),
// taking turns so that both see the same machine.
func benchJournal(ctx context.Context, _ *bench, c config) (_ []figure, err error) {
	k := c.publishLarge
	var sides [2]*journalSide
	for i, noJournal := range []bool{false, true} {
		s, err := startJournalSide(ctx, noJournal)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, s.close(ctx)) }()
		sides[i] = s
	}
	for run := range journalRuns {
		for _, s := range sides {
			if err := s.publish(ctx, run, k); err != nil {
				return nil, err
			}
		}
	}
	with, without := sides[0].median(), sides[1].median()
	return []figure{
		{fmt.Sprintf("publish_journal_s_k%d", k), fmt.Sprintf("Publish of %d artifacts, embedded replica set on a directory, journal", k),
			with.Seconds(), "%.3f", fmt.Sprintf("median of %d", journalRuns)},
		{fmt.Sprintf("publish_nojournal_s_k%d", k), "… the same without the journal (NoJournal)",
			without.Seconds(), "%.3f", fmt.Sprintf("median of %d, in turns with the above", journalRuns)},
		{fmt.Sprintf("journal_cost_pct_k%d", k), "what the journal adds to that publish, %",
			100 * (with.Seconds() - without.Seconds()) / without.Seconds(), "%.1f", ""},
	}, nil
}

// journalSide is one server of the journal figure and its timings.
type journalSide struct {
	dir    string
	srv    *embedded.Server
	client *mongo.Client
	took   []time.Duration
}

func startJournalSide(ctx context.Context, noJournal bool) (*journalSide, error) {
	dir, err := os.MkdirTemp("", "harmonia-bench-journal-")
	if err != nil {
		return nil, err
	}
	// A loaded machine may take longer than MongoDB's 60 s lifetime.
	srv, err := embedded.Start(ctx, embedded.Options{Dir: dir, ReplicaSet: "rs0", NoJournal: noJournal, TransactionLifetime: 10 * time.Minute})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		return nil, errors.Join(err, srv.Close(), os.RemoveAll(dir))
	}
	return &journalSide{dir: dir, srv: srv, client: client}, nil
}

// publish seeds k artifacts in a database of its own and times their
// Publish.
func (s *journalSide) publish(ctx context.Context, run, k int) error {
	store, err := openStore(ctx, s.client.Database(fmt.Sprintf("bench_journal_%d", run)))
	if err != nil {
		return err
	}
	ids, err := seedArtifacts(ctx, store, k, 1)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := store.Publish(ctx, harmonia.PublishRequest{VersionTag: "bench", ArtifactIDs: ids, PublishedBy: "bench"}); err != nil {
		return err
	}
	s.took = append(s.took, time.Since(t0))
	return nil
}

func (s *journalSide) median() time.Duration {
	t := slices.Clone(s.took)
	slices.Sort(t)
	return t[len(t)/2]
}

func (s *journalSide) close(ctx context.Context) error {
	return errors.Join(s.client.Disconnect(context.WithoutCancel(ctx)), s.srv.Close(), os.RemoveAll(s.dir))
}
