package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/embedded"
	"github.com/harmonia-ml/harmonia/internal/devserver"
	"github.com/harmonia-ml/harmonia/migrate"
)

// embeddedReplicaSet is the replica set the embedded server serves, so
// that publishes and alias moves run in transactions.
const embeddedReplicaSet = "rs0"

// txnLifetimeDefault is the transaction lifetime of the command's own
// embedded server: ten times MongoDB's 60 s, so that a publish of a
// version of thousands of artifacts is not cut on a loaded machine (one
// of 1,000 among 10,000 artifacts takes a few seconds; see the README).
const txnLifetimeDefault = 10 * time.Minute

// conn is the run's connection: a client on the deployment, and the
// embedded server when the run started one.
type conn struct {
	client *mongo.Client
	db     *mongo.Database
	srv    *embedded.Server
	store  *harmonia.Store
	// shared is true when the data directory was in use and the run
	// connected to the server of the process that holds it.
	shared bool
	// unpublish removes the data directory's URI file (devserver.URIFile)
	// that this run's embedded server wrote.
	unpublish func()
}

// EnvServerTimeout is the environment variable that sets
// --server-timeout.
const EnvServerTimeout = "HARMONIA_SERVER_TIMEOUT"

// serverTimeoutDefault bounds how long a command waits for a server it
// cannot reach: server selection and connection each.
const serverTimeoutDefault = 5 * time.Second

// serverTimeout is --server-timeout, else $HARMONIA_SERVER_TIMEOUT, else
// the default.
func (a *app) serverTimeout() (time.Duration, error) {
	if a.serverTO > 0 {
		return a.serverTO, nil
	}
	if v := a.env(EnvServerTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, invalidArg("server-timeout", "$%s=%q is not a positive duration such as 5s", EnvServerTimeout, echo(v))
		}
		return d, nil
	}
	return serverTimeoutDefault, nil
}

// sharePoll is how often --wait tries the data directory again.
const sharePoll = 200 * time.Millisecond

// embeddedServer starts the embedded server on --data and returns its
// URI. When another harmonia process serves the directory it returns that
// server's URI instead (the address it keeps beside its lock), or, with
// --wait, waits until the directory is free.
func (a *app) embeddedServer(ctx context.Context, c *conn) (string, error) {
	for {
		srv, err := embedded.Start(ctx, embedded.Options{Dir: a.data, ReplicaSet: embeddedReplicaSet, TransactionLifetime: a.txnLifetime})
		if err == nil {
			remove, perr := devserver.PublishURI(a.data, srv.URI())
			if perr != nil {
				return "", errors.Join(&harmonia.Error{Code: harmonia.CodeInternal, Entity: "command", Field: "data",
					Reason: "write the server's address in " + a.data, Err: perr}, srv.Close())
			}
			c.srv, c.unpublish = srv, remove
			return srv.URI(), nil
		}
		if !errors.Is(err, embedded.ErrDirInUse) {
			return "", &harmonia.Error{Code: harmonia.CodeInternal, Entity: "command", Field: "data",
				Reason: "start the embedded server on " + a.data, Err: err}
		}
		if !a.wait {
			if uri, rerr := devserver.ReadURI(a.data); rerr == nil {
				c.shared = true
				return uri, nil
			}
			return "", &harmonia.Error{Code: harmonia.CodeConflict, Entity: "command", Field: "data",
				Reason: fmt.Sprintf("data directory %s is in use by another process that does not say its address: "+
					"pass --wait to wait for it, or --uri to connect to its server", a.data), Err: err}
		}
		select {
		case <-ctx.Done():
			return "", &harmonia.Error{Code: harmonia.CodeInternal, Entity: "command", Field: "data",
				Reason: "waiting for data directory " + a.data, Err: ctx.Err()}
		case <-time.After(sharePoll):
		}
	}
}

// database connects (once per run) and returns the database. With no
// --uri and no $HARMONIA_MONGODB_URI it starts the embedded server on
// --data and, unless migrating is the command's own business, applies the
// built-in migrations to it.
func (a *app) database(ctx context.Context, autoMigrate bool) (*mongo.Database, error) {
	if a.conn != nil {
		return a.conn.db, nil
	}
	if problem := harmonia.DatabaseNameProblem(a.db); problem != "" {
		return nil, invalidArg("db", "database name %q %s", a.db, problem)
	}
	c := &conn{}
	uri := cmp.Or(a.uri, a.env(EnvURI))
	if uri == "" {
		var err error
		if uri, err = a.embeddedServer(ctx, c); err != nil {
			return nil, err
		}
	}
	timeout, err := a.serverTimeout()
	if err != nil {
		return nil, errors.Join(err, c.close())
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(timeout).SetConnectTimeout(timeout))
	if err != nil {
		err = &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "command", Field: "uri", Reason: "cannot use the connection string", Err: err}
		return nil, errors.Join(err, c.close())
	}
	c.client, c.db = client, client.Database(a.db)
	a.conn = c
	if (c.srv != nil || c.shared) && autoMigrate {
		r, err := migrate.New(c.db, migrate.Builtin(), nil)
		if err != nil {
			return nil, err
		}
		if _, err := r.Up(ctx, nil); err != nil {
			return nil, err
		}
	}
	return c.db, nil
}

// announceServer tells, on standard error, where the embedded server this
// run started listens: long commands (worker, alias watch) call it, so
// that a person can point mongosh or --uri at it. Other harmonia commands
// on the same data directory find it by themselves.
func (a *app) announceServer() {
	if a.conn != nil && a.conn.srv != nil {
		fmt.Fprintf(a.stderr, "serving data directory %s at %s (other harmonia commands on it connect to this server)\n", a.data, a.conn.srv.URI())
	}
}

// store returns the run's Store, connecting first.
func (a *app) store(ctx context.Context) (*harmonia.Store, error) {
	if a.conn != nil && a.conn.store != nil {
		return a.conn.store, nil
	}
	db, err := a.database(ctx, true)
	if err != nil {
		return nil, err
	}
	s, err := harmonia.Open(ctx, db, nil)
	if err != nil {
		return nil, err
	}
	a.conn.store = s
	return s, nil
}

// close disconnects and stops the embedded server, if the run has them.
func (a *app) close() error {
	if a.conn == nil {
		return nil
	}
	err := a.conn.close()
	a.conn = nil
	return err
}

func (c *conn) close() error {
	if c.unpublish != nil {
		c.unpublish()
	}
	var errs []error
	if c.client != nil {
		errs = append(errs, c.client.Disconnect(context.Background()))
	}
	if c.srv != nil {
		errs = append(errs, c.srv.Close())
	}
	return errors.Join(errs...)
}
