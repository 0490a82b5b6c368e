// Package all registers the gocloud.dev/blob openers the harmonia command
// serves, for programs that want the same: import it for its side
// effect.
//
//	import _ "github.com/harmonia-ml/harmonia/bucket/all"
//
// It registers s3:// (Amazon S3 and compatible servers: MinIO, Ceph,
// Cloudflare R2, Google Cloud Storage's interoperability endpoint with
// HMAC keys), az:// (Azure Blob Storage), file:// and mem://. It leaves
// out gs://, the heaviest opener (measured on the harmonia command:
// s3blob adds 26 modules and 12 MB to the binary, azureblob 28 and 14 MB,
// gcsblob 31 and 33 MB); a program that wants it imports
// _ "gocloud.dev/blob/gcsblob" beside this package. A program that needs
// one cloud only imports that opener instead and links less.
package all

import (
	_ "gocloud.dev/blob/azureblob" // az://
	_ "gocloud.dev/blob/fileblob"  // file://
	_ "gocloud.dev/blob/memblob"   // mem://
	_ "gocloud.dev/blob/s3blob"    // s3://
)
