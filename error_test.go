package harmonia_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/harmoniatest"
	"github.com/harmonia-ml/harmonia/worker"
)

// TestErrorMessages quotes the text of each kind of error: the code at
// the end, every broken rule, document field names, values of named
// string types, and no driver text (the cause stays behind Unwrap).
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := harmoniatest.Store(t, nil)
	require.NoError(t, s.CreateArtifact(ctx, validArtifact()))
	missing := bson.NewObjectID()

	for _, c := range []struct {
		name  string
		err   func() error
		want  string
		cause bool // a cause is kept behind Unwrap
	}{
		{"every broken rule", func() error {
			a := validArtifact()
			a.Name, a.Version, a.Hashes.SHA256 = "", "", "xyz"
			return s.CreateArtifact(ctx, a)
		}, "harmonia: model_artifact: name: is required; version: is required; hashes.sha256: must be 64 lowercase hex characters (invalid)", false},
		{"named string type keeps its value", func() error {
			_, err := s.Queue().Enqueue(ctx, "Resize Images", nil, nil)
			return err
		}, `harmonia: job: type: job type "Resize Images" must be lowercase letters, digits, _ . - and start with a letter (invalid)`, false},
		{"nil argument", func() error { return s.CreateArtifact(ctx, nil) },
			"harmonia: model_artifact: a non-nil model_artifact is required (invalid)", false},
		{"nil job", func() error { return s.Queue().CompleteJob(ctx, nil, nil) },
			"harmonia: job: a non-nil job is required (invalid)", false},
		{"duplicate key without the server's text", func() error { return s.CreateArtifact(ctx, validArtifact()) },
			"harmonia: model_artifact: name,version: name,version resnet50@1.2.0 exists already (conflict)", true},
		{"not found without the driver's text", func() error {
			_, err := s.GetArtifact(ctx, missing)
			return err
		}, "harmonia: model_artifact: no model_artifact with id " + missing.Hex() + " (not_found)", true},
		{"params that are no document", func() error {
			_, err := s.Queue().Enqueue(ctx, "noop", 42, nil)
			return err
		}, "harmonia: job: params: must encode as a BSON document (a struct, map, bson.D or bson.Raw) (invalid)", true},
		{"worker options by document name", func() error {
			_, err := worker.New(s, &worker.Options{Concurrency: -1,
				Handlers: map[harmonia.JobType]worker.Handler{"noop": nil}})
			return err
		}, "harmonia: worker: handlers: the handler of job type \"noop\" is nil (invalid)", false},
		{"get-or-create conflict", func() error {
			_, err := s.GetOrCreateArtifact(ctx, &harmonia.ModelArtifact{Name: "resnet50", Version: "1.2.0",
				Path: "models/resnet50.onnx", SizeBytes: 102400, Hashes: harmonia.Hashes{SHA256: goodSHA[:63] + "0"}})
			return err
		}, `harmonia: model_artifact: hashes.sha256: model_artifact resnet50@1.2.0 exists with hashes.sha256 "` + goodSHA + `", not "` + goodSHA[:63] + `0" (conflict)`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			require.EqualError(t, err, c.want)
			require.Equal(t, c.cause, errors.Unwrap(err) != nil, "cause behind Unwrap")
		})
	}
}

func TestErrorMessageOfAForgottenMigration(t *testing.T) {
	t.Parallel()
	s, err := harmonia.Open(t.Context(), harmoniatest.Database(t), nil)
	require.NoError(t, err)
	require.EqualError(t, s.CreateLicense(t.Context(), &harmonia.License{SPDXID: "MIT"}),
		"harmonia: license: indexes: unique index uniq_spdx_id of collection licenses is missing, so duplicates would not be refused: "+
			"call Store.EnsureIndexes once, run the migrate package's built-in migrations, or open the Store with Options.EnsureIndexes (invalid)")
}
