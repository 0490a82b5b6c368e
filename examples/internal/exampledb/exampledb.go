// Package exampledb connects harmonia's example programs to a database:
// the deployment named by HARMONIA_MONGODB_URI (or a -uri flag), or else
// an embedded server started for the run. A service of your own replaces
// it with its own mongo.Connect.
package exampledb

import (
	"cmp"
	"context"
	"errors"
	"os"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/harmonia-ml/harmonia/embedded"
)

// EnvURI names the deployment the examples use instead of an embedded
// server.
const EnvURI = "HARMONIA_MONGODB_URI"

// Conn is an open connection to the examples' database.
type Conn struct {
	// DB is the database the example works in.
	DB *mongo.Database
	// Client is DB's client.
	Client *mongo.Client
	// Lane is LaneURI for a given deployment, LaneEmbedded for a started one.
	Lane string
	// URI is the connection string used.
	URI string

	srv *embedded.Server
}

// Values of Conn.Lane.
const (
	LaneURI      = "uri"
	LaneEmbedded = "embedded replica set"
)

// Options says where to connect.
type Options struct {
	// URI of a deployment. Defaults to $HARMONIA_MONGODB_URI; when both are
	// empty an embedded server is started.
	URI string
	// Dir keeps the embedded server's data across runs. Defaults to a
	// temporary directory removed by Close.
	Dir string
	// Database is the database name. Defaults to "harmonia".
	Database string
}

// Connect opens the connection o describes.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	c := &Conn{Lane: LaneURI, URI: cmp.Or(o.URI, os.Getenv(EnvURI))}
	if c.URI == "" {
		// The replica-set mode: transactions and validators, as on a
		// production deployment.
		srv, err := embedded.Start(ctx, embedded.Options{Dir: o.Dir, ReplicaSet: "rs0"})
		if err != nil {
			return nil, err
		}
		c.srv, c.Lane, c.URI = srv, LaneEmbedded, srv.URI()
	}
	client, err := mongo.Connect(options.Client().ApplyURI(c.URI))
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	c.Client = client
	c.DB = client.Database(cmp.Or(o.Database, "harmonia"))
	return c, nil
}

// Close disconnects and stops the embedded server if Connect started one.
func (c *Conn) Close() error {
	var errs []error
	if c.Client != nil {
		errs = append(errs, c.Client.Disconnect(context.Background()))
	}
	if c.srv != nil {
		errs = append(errs, c.srv.Close())
	}
	return errors.Join(errs...)
}
