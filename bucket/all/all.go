// Package all registers the gocloud.dev/blob openers of every cloud the
// harmonia command serves, for programs that want the same: import it
// for its side effect.
//
//	import _ "github.com/harmonia-ml/harmonia/bucket/all"
//
// It registers s3:// (Amazon S3 and compatible servers: MinIO, Ceph,
// Cloudflare R2, Google Cloud Storage's interoperability endpoint),
// gs:// and az://, besides file:// and mem://. A program that needs one
// cloud only imports that opener instead (_ "gocloud.dev/blob/s3blob")
// and links less.
package all

import (
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/memblob"  // mem://
	_ "gocloud.dev/blob/s3blob"   // s3://
)
