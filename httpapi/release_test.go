package httpapi_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/httpapi"
)

// publish publishes tag with the artifacts through the API.
func (b *bundle) publish(tag string, arts ...*harmonia.ModelArtifact) *harmonia.InventoryVersion {
	b.t.Helper()
	ids := make([]string, len(arts))
	for i, a := range arts {
		ids[i] = a.ID.Hex()
	}
	r := b.do(publishToken, "POST", "/versions", map[string]any{"version_tag": tag, "artifact_ids": ids})
	require.Equal(b.t, http.StatusCreated, r.status, string(r.body))
	var out httpapi.PublishOutput
	r.decode(b.t, &out)
	return out.Version
}

func TestVersions(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	lic := b.license("MIT")
	a1, a2 := b.artifact("a", "1", lic), b.artifact("b", "1", lic)
	v1 := b.publish("2026.1.0", a1)
	require.Equal(t, "publisher", v1.PublishedBy, "published_by is the caller's identity")
	v2 := b.publish("2026.2.0", a1, a2)

	// Publishing again with the same contents is 200; other contents 409.
	r := b.do(publishToken, "POST", "/versions", map[string]any{"version_tag": "2026.1.0", "artifact_ids": []string{a1.ID.Hex()}})
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(publishToken, "POST", "/versions", map[string]any{"version_tag": "2026.1.0", "artifact_ids": []string{a2.ID.Hex()}})
	require.Equal(t, http.StatusConflict, r.status)
	r = b.do(publishToken, "POST", "/versions", map[string]any{"version_tag": "2026.3.0", "published_by": "mallory", "artifact_ids": []string{a2.ID.Hex()}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "published_by never comes from the body")
	r = b.do(publishToken, "POST", "/versions", map[string]any{"version_tag": "2026.3.0"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "no contents")

	// A published version: strong ETag = digest, cacheable for good, 304.
	r = b.do(readToken, "GET", "/versions/2026.1.0", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, `"`+v1.Digest+`"`, r.header.Get("ETag"))
	require.Contains(t, r.header.Get("Cache-Control"), "immutable")
	var got harmonia.InventoryVersion
	r.decode(t, &got)
	require.Equal(t, v1.Digest, got.Digest)
	r = b.do(readToken, "GET", "/versions/2026.1.0", nil, "If-None-Match", `"`+v1.Digest+`"`)
	require.Equal(t, http.StatusNotModified, r.status)
	require.Empty(t, r.body)
	r = b.do(readToken, "GET", "/versions/2026.1.0", nil, "If-None-Match", `"`+v2.Digest+`"`)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(readToken, "GET", "/versions/2099.0.0", nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, harmonia.EntityVersion, r.problem(t).Entity)

	r = b.do(readToken, "GET", "/versions/2026.2.0/contents", nil)
	require.Equal(t, http.StatusOK, r.status)
	var vc httpapi.VersionContents
	r.decode(t, &vc)
	require.Len(t, vc.Artifacts, 2)
	require.Len(t, vc.Licenses, 1)
	r = b.do(readToken, "GET", "/versions/nope/contents", nil)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(readToken, "GET", "/versions/2026.1.0/diff/2026.2.0", nil)
	require.Equal(t, http.StatusOK, r.status)
	var d httpapi.VersionDiff
	r.decode(t, &d)
	require.Len(t, d.Added, 1)
	require.Equal(t, "b", d.Added[0].Name)
	r = b.do(readToken, "GET", "/versions/2026.1.0/diff/nope", nil)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(readToken, "GET", "/versions/2026.2.0/verify", nil)
	require.Equal(t, http.StatusOK, r.status)
	var rep httpapi.VerifyReport
	r.decode(t, &rep)
	require.True(t, rep.OK)
	r = b.do(readToken, "GET", "/versions/nope/verify", nil)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(readToken, "GET", "/versions?limit=1", nil)
	require.Equal(t, http.StatusOK, r.status)
	var page httpapi.VersionPage
	r.decode(t, &page)
	require.Equal(t, "2026.2.0", page.Items[0].VersionTag, "newest first")
	require.NotEmpty(t, page.Next)
	r = b.do(readToken, "GET", "/versions?after="+page.Next, nil)
	r.decode(t, &page)
	require.Equal(t, "2026.1.0", page.Items[0].VersionTag)

	// Published content cannot change: 409 with harmonia's field.
	r = b.do(writeToken, "PATCH", "/artifacts/"+a1.ID.Hex(), map[string]any{"size_bytes": 7})
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "published", r.problem(t).Field)
}

func TestAliases(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	lic := b.license("MIT")
	a := b.artifact("a", "1", lic)
	b.publish("1.0", a)
	b.publish("2.0", a)

	r := b.do(readToken, "GET", "/aliases/production", nil)
	require.Equal(t, http.StatusNotFound, r.status)

	// If-None-Match: * creates only; by is the caller.
	r = b.do(publishToken, "PUT", "/aliases/production", map[string]any{"version_tag": "1.0", "reason": "first"}, "If-None-Match", "*")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var m harmonia.AliasMove
	r.decode(t, &m)
	require.Equal(t, "publisher", m.By)
	require.Equal(t, `"1"`, r.header.Get("ETag"))
	r = b.do(publishToken, "PUT", "/aliases/production", map[string]any{"version_tag": "2.0"}, "If-None-Match", "*")
	require.Equal(t, http.StatusPreconditionFailed, r.status)
	require.Equal(t, httpapi.CodePreconditionFailed, r.problem(t).Code)

	r = b.do(readToken, "GET", "/aliases/production", nil)
	require.Equal(t, http.StatusOK, r.status)
	etag := r.header.Get("ETag")
	require.Equal(t, `"1"`, etag)
	r = b.do(readToken, "GET", "/aliases/production", nil, "If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, r.status)

	// If-Match: compare-and-set on the ETag; a stale one is 412 and moves nothing.
	r = b.do(publishToken, "PUT", "/aliases/production", map[string]any{"version_tag": "2.0"}, "If-Match", etag)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, `"2"`, r.header.Get("ETag"))
	r = b.do(publishToken, "PUT", "/aliases/production", map[string]any{"version_tag": "1.0"}, "If-Match", etag)
	require.Equal(t, http.StatusPreconditionFailed, r.status)
	p := r.problem(t)
	require.Equal(t, "If-Match", p.Field)
	require.Contains(t, p.Detail, "2.0")
	al, err := b.store.GetAlias(t.Context(), "production")
	require.NoError(t, err)
	require.Equal(t, "2.0", al.VersionTag)
	r = b.do(readToken, "GET", "/aliases/production", nil, "If-None-Match", etag)
	require.Equal(t, http.StatusOK, r.status, "the alias moved: the old ETag is stale")

	r = b.do(publishToken, "PUT", "/aliases/production", map[string]any{"version_tag": "9.9"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "no published version 9.9")
	require.Equal(t, "version_tag", r.problem(t).Field)
	r = b.do(publishToken, "PUT", "/aliases/Not%20Valid", map[string]any{"version_tag": "1.0"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "name", r.problem(t).Field)
	r = b.do(publishToken, "PUT", "/aliases/canary", map[string]any{"version_tag": "1.0"}, "If-Match", `"3"`)
	require.Equal(t, http.StatusPreconditionFailed, r.status, "If-Match on an alias that does not exist")

	r = b.do(readToken, "GET", "/aliases", nil)
	var list httpapi.AliasList
	r.decode(t, &list)
	require.Len(t, list.Items, 1)

	r = b.do(readToken, "GET", "/aliases/production/history?limit=1", nil)
	require.Equal(t, http.StatusOK, r.status)
	var hist httpapi.AliasHistoryPage
	r.decode(t, &hist)
	require.Len(t, hist.Items, 1)
	require.Equal(t, "1", hist.Next)
	r = b.do(readToken, "GET", "/aliases/production/history?after_seq=1", nil)
	r.decode(t, &hist)
	require.Len(t, hist.Items, 1)
	require.Equal(t, "2.0", hist.Items[0].To)
	r = b.do(readToken, "GET", "/aliases/nothing/history", nil)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(publishToken, "DELETE", "/aliases/production?reason=retired", nil, "If-Match", `"1"`)
	require.Equal(t, http.StatusPreconditionFailed, r.status)
	r = b.do(publishToken, "DELETE", "/aliases/production?reason=retired", nil, "If-Match", `"2"`)
	require.Equal(t, http.StatusOK, r.status)
	r.decode(t, &m)
	require.Empty(t, m.To)
	require.Equal(t, "retired", m.Reason)
	r = b.do(publishToken, "DELETE", "/aliases/production", nil)
	require.Equal(t, http.StatusNotFound, r.status)
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, event, data string }

// readEvents parses events from an SSE stream onto a channel.
func readEvents(t *testing.T, res *http.Response) <-chan sseEvent {
	ch := make(chan sseEvent, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "the stream ended")
		return ev
	case <-time.After(2 * time.Minute):
		t.Fatal("no event")
	}
	return sseEvent{}
}

func TestWatchAlias(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	lic := b.license("MIT")
	a := b.artifact("a", "1", lic)
	for _, tag := range []string{"1", "2", "3"} {
		b.publish(tag, a)
	}
	move := func(tag string) {
		r := b.do(publishToken, "PUT", "/aliases/prod", map[string]any{"version_tag": tag})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
	}
	move("1")

	watch := func(lastID string) (*http.Response, <-chan sseEvent) {
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/aliases/prod/watch", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+readToken)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		b.validate(req, &response{status: res.StatusCode, header: res.Header})
		require.Equal(t, http.StatusOK, res.StatusCode)
		t.Cleanup(func() { _ = res.Body.Close() })
		return res, readEvents(t, res)
	}
	_, events := watch("")
	ev := next(t, events)
	require.Equal(t, sseEvent{id: "1", event: "current", data: ev.data}, ev)
	require.Contains(t, ev.data, `"to":"1"`)
	move("2")
	ev = next(t, events)
	require.Equal(t, "2", ev.id)
	require.Equal(t, "move", ev.event)
	require.Contains(t, ev.data, `"to":"2"`)

	// Resuming after move 1 replays move 2, then follows move 3: none
	// missed, none repeated, no "current" event.
	_, resumed := watch("1")
	ev = next(t, resumed)
	require.Equal(t, "2", ev.id)
	require.Equal(t, "move", ev.event)
	move("3")
	require.Equal(t, "3", next(t, resumed).id)
	require.Equal(t, "3", next(t, events).id)

	// Close ends the open streams.
	b.handler.Close()
	select {
	case _, ok := <-events:
		require.False(t, ok)
	case <-time.After(time.Minute):
		t.Fatal("the stream stayed open after Close")
	}

	r := b.do(readToken, "GET", "/aliases/prod/watch", nil, "Last-Event-ID", "x")
	require.Equal(t, http.StatusBadRequest, r.status)
	r = b.do(readToken, "GET", "/aliases/BAD%20NAME/watch", nil)
	require.Equal(t, http.StatusBadRequest, r.status)
}

// TestVersionCache shows that a published version, immutable, is read
// from the Store once: later reads, 304s included, send no command.
func TestVersionCache(t *testing.T) {
	t.Parallel()
	db, counter := harmoniatest.CountingDatabase(t)
	store, err := harmonia.Open(t.Context(), db, &harmonia.Options{EnsureIndexes: true})
	require.NoError(t, err)
	b := setupWith(t, store, nil)
	v := b.publish("1.0", b.artifact("a", "1", b.license("MIT")))
	r := b.do(publishToken, "PUT", "/aliases/prod", map[string]any{"version_tag": "1.0"})
	require.Equal(t, http.StatusOK, r.status)

	require.Equal(t, http.StatusOK, b.do(readToken, "GET", "/versions/1.0", nil).status)
	counter.Reset()
	for range 3 {
		r := b.do(readToken, "GET", "/versions/1.0", nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, `"`+v.Digest+`"`, r.header.Get("ETag"))
	}
	require.Equal(t, http.StatusNotModified, b.do(readToken, "GET", "/versions/1.0", nil, "If-None-Match", `"`+v.Digest+`"`).status)
	require.Zero(t, counter.Total(), "cached reads sent %v", counter.Counts())

	// An alias moves: every read asks the Store.
	require.Equal(t, http.StatusOK, b.do(readToken, "GET", "/aliases/prod", nil).status)
	require.NotZero(t, counter.Total())
}
