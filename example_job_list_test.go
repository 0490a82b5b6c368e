package harmonia_test

import (
	"context"
	"fmt"
	"log"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
)

// List the pending jobs of one type, a page at a time.
func ExampleQueue_ListJobs() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	for _, name := range []string{"a", "b", "c"} {
		if _, err := store.Queue().Enqueue(ctx, "report", map[string]string{"name": name}, nil); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := store.Queue().Enqueue(ctx, "cleanup", nil, nil); err != nil {
		log.Fatal(err)
	}

	f := harmonia.JobFilter{
		Statuses: []harmonia.JobStatus{harmonia.JobPending},
		Types:    []harmonia.JobType{"report"},
		Limit:    2,
	}
	for page := 1; ; page++ {
		p, err := store.Queue().ListJobs(ctx, f)
		if err != nil {
			log.Fatal(err)
		}
		for _, j := range p.Items {
			fmt.Println("page", page, j.Type, j.Params.Lookup("name").StringValue())
		}
		if !p.More() {
			break
		}
		f.After = p.Next
	}
	// Output:
	// page 1 report a
	// page 1 report b
	// page 2 report c
}
