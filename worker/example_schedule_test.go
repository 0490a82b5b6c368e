package worker_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
	"github.com/harmonia-ml/harmonia/worker"
)

// Run a nightly report and the built-in audit from every process: each
// period's jobs are enqueued once, whichever process gets there first.
func ExampleScheduler() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	sc, err := worker.NewScheduler(store, &worker.SchedulerOptions{Schedules: []worker.Schedule{
		{Name: "nightly-report", Cron: "0 2 * * *", Type: "report"},
		worker.AuditSchedule(nil), // validate jobs for published artifacts, daily at 03:00 UTC
	}})
	if err != nil {
		log.Fatal(err)
	}
	// Run(ctx) checks at each period's start; here two checks by hand.
	for range 2 {
		if err := sc.Check(ctx); err != nil {
			log.Fatal(err)
		}
	}
	p, err := store.Queue().ListJobs(ctx, harmonia.JobFilter{Types: []harmonia.JobType{"report"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, j := range p.Items {
		fmt.Println(j.Type, strings.HasPrefix(j.UniqueKey, "schedule:nightly-report:"))
	}
	// Two periods, the report's and the audit's, which found no
	// published artifact to validate yet.
	st := sc.Stats()
	fmt.Println("periods:", st.Periods, "jobs:", st.Jobs)
	// Output:
	// report true
	// periods: 2 jobs: 1
}
