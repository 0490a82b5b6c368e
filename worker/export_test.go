package worker

// SetSchedulerAfterEnqueue installs a hook that runs after a scheduler
// enqueued a period's jobs and before it marks the period done; a hook
// that calls runtime.Goexit stops there as a crashed process would. For the
// worker package's own tests.
func SetSchedulerAfterEnqueue(sc *Scheduler, hook func(name string)) {
	sc.afterEnqueue = hook
}
