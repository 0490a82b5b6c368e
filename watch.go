package harmonia

import (
	"cmp"
	"context"
	"iter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Defaults of [WatchOpts].
const (
	// WatchIntervalDefault is how often WatchAlias polls.
	WatchIntervalDefault = time.Second
	// WatchBackoffMaxDefault caps the wait between WatchAlias's polls
	// after errors.
	WatchBackoffMaxDefault = 30 * time.Second
)

// WatchOpts configures [Store.WatchAlias]. The zero value is ready to use.
type WatchOpts struct {
	// Interval is the time between two polls of the alias.
	// Defaults to WatchIntervalDefault.
	Interval time.Duration
	// BackoffMax caps the wait after a failed poll: the wait starts at
	// Interval and doubles with each failure in a row.
	// Defaults to WatchBackoffMaxDefault.
	BackoffMax time.Duration
}

// AliasEvent is what [Store.WatchAlias] yields: a move of the alias, or,
// first, where the alias points when the watch starts.
type AliasEvent struct {
	// AliasMove is the move. For the initial event it is the alias's last
	// move, which made it point where it does.
	AliasMove
	// Initial is true for the first event, which tells the alias's
	// current version rather than a change seen while watching.
	Initial bool
}

// WatchAlias watches the alias name by polling, which works on every
// deployment. It returns an iterator that yields, first, the alias's
// current state (its last move, with Initial set; nothing if the alias
// does not exist yet), then each move of the alias once, in order, as it
// happens, until ctx ends (the iteration then stops without an error) or
// the loop breaks. A deletion is a move whose To is empty.
//
// The iterator follows the moves by their sequence numbers, so it misses
// none and repeats none, however long a poll takes. A failed poll (a
// server restart, a network error) yields the error, with a zero event;
// if the loop goes on, the iterator waits (Interval, doubling with each
// failure in a row, up to BackoffMax) and resumes after the last move it
// yielded. An invalid name yields a [CodeInvalid] error and stops. (When
// ctx has a deadline, the driver itself retries a read that failed with a
// retryable error until the deadline, so fewer errors reach the loop.)
//
//	for ev, err := range store.WatchAlias(ctx, "production", nil) {
//		if err != nil {
//			log.Print(err) // transient: the watch goes on
//			continue
//		}
//		deploy(ev.To, ev.Digest)
//	}
func (s *Store) WatchAlias(ctx context.Context, name string, opts *WatchOpts) iter.Seq2[AliasEvent, error] {
	var o WatchOpts
	if opts != nil {
		o = *opts
	}
	o.Interval = cmp.Or(max(o.Interval, 0), WatchIntervalDefault)
	o.BackoffMax = max(cmp.Or(o.BackoffMax, WatchBackoffMaxDefault), o.Interval)
	return func(yield func(AliasEvent, error) bool) {
		if err := validAliasName(name); err != nil {
			yield(AliasEvent{}, err)
			return
		}
		last := int64(-1) // nothing seen yet: the first poll yields the current state
		wait := o.Interval
		for {
			events, err := s.pollAlias(ctx, name, last)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if !yield(AliasEvent{}, err) {
					return
				}
				if !sleep(ctx, wait) {
					return
				}
				wait = min(2*wait, o.BackoffMax)
				continue
			}
			wait = o.Interval
			for _, e := range events {
				if !yield(e, nil) {
					return
				}
			}
			if len(events) > 0 {
				last = events[len(events)-1].Seq
			} else if last < 0 {
				last = 0
			}
			if !sleep(ctx, o.Interval) {
				return
			}
		}
	}
}

// pollAlias reads the moves of the alias after seq last; last < 0 asks
// for the initial event. It returns no events when nothing moved.
func (s *Store) pollAlias(ctx context.Context, name string, last int64) ([]AliasEvent, error) {
	d, err := s.aliasByName(ctx, name)
	if err != nil || d == nil {
		return nil, err
	}
	if last < 0 {
		if d.Seq == 0 {
			return nil, nil
		}
		m, err := findOne[AliasMove](ctx, s.cols.aliasHistory, EntityAlias, bson.D{{Key: "alias", Value: name}, {Key: "seq", Value: d.Seq}}, "alias "+name)
		if err != nil {
			return nil, err
		}
		return []AliasEvent{{AliasMove: *m, Initial: true}}, nil
	}
	moves, err := s.movesBetween(ctx, name, last, d.Seq, ListLimitMax)
	if err != nil {
		return nil, err
	}
	events := make([]AliasEvent, len(moves))
	for i, m := range moves {
		events[i] = AliasEvent{AliasMove: *m}
	}
	return events, nil
}

// sleep waits for d or until ctx ends; it reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
