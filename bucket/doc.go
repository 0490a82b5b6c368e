// Package bucket reads and writes model artifacts in object storage
// (S3 and its compatibles, Google Cloud Storage, Azure Blob Storage, a
// local directory, memory) through gocloud.dev/blob, for the validate
// and download handlers and the harmonia command: the artifacts' own
// paths, and the sources download jobs read from.
//
// # Paths and the allow-list
//
// An artifact's path names an object by URL: "s3://models/resnet/1.onnx"
// is key "resnet/1.onnx" of bucket "s3://models". A [Set] reads and
// writes only the buckets its [Options] allow, each given once by the
// URL its opener takes, options included
// ("s3://models?region=eu-west-1"), or opened by the caller. Nothing is
// allowed by default. An object path itself carries no query and no user
// information: whoever writes artifact paths or enqueues jobs chooses
// neither endpoints nor credentials.
//
// # Openers
//
// This package imports no cloud SDK. The schemes a program serves are
// those of the gocloud opener packages it imports for their side effect,
// gocloud's convention:
//
//	import _ "gocloud.dev/blob/s3blob" // s3://, also MinIO, Ceph, R2
//
// or all of them at once with [github.com/harmonia-ml/harmonia/bucket/all].
// Credentials come from each cloud's usual chain (environment variables,
// shared profile, instance or workload identity); a Set never sees them.
//
// # Checks
//
// [Set.Verify] compares the expected size with the object's attributes
// before reading a byte, then streams the object once through SHA-256
// and compares its attributes after the read with those before.
// [Set.Open] opens an object for reading, such as a download job's
// source (s3://incoming/resnet.onnx), after comparing its size with the
// expected one from its attributes, so a mismatching object costs no
// GET; its [Reader] reports an object changed while it was read.
// [Set.Write] streams into an object, hashing in flight, and commits it
// only when size and digest match. Every failure is an [*Error] whose
// Kind tells a missing object, a denied read, an object changed while it
// was read, a size and a sha256 mismatch apart, and which says whether it
// is transient. Error texts never hold a query value or user information
// of a URL: see [Redact].
package bucket
