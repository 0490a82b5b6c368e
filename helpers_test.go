package harmonia_test

// The root package's shared test helpers.

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/internal/testenv"
)

type bundle struct {
	ctx   context.Context
	db    *mongo.Database
	store *harmonia.Store
	clock *harmoniatest.Clock
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return setupOn(t, harmoniatest.Database(t))
}

// setupOn opens a Store on db with the bundle's clock; opts adjust its
// Options.
func setupOn(t *testing.T, db *mongo.Database, opts ...func(*harmonia.Options)) *bundle {
	t.Helper()
	e := testenv.Open(t, db, opts...)
	return &bundle{ctx: e.Ctx, db: e.DB, store: e.Store, clock: e.Clock}
}

func (b *bundle) license(t *testing.T, spdx string) *harmonia.License {
	t.Helper()
	l := &harmonia.License{SPDXID: spdx, CommercialUse: true}
	require.NoError(t, b.store.CreateLicense(b.ctx, l))
	return l
}

func (b *bundle) artifact(t *testing.T, name string, lic *harmonia.License, tags ...string) *harmonia.ModelArtifact {
	t.Helper()
	a := validArtifact()
	a.Name, a.Tags = name, tags
	if lic != nil {
		a.LicenseID = lic.ID
	}
	require.NoError(t, b.store.CreateArtifact(b.ctx, a))
	return a
}

func count(t *testing.T, b *bundle, col string) int64 {
	t.Helper()
	n, err := b.db.Collection(col).CountDocuments(b.ctx, bson.D{})
	require.NoError(t, err)
	return n
}

// failPointStore returns a bundle on harmoniatest.FailPointDatabase: a
// client of the test's own, the fail point setter and its command counter.
func failPointStore(t *testing.T) (*bundle, func(mode any, data bson.D), *harmoniatest.CommandCounter) {
	t.Helper()
	db, set, counter := harmoniatest.FailPointDatabase(t)
	return setupOn(t, db), set, counter
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = seed
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// errCrashed is what orCrash returns for a call that crashed.
var errCrashed = errors.New("the call crashed")

// orCrash runs f in a goroutine of its own, so that a step hook may end
// it with runtime.Goexit as a crash would end the process: nothing of the
// call runs after that, no rollback either. It returns f's results, or
// errCrashed for a call that crashed.
func orCrash[T any](f func() (T, error)) (T, error) {
	var res T
	err := errCrashed
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = f()
	}()
	<-done
	return res, err
}

// asStored returns j as the database has it: without ClaimSent, which
// only the claiming process knows.
func asStored(j *harmonia.Job) *harmonia.Job {
	c := *j
	c.ClaimSent = time.Time{}
	return &c
}
