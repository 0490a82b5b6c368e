package harmonia

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// LeaseClock is the clock that job leases are measured on: the clock
// that sets a lease's expiry when a job is claimed or heart-beaten, and
// that later tells a claim whether the lease has expired (see "Leases"
// in the package documentation).
type LeaseClock int

const (
	// LeaseClockAuto measures leases on the server's clock where the
	// server offers one ([Capabilities.ServerClock]) and Options.Now is
	// not set, and on the Store's clock otherwise.
	LeaseClockAuto LeaseClock = iota
	// LeaseClockServer measures leases on the server's clock: claims and
	// heartbeats set lease_expires_at to the server's $$NOW plus the
	// lease, in an update pipeline, and claims compare it with $$NOW in
	// an $expr. Workers' clocks then need not agree. It needs MongoDB 4.2
	// or later (or the embedded server); [Open] refuses it elsewhere.
	LeaseClockServer
	// LeaseClockLocal measures leases on the clock of each Store
	// (Options.Now): the clocks of all workers must agree to well within
	// a lease.
	LeaseClockLocal
)

// String returns "auto", "server" or "local".
func (c LeaseClock) String() string {
	switch c {
	case LeaseClockAuto:
		return "auto"
	case LeaseClockServer:
		return "server"
	case LeaseClockLocal:
		return "local"
	}
	return fmt.Sprintf("LeaseClock(%d)", int(c))
}

// resolveLeaseClock decides the clock of a Store's leases from the
// option, the server's capabilities and whether the caller set its own
// clock (which then rules, for tests).
func resolveLeaseClock(want LeaseClock, caps Capabilities, ownClock bool) (LeaseClock, error) {
	switch want {
	case LeaseClockAuto:
		if caps.ServerClock && !ownClock {
			return LeaseClockServer, nil
		}
		return LeaseClockLocal, nil
	case LeaseClockServer:
		if !caps.ServerClock {
			return 0, invalidf("store", "lease_clock",
				"the server (%s %s) does not evaluate $$NOW in queries and update pipelines (MongoDB 4.2 or later does): use LeaseClockLocal or LeaseClockAuto", caps.Topology, caps.ServerVersion)
		}
		return LeaseClockServer, nil
	case LeaseClockLocal:
		return LeaseClockLocal, nil
	}
	return 0, invalidf("store", "lease_clock", "unknown lease clock %d", int(want))
}

// LeaseClock returns the clock this Store's job leases are measured on:
// LeaseClockServer or LeaseClockLocal.
func (s *Store) LeaseClock() LeaseClock { return s.leaseClock }

// probeServerClock reports whether the server evaluates $$NOW in an
// $expr, with one find on a collection that does not exist. MongoDB
// added $$NOW and update pipelines together, in 4.2.
func probeServerClock(ctx context.Context, db *mongo.Database) (bool, error) {
	err := db.RunCommand(ctx, bson.D{
		{Key: "find", Value: "harmonia_capability_probe"},
		{Key: "filter", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$lt", Value: bson.A{"$t", "$$NOW"}}}}}},
		{Key: "limit", Value: 1}, {Key: "singleBatch", Value: true},
	}).Err()
	var ce mongo.CommandError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ce):
		return false, nil
	}
	return false, wrapErr("store", "probe $$NOW", err)
}

// leaseExpired is the condition, in a job filter, that the job's lease
// has expired by now (on the Store's clock) or by the server's $$NOW.
func (s *Store) leaseExpired(now time.Time) bson.E {
	if s.leaseClock == LeaseClockServer {
		return bson.E{Key: "$expr", Value: bson.D{{Key: "$lt", Value: bson.A{"$lease_expires_at", "$$NOW"}}}}
	}
	return bson.E{Key: "lease_expires_at", Value: bson.D{{Key: "$lt", Value: now}}}
}

// onLeaseClock returns update, which sets lease_expires_at, as it is to
// be sent: unchanged on the Store's clock; on the server's clock, as the
// update pipeline that does the same but sets lease_expires_at to the
// server's $$NOW plus lease. update may use $set, $inc, $push (of one
// value) and $unset.
func (s *Store) onLeaseClock(update bson.D, lease time.Duration) (any, error) {
	if s.leaseClock != LeaseClockServer {
		return update, nil
	}
	var set bson.D
	var unset bson.A
	for _, op := range update {
		fields, ok := op.Value.(bson.D)
		if !ok {
			return nil, &Error{Code: CodeInternal, Entity: EntityJob, Field: "lease_expires_at", Reason: fmt.Sprintf("update operator %s of a lease is not a document", op.Key)}
		}
		for _, f := range fields {
			var v any
			switch op.Key {
			case "$set":
				v = bson.D{{Key: "$literal", Value: f.Value}}
				if f.Key == "lease_expires_at" {
					v = bson.D{{Key: "$add", Value: bson.A{"$$NOW", lease.Milliseconds()}}}
				}
			case "$inc":
				v = bson.D{{Key: "$add", Value: bson.A{bson.D{{Key: "$ifNull", Value: bson.A{"$" + f.Key, 0}}}, f.Value}}}
			case "$push":
				v = bson.D{{Key: "$concatArrays", Value: bson.A{
					bson.D{{Key: "$ifNull", Value: bson.A{"$" + f.Key, bson.A{}}}},
					bson.A{bson.D{{Key: "$literal", Value: f.Value}}},
				}}}
			case "$unset":
				unset = append(unset, f.Key)
				continue
			default:
				return nil, &Error{Code: CodeInternal, Entity: EntityJob, Field: "lease_expires_at", Reason: fmt.Sprintf("update operator %s has no pipeline form here", op.Key)}
			}
			set = append(set, bson.E{Key: f.Key, Value: v})
		}
	}
	pipeline := mongo.Pipeline{{{Key: "$set", Value: set}}}
	if len(unset) > 0 {
		pipeline = append(pipeline, bson.D{{Key: "$unset", Value: unset}})
	}
	return pipeline, nil
}
