package httpapi

import "github.com/getkin/kin-openapi/openapi3"

// operations lists every operation, in the order of the OpenAPI
// document's tags.
func (h *Handler) operations() []*operation {
	var ops []*operation
	ops = append(ops, h.licenseOperations()...)
	ops = append(ops, h.artifactOperations()...)
	ops = append(ops, h.datasetOperations()...)
	ops = append(ops, h.versionOperations()...)
	ops = append(ops, h.aliasOperations()...)
	ops = append(ops, h.jobOperations()...)
	ops = append(ops, h.checkOperations()...)
	return ops
}

func intSchema(minimum float64) *openapi3.Schema { return openapi3.NewInt64Schema().WithMin(minimum) }

// seqSchema is a move's sequence number in a header: decimal digits.
func seqSchema() *openapi3.Schema {
	return &openapi3.Schema{Type: &openapi3.Types{"string"}, Pattern: "^[0-9]{1,18}$"}
}
