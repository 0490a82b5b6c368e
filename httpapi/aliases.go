package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/harmonia-ml/harmonia"
)

// Alias is where an alias points: the answer of GET /aliases/{name},
// whose ETag is the alias's sequence number.
type Alias struct {
	Name       string `json:"name"`
	VersionTag string `json:"version_tag"`
	VersionID  string `json:"version_id"`
	Digest     string `json:"digest"`
	// Seq numbers the alias's moves; it is the alias's ETag.
	Seq       int64     `json:"seq"`
	UpdatedBy string    `json:"updated_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

func aliasOf(a *harmonia.Alias) *Alias {
	return &Alias{Name: a.Name, VersionTag: a.VersionTag, VersionID: a.VersionID.Hex(), Digest: a.Digest, Seq: a.Seq,
		UpdatedBy: a.UpdatedBy, UpdatedAt: a.UpdatedAt}
}

// aliasETag is the strong entity tag of an alias at move seq.
func aliasETag(seq int64) string { return `"` + strconv.FormatInt(seq, 10) + `"` }

// AliasList is the answer of GET /aliases.
type AliasList struct {
	Items []*Alias `json:"items"`
}

// AliasInput is the body of PUT /aliases/{name}. The move's by is the
// caller's identity, never the body's. Compare-and-set goes in the
// headers: If-Match with the alias's ETag, or If-None-Match: * to create
// it only if it does not exist.
type AliasInput struct {
	VersionTag string `json:"version_tag" validate:"max=100"`
	Reason     string `json:"reason,omitempty" validate:"max=2000"`
}

// AliasHistoryPage is one page of GET /aliases/{name}/history, oldest
// move first.
type AliasHistoryPage struct {
	Items []*harmonia.AliasMove `json:"items"`
	// Next is the after_seq of the next page, absent on the last.
	Next string `json:"next,omitempty"`
}

func (h *Handler) aliasOperations() []*operation {
	name := pathParam("name", "the alias's name")
	cas := []param{headerParam("If-Match", "the alias's ETag the move expects (compare-and-set); 412 when it moved since"),
		headerParam("If-None-Match", `"*": create the alias only if it does not exist; 412 otherwise`)}
	return []*operation{
		{method: "GET", path: "/aliases", id: "listAliases", tag: "aliases", scope: ScopeRead, summary: "List the aliases, by name",
			ok: http.StatusOK, out: &AliasList{}, run: func(c *call) error {
				as, err := h.store.ListAliases(c.ctx)
				if err != nil {
					return err
				}
				out := &AliasList{Items: make([]*Alias, len(as))}
				for i, a := range as {
					out.Items[i] = aliasOf(a)
				}
				return c.reply(http.StatusOK, out)
			}},
		{method: "GET", path: "/aliases/{name}", id: "getAlias", tag: "aliases", scope: ScopeRead,
			summary: "Where an alias points; its ETag is its move's sequence number, If-None-Match answers 304",
			params:  []param{name}, headers: []param{headerParam("If-None-Match", "an ETag the client holds")},
			ok: http.StatusOK, out: &Alias{}, also: []int{http.StatusNotModified}, etag: true, errs: []int{http.StatusNotFound},
			run: func(c *call) error {
				a, err := h.store.GetAlias(c.ctx, c.r.PathValue("name"))
				if err != nil {
					return err
				}
				etag := aliasETag(a.Seq)
				c.w.Header().Set("ETag", etag)
				c.w.Header().Set("Cache-Control", "no-cache")
				if etagMatches(c.r.Header.Get("If-None-Match"), etag) {
					c.w.WriteHeader(http.StatusNotModified)
					return nil
				}
				return c.reply(http.StatusOK, aliasOf(a))
			}},
		{method: "PUT", path: "/aliases/{name}", id: "setAlias", tag: "aliases", scope: ScopePublish,
			summary:     "Point an alias at a published version; the move's by is the caller",
			description: "With If-Match the move is a compare-and-set against the alias's ETag, with If-None-Match: * it only creates; a failed precondition answers 412 naming where the alias points.",
			params:      []param{name}, headers: cas, body: &AliasInput{}, ok: http.StatusOK, out: &harmonia.AliasMove{}, etag: true,
			errs: []int{http.StatusConflict, http.StatusPreconditionFailed}, run: func(c *call) error {
				var in AliasInput
				if err := c.decode(&in); err != nil {
					return err
				}
				o, err := h.precondition(c)
				if err != nil {
					return err
				}
				o.Reason = in.Reason
				m, err := h.store.SetAlias(c.ctx, c.r.PathValue("name"), in.VersionTag, o)
				if harmonia.ErrorCode(err) == harmonia.CodeNotFound {
					// The body names a version that does not exist: the
					// request is well formed but cannot be carried out.
					return newProblem(http.StatusUnprocessableEntity, harmonia.CodeNotFound, harmonia.EntityAlias, "version_tag", "%s", err.Error())
				}
				if err != nil {
					return err
				}
				c.w.Header().Set("ETag", aliasETag(m.Seq))
				return c.reply(http.StatusOK, m)
			}},
		{method: "DELETE", path: "/aliases/{name}", id: "deleteAlias", tag: "aliases", scope: ScopePublish,
			summary: "Delete an alias (a move to nothing, kept in its history); If-Match makes it a compare-and-set",
			params:  []param{name, queryString("reason", "why, kept in the history")}, headers: cas[:1],
			ok: http.StatusOK, out: &harmonia.AliasMove{}, errs: []int{http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed},
			run: func(c *call) error {
				o, err := h.precondition(c)
				if err != nil {
					return err
				}
				if o.ExpectAbsent {
					return badRequest("If-None-Match", "an alias delete takes If-Match, not If-None-Match")
				}
				m, err := h.store.DeleteAlias(c.ctx, c.r.PathValue("name"), &harmonia.DeleteAliasOpts{By: o.By,
					Reason: c.r.URL.Query().Get("reason"), ExpectVersion: o.ExpectVersion, ExpectSeq: o.ExpectSeq})
				return answer(c, http.StatusOK, m, err)
			}},
		{method: "GET", path: "/aliases/{name}/history", id: "aliasHistory", tag: "aliases", scope: ScopeRead,
			summary: "An alias's moves, oldest first: who moved it, when, why",
			params: []param{name, {name: "after_seq", in: "query", desc: "the moves after this sequence number",
				schema: intSchema(0)}, limitParam()},
			ok: http.StatusOK, out: &AliasHistoryPage{}, link: true, errs: []int{http.StatusNotFound}, run: func(c *call) error {
				after, _ := strconv.ParseInt(c.r.URL.Query().Get("after_seq"), 10, 64)
				limit := cmpOr(queryInt(c, "limit"), harmonia.ListLimitDefault)
				moves, err := h.store.AliasHistory(c.ctx, c.r.PathValue("name"), harmonia.AliasHistoryFilter{AfterSeq: after, Limit: limit})
				if err != nil {
					return err
				}
				out := &AliasHistoryPage{Items: moves}
				if len(moves) == limit {
					out.Next = strconv.FormatInt(moves[len(moves)-1].Seq, 10)
				}
				nextLink(c, "after_seq", out.Next)
				return c.reply(http.StatusOK, out)
			}},
		{method: "GET", path: "/aliases/{name}/watch", id: "watchAlias", tag: "aliases", scope: ScopeRead,
			summary: "Follow an alias's moves as Server-Sent Events",
			description: "The stream starts with a \"current\" event (the alias's last move) and then sends a \"move\" event per move, " +
				"each once, in order; the event id is the move's sequence number and the data the move as JSON. A client that " +
				"reconnects with Last-Event-ID gets the moves after it (no \"current\" event), none missed, none repeated. " +
				"Comments keep an idle stream open.",
			params: []param{name}, headers: []param{{name: "Last-Event-ID", in: "header", desc: "resume after this move's sequence number",
				schema: seqSchema()}},
			ok: http.StatusOK, stream: true, run: h.watchAlias},
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// precondition turns a move's If-Match or If-None-Match into the Store's
// compare-and-set. If-Match is checked against the alias's ETag here,
// then the move expects the move number read with it (ExpectSeq), so any
// move between the two, even one away and back, fails in the Store (412
// as well). If-Match: * expects only that the alias exists.
func (h *Handler) precondition(c *call) (*harmonia.SetAliasOpts, error) {
	o := &harmonia.SetAliasOpts{By: by(c.id)}
	name := c.r.PathValue("name")
	if inm := c.r.Header.Get("If-None-Match"); inm != "" {
		if inm != "*" {
			return nil, badRequest("If-None-Match", `an alias move takes only If-None-Match: *`)
		}
		o.ExpectAbsent = true
	}
	im := c.r.Header.Get("If-Match")
	if im == "" {
		return o, nil
	}
	if o.ExpectAbsent {
		return nil, badRequest("If-Match", "If-Match and If-None-Match exclude each other")
	}
	a, err := h.store.GetAlias(c.ctx, name)
	if harmonia.ErrorCode(err) == harmonia.CodeNotFound {
		return nil, newProblem(http.StatusPreconditionFailed, CodePreconditionFailed, harmonia.EntityAlias, "If-Match",
			"alias %s does not exist, so no tag matches %s", name, im)
	}
	if err != nil {
		return nil, err
	}
	if !etagMatches(im, aliasETag(a.Seq)) {
		return nil, newProblem(http.StatusPreconditionFailed, CodePreconditionFailed, harmonia.EntityAlias, "If-Match",
			"alias %s has ETag %s now (it points at %s), not %s as expected", name, aliasETag(a.Seq), a.VersionTag, im)
	}
	if strings.TrimSpace(im) != "*" {
		o.ExpectSeq = a.Seq
	}
	o.ExpectVersion = a.VersionTag
	return o, nil
}

// watchAlias streams the alias's moves as Server-Sent Events until the
// client goes, ctx ends or the handler closes.
func (h *Handler) watchAlias(c *call) error {
	name := c.r.PathValue("name")
	last := int64(-1)
	if v := c.r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("Last-Event-ID", "must be a move's sequence number")
		}
		last = n
	}
	if _, err := h.store.GetAlias(c.ctx, name); err != nil && harmonia.ErrorCode(err) != harmonia.CodeNotFound {
		return err // a bad name; an alias that does not exist yet is watched until it does
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	go func() {
		select {
		case <-h.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	type item struct {
		ev  harmonia.AliasEvent
		err error
	}
	events := make(chan item)
	go func() {
		defer close(events)
		for ev, err := range h.store.WatchAlias(ctx, name, h.opts.Watch) {
			select {
			case events <- item{ev, err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	rc := http.NewResponseController(c.w)
	c.w.Header().Set("Content-Type", "text/event-stream")
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.Header().Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(c.w, "retry: 1000\n\n"); err != nil {
		return nil
	}
	_ = rc.Flush()
	send := func(kind string, m *harmonia.AliasMove) error {
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(c.w, "id: %d\nevent: %s\ndata: %s\n\n", m.Seq, kind, data); err != nil {
			return err
		}
		last = m.Seq
		return rc.Flush()
	}
	keep := time.NewTicker(h.opts.KeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keep.C:
			if _, err := fmt.Fprint(c.w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		case it, ok := <-events:
			if !ok {
				return nil
			}
			if it.err != nil {
				h.opts.Logger.Warn("httpapi: alias watch poll failed; retrying", "alias", name, "err", causeText(it.err))
				continue
			}
			ev := it.ev
			if last < 0 {
				if send("current", &ev.AliasMove) != nil {
					return nil
				}
				continue
			}
			if ev.Seq <= last {
				continue
			}
			if ev.Seq > last+1 && !h.replay(ctx, name, last, ev.Seq, send) {
				return nil
			}
			if send("move", &ev.AliasMove) != nil {
				return nil
			}
		}
	}
}

// replay sends the moves of the alias after seq from and before seq to,
// the ones a resuming client missed or two polls stepped over, in pages;
// a failed read is retried after the watch's interval. It reports
// whether the stream is still open.
func (h *Handler) replay(ctx context.Context, name string, from, to int64, send func(string, *harmonia.AliasMove) error) bool {
	wait := harmonia.WatchIntervalDefault
	if h.opts.Watch != nil && h.opts.Watch.Interval > 0 {
		wait = h.opts.Watch.Interval
	}
	for from < to-1 {
		moves, err := h.store.AliasHistory(ctx, name, harmonia.AliasHistoryFilter{AfterSeq: from, Limit: int(min(to-1-from, harmonia.ListLimitMax))})
		if err != nil {
			h.opts.Logger.Warn("httpapi: alias watch history failed; retrying", "alias", name, "err", causeText(err))
			select {
			case <-ctx.Done():
				return false
			case <-time.After(wait):
			}
			continue
		}
		if len(moves) == 0 {
			return true // nothing recorded between them: nothing to replay
		}
		for _, m := range moves {
			if m.Seq >= to {
				return true
			}
			if send("move", m) != nil {
				return false
			}
			from = m.Seq
		}
	}
	return true
}
