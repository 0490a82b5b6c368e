package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/harmonia-ml/harmonia/httpapi"
)

// EnvTokens is the environment variable that holds the tokens of
// harmonia serve when --tokens is not given: the tokens file's format,
// entries separated by newlines or ";".
const EnvTokens = "HARMONIA_HTTP_TOKENS"

// serveShutdownTimeout bounds the wait for requests in flight when serve
// stops.
const serveShutdownTimeout = 10 * time.Second

func (a *app) serveCommand() *cobra.Command {
	var addr, tokensFile string
	var o httpapi.Options
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the inventory over HTTP (the httpapi package) until interrupted",
		Long: `serve answers the HTTP API of the httpapi package on --addr until SIGINT or
SIGTERM, then shuts down gracefully: it stops accepting connections, ends
alias watch streams, and waits up to 10 s for the requests in flight. The
OpenAPI 3.1 document is at /openapi.json; errors are RFC 9457 problem
documents.

Tokens: --tokens FILE (or $` + EnvTokens + `) lists the bearer
tokens, one per line, "NAME SCOPES SECRET" (SCOPES comma-separated from
read, write, publish, admin; # starts a comment; in the variable, ";"
also separates entries). NAME is recorded as created_by, published_by and an alias
move's by. Secrets are compared in constant time and never printed.
Without tokens, serve answers reads only: every write gets 401. With
--read-only, every write gets 403 whoever sends it.

Note: with the embedded server (no --uri), serve holds the data directory
while it runs; run 'harmonia devdb' and point serve and other commands at
it with --uri to use them side by side.`,
		Example: `  harmonia serve --addr 127.0.0.1:8080 --tokens /etc/harmonia/tokens
  HARMONIA_HTTP_TOKENS='ci write,publish 8f3c…' harmonia serve
  curl -s localhost:8080/versions`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			toks, err := a.tokens(tokensFile)
			if err != nil {
				return err
			}
			if len(toks) > 0 {
				if o.Authorizer, err = httpapi.NewTokenAuthorizer(toks); err != nil {
					return invalidArg("tokens", "%v", err)
				}
			}
			store, err := a.store(ctx)
			if err != nil {
				return err
			}
			o.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			h, err := httpapi.New(store, &o)
			if err != nil {
				return err
			}
			return a.serveHTTP(ctx, addr, h, startLine(len(toks), o.ReadOnly))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address")
	fl.StringVar(&tokensFile, "tokens", "", "file of bearer tokens, NAME SCOPES SECRET per line (default $"+EnvTokens+")")
	fl.BoolVar(&o.ReadOnly, "read-only", false, "refuse every write (403), whatever the token")
	fl.BoolVar(&o.AnonymousRead, "anonymous-read", false, "with tokens, let requests without one read")
	fl.DurationVar(&o.Timeout, "timeout", httpapi.TimeoutDefault, "bound on each request's server-side work")
	fl.Int64Var(&o.MaxBodyBytes, "max-body", httpapi.MaxBodyBytesDefault, "largest request body, bytes")
	return cmd
}

// startLine says what the server lets callers do.
func startLine(tokens int, readOnly bool) string {
	switch {
	case readOnly:
		return "read-only: every write answers 403"
	case tokens == 0:
		return "no tokens configured: serving reads only, every write answers 401 (give --tokens or $" + EnvTokens + ")"
	}
	return fmt.Sprintf("%d token(s): writes need a bearer token with their scope", tokens)
}

// tokens reads the tokens from file, else from the environment.
func (a *app) tokens(file string) ([]httpapi.Token, error) {
	var src string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, invalidArg("tokens", "read the tokens file: %v", err)
		}
		src = string(b)
	} else {
		src = strings.ReplaceAll(a.env(EnvTokens), ";", "\n")
	}
	toks, err := httpapi.ParseTokens(strings.NewReader(src))
	if err != nil {
		return nil, invalidArg("tokens", "%v", err)
	}
	return toks, nil
}

// serveHTTP serves h on addr until ctx ends, then shuts down gracefully.
func (a *app) serveHTTP(ctx context.Context, addr string, h *httpapi.Handler, mode string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return invalidArg("addr", "listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		IdleTimeout: 2 * time.Minute, ReadTimeout: time.Minute}
	srv.RegisterOnShutdown(h.Close)
	fmt.Fprintf(a.stderr, "harmonia serve: listening on http://%s (OpenAPI at %s); %s; stop with Ctrl-C\n", ln.Addr(), httpapi.OpenAPIPath, mode)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serveShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	fmt.Fprintln(a.stderr, "harmonia serve: stopped")
	return err
}
