package harmonia_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/harmonia-ml/harmonia"
	"github.com/harmonia-ml/harmonia/internal/docdb"
)

// Invalid input is refused before anything is written, with an error that
// names the entity, the field and the reason.
func ExampleError() {
	ctx := context.Background()
	store, done := docdb.Store(ctx, nil)
	defer done()

	err := store.CreateArtifact(ctx, &harmonia.ModelArtifact{
		Name: "resnet50", Version: "1.2.0", Path: "../../etc/passwd",
		Hashes: harmonia.Hashes{SHA256: "not-a-digest"},
	})
	var he *harmonia.Error
	if errors.As(err, &he) {
		fmt.Println("code:", he.Code, "entity:", he.Entity)
		for _, f := range he.Fields {
			fmt.Printf("%s: %s\n", f.Field, f.Reason)
		}
	}
	fmt.Println(errors.Is(err, harmonia.ErrInvalid))
	// Output:
	// code: invalid entity: model_artifact
	// path: must not contain .. segments
	// hashes.sha256: must be 64 lowercase hex characters
	// true
}
