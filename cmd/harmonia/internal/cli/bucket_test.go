package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia/bucket/buckettest"
)

// TestVerifyBucket verifies a version whose artifacts are objects on an
// S3 server: refused without --allow-bucket, checked with it, and no
// credential appears in the output.
func TestVerifyBucket(t *testing.T) {
	srv := buckettest.NewS3(t, "models")
	f := setup(t)
	good, bad := []byte("weights of the good model"), []byte("weights of the bad model")
	require.NoError(t, srv.Put("models", "good.bin", good))
	require.NoError(t, srv.Put("models", "bad.bin", bad))
	digest := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	dir := t.TempDir()
	inv := fmt.Sprintf(`{"format_version": 1,
  "licenses": [{"spdx_id": "MIT", "commercial_use": true}],
  "artifacts": [
    {"name": "good", "version": "1", "path": "s3://models/good.bin", "size_bytes": %d, "hashes": {"sha256": %q}, "license": "MIT"},
    {"name": "bad", "version": "1", "path": "s3://models/bad.bin", "size_bytes": %d, "hashes": {"sha256": %q}, "license": "MIT"}],
  "versions": [{"version_tag": "1.0.0", "artifacts": ["good@1", "bad@1"], "published_by": "test"}]}`,
		len(good), digest(good), len(bad), digest(good))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "inv.json"), []byte(inv), 0o644))
	f.ok("import", filepath.Join(dir, "inv.json"))

	r := f.fails(ExitCheckFailed, "verify", "--root", dir, "--json")
	var out verifyJSON
	require.NoError(t, jsonUnmarshal(r.stdout, &out))
	require.Equal(t, 2, out.FailedArtifact)
	require.Contains(t, out.Artifacts[0].Error, "not among the allowed buckets")

	r = f.fails(ExitCheckFailed, "verify", "--root", dir, "--json", "--allow-bucket", srv.BucketURL("models"))
	out = verifyJSON{}
	require.NoError(t, jsonUnmarshal(r.stdout, &out))
	require.Equal(t, 1, out.FailedArtifact)
	for _, it := range out.Artifacts {
		if it.Artifact == "good@1" {
			require.True(t, it.OK, it.Error)
			require.Equal(t, digest(good), it.SHA256)
		} else {
			require.Contains(t, it.Error, "sha256 mismatch")
		}
	}
	require.NotContains(t, r.stdout+r.stderr, buckettest.Credentials["AWS_SECRET_ACCESS_KEY"])

	r = f.fails(ExitInvalid, "verify", "--root", dir, "--allow-bucket", "nosuch://models?token=hunter2")
	require.Contains(t, r.stderr, "no opener")
	require.NotContains(t, r.stderr, "hunter2")
}
