package httpapi_test

import (
	"context"
	"flag"
	"os"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite openapi.json from the handler's types")

// TestOpenAPIDocument checks that the served document is a valid OpenAPI
// 3.1 document and that the checked-in openapi.json is the same: when a
// type or a route changes, run `go test ./httpapi -run OpenAPIDocument
// -update` and commit the result.
func TestOpenAPIDocument(t *testing.T) {
	b := setup(t, nil)
	require.True(t, b.doc.IsOpenAPI31OrLater())
	require.NoError(t, b.doc.Validate(context.Background()))
	served := b.handler.OpenAPI()
	if *update {
		require.NoError(t, os.WriteFile("openapi.json", served, 0o644))
	}
	onDisk, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	require.Equal(t, string(served), string(onDisk), "httpapi/openapi.json is stale: run go test ./httpapi -run OpenAPIDocument -update")

	// Every operation has an id, a scope, and problem documents for its errors.
	for path, item := range b.doc.Paths.Map() {
		for method, op := range item.Operations() {
			require.NotEmpty(t, op.OperationID, "%s %s", method, path)
			require.Contains(t, op.Extensions, "x-harmonia-scope", "%s %s", method, path)
			bad := op.Responses.Status(400)
			require.NotNil(t, bad, "%s %s", method, path)
			require.NotNil(t, bad.Value.Content.Get("application/problem+json"), "%s %s", method, path)
		}
	}
	_ = openapi3.T{}
}
