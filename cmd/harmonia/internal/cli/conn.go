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
		srv, err := embedded.Start(ctx, embedded.Options{Dir: a.data, ReplicaSet: embeddedReplicaSet, TransactionLifetime: a.txnLifetime})
		if errors.Is(err, embedded.ErrDirInUse) {
			return nil, &harmonia.Error{Code: harmonia.CodeConflict, Entity: "command", Field: "data",
				Reason: fmt.Sprintf("data directory %s is in use by another process (a running 'harmonia worker' or 'harmonia devdb'?): connect to that server with --uri instead", a.data), Err: err}
		}
		if err != nil {
			return nil, &harmonia.Error{Code: harmonia.CodeInternal, Entity: "command", Field: "data",
				Reason: "start the embedded server on " + a.data, Err: err}
		}
		c.srv, uri = srv, srv.URI()
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		err = &harmonia.Error{Code: harmonia.CodeInvalid, Entity: "command", Field: "uri", Reason: "cannot use the connection string", Err: err}
		return nil, errors.Join(err, c.close())
	}
	c.client, c.db = client, client.Database(a.db)
	a.conn = c
	if c.srv != nil && autoMigrate {
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
	var errs []error
	if c.client != nil {
		errs = append(errs, c.client.Disconnect(context.Background()))
	}
	if c.srv != nil {
		errs = append(errs, c.srv.Close())
	}
	return errors.Join(errs...)
}
