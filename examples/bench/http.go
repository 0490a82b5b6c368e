package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/httpapi"
)

// benchHTTP measures reads through the HTTP API (package httpapi, served
// on a loopback port, one keep-alive client, one request at a time)
// against the same Store call alone: a published version (which the
// handler caches, since it never changes) and an alias (which it reads
// from the Store every time).
func benchHTTP(ctx context.Context, b *bench, c config) ([]figure, error) {
	db, done := b.db(ctx, "http")
	defer done()
	store, err := harmonia.Open(ctx, db, &harmonia.Options{EnsureIndexes: true})
	if err != nil {
		return nil, err
	}
	ids, err := seedArtifacts(ctx, store, 10, 1)
	if err != nil {
		return nil, err
	}
	if _, err := store.Publish(ctx, harmonia.PublishRequest{VersionTag: "1.0", ArtifactIDs: ids, PublishedBy: "bench"}); err != nil {
		return nil, err
	}
	if _, err := store.SetAlias(ctx, "production", "1.0", &harmonia.SetAliasOpts{By: "bench"}); err != nil {
		return nil, err
	}
	h, err := httpapi.New(store, nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: time.Minute}

	get := func(path string) func() error {
		return func() error {
			req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
			if err != nil {
				return err
			}
			res, err := client.Do(req)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			if _, err := io.Copy(io.Discard, res.Body); err != nil {
				return err
			}
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", path, res.Status)
			}
			return nil
		}
	}
	var figs []figure
	for _, m := range []struct {
		key, what string
		n         int
		viaHTTP   func() error
		store     func() error
	}{
		{"http_version_read_ratio", "GET /versions/{tag} req/s ÷ GetVersionByTag calls/s", c.httpReads, get("/versions/1.0"),
			func() error { _, err := store.GetVersionByTag(ctx, "1.0"); return err }},
		{"http_alias_read_ratio", "GET /aliases/{name} req/s ÷ GetAlias calls/s", c.httpReads, get("/aliases/production"),
			func() error { _, err := store.GetAlias(ctx, "production"); return err }},
	} {
		// Warm both sides (connections, the version cache), then time them.
		if err := errors.Join(m.viaHTTP(), m.store()); err != nil {
			return nil, err
		}
		// Two rounds, each side first once: on a shared machine the load
		// drifts, and the second of two runs is often the faster.
		var web, direct float64
		for round := range 2 {
			sides := []*float64{&web, &direct}
			fns := []func() error{m.viaHTTP, m.store}
			if round == 1 {
				sides[0], sides[1], fns[0], fns[1] = sides[1], sides[0], fns[1], fns[0]
			}
			for i, fn := range fns {
				r, err := rate(m.n/2, fn)
				if err != nil {
					return nil, err
				}
				*sides[i] += r / 2
			}
		}
		figs = append(figs, figure{m.key, m.what, web / direct, "%.2f", fmt.Sprintf("%.0f vs %.0f per second, %d each", web, direct, m.n)})
	}
	return figs, nil
}

// rate calls fn n times and returns the calls per second.
func rate(n int, fn func() error) (float64, error) {
	start := time.Now()
	for range n {
		if err := fn(); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
