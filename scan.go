package harmonia

import (
	"context"
	"iter"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ScanBatchSize is how many documents the All* iterators read per round
// trip.
const ScanBatchSize = 500

// AllLicenses yields the licenses in SPDX id order, reading ScanBatchSize
// of them per round trip, so that memory does not grow with the
// collection. With ids, only those licenses (ids that name none are left
// out). The sequence stops at the first error, which it yields with a nil
// license.
//
// The iterators read with one cursor each; they are not a snapshot: a
// document written while a scan runs may or may not be seen.
func (s *Store) AllLicenses(ctx context.Context, ids []bson.ObjectID) iter.Seq2[*License, error] {
	return scan[License](ctx, s.cols.licenses, EntityLicense, ids, bson.D{{Key: "spdx_id", Value: 1}})
}

// AllDatasets yields the datasets in natural-key order (name, then
// version), as [Store.AllLicenses] does.
func (s *Store) AllDatasets(ctx context.Context, ids []bson.ObjectID) iter.Seq2[*Dataset, error] {
	return scan[Dataset](ctx, s.cols.datasets, EntityDataset, ids, bson.D{{Key: "name", Value: 1}, {Key: "version", Value: 1}})
}

// AllArtifacts yields the artifacts in natural-key order (name, then
// version), as [Store.AllLicenses] does.
func (s *Store) AllArtifacts(ctx context.Context, ids []bson.ObjectID) iter.Seq2[*ModelArtifact, error] {
	return scan[ModelArtifact](ctx, s.cols.artifacts, EntityArtifact, ids, bson.D{{Key: "name", Value: 1}, {Key: "version", Value: 1}})
}

// AllVersions yields the published versions, oldest first (by
// published_at, then version tag), as [Store.AllLicenses] does. Versions
// that a staged publish has not finished are left out.
func (s *Store) AllVersions(ctx context.Context) iter.Seq2[*InventoryVersion, error] {
	return scanFilter[InventoryVersion](ctx, s.cols.versions, EntityVersion,
		bson.D{{Key: "state", Value: VersionPublished}},
		bson.D{{Key: "published_at", Value: 1}, {Key: "version_tag", Value: 1}}, ScanBatchSize)
}

// scan yields the documents of col (only those with the given ids when
// ids is not nil) in sort order.
func scan[T any](ctx context.Context, col *mongo.Collection, entity string, ids []bson.ObjectID, sort bson.D) iter.Seq2[*T, error] {
	filter := bson.D{}
	if ids != nil {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
	}
	return scanFilter[T](ctx, col, entity, filter, sort, ScanBatchSize)
}

// scanFilter yields the documents of col matching filter, in sort order
// (nil: the server's), reading batch of them per round trip.
func scanFilter[T any](ctx context.Context, col *mongo.Collection, entity string, filter, sort bson.D, batch int32) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		o := options.Find().SetBatchSize(batch)
		if sort != nil {
			o.SetSort(sort)
		}
		cur, err := col.Find(ctx, filter, o)
		if err != nil {
			yield(nil, wrapErr(entity, "scan", err))
			return
		}
		defer cur.Close(context.WithoutCancel(ctx))
		for cur.Next(ctx) {
			v := new(T)
			if err := cur.Decode(v); err != nil {
				yield(nil, wrapErr(entity, "decode", err))
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := cur.Err(); err != nil {
			yield(nil, wrapErr(entity, "scan", err))
		}
	}
}

// ArtifactsMatching yields every artifact f selects, in id order, through
// one cursor that reads ScanBatchSize of them per round trip. f.Limit is
// ignored (stop ranging instead); f.After applies. Where
// [Store.ListArtifacts] pages, each page is a query of its own, which a
// server without an index on the filter (the embedded server has none
// but _id's) answers by reading the whole collection again: ten pages of
// 1,000 among 10,000 artifacts read 100,000 documents, one cursor 10,000.
// The sequence stops at the first error, which it yields with a nil
// artifact.
func (s *Store) ArtifactsMatching(ctx context.Context, f ArtifactFilter) iter.Seq2[*ModelArtifact, error] {
	return scanFilter[ModelArtifact](ctx, s.cols.artifacts, EntityArtifact, filterDoc(f), bson.D{{Key: "_id", Value: 1}}, ScanBatchSize)
}
