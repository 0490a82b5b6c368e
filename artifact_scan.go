package harmonia

import (
	"context"
	"iter"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ArtifactsMatching yields every artifact f selects, in id order, through
// one cursor that reads ScanBatchSize of them per round trip. f.Limit is
// ignored (stop ranging instead); f.After applies. Where
// [Store.ListArtifacts] pages, each page is a query of its own, which a
// server without an index on the filter (the embedded server has none
// but _id's) answers by reading the whole collection again: ten pages of
// 1,000 among 10,000 artifacts read 100,000 documents, one cursor 10,000.
// The sequence stops at the first error, which it yields with a nil
// artifact.
func (s *Store) ArtifactsMatching(ctx context.Context, f Filter) iter.Seq2[*ModelArtifact, error] {
	return scanFilter[ModelArtifact](ctx, s.cols.artifacts, EntityArtifact, filterDoc(f), bson.D{{Key: "_id", Value: 1}}, ScanBatchSize)
}
