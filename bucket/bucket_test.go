package bucket_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/harmonia-ml/harmonia/bucket"
	"github.com/harmonia-ml/harmonia/bucket/buckettest"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// memSet returns a Set over one caller-opened memory bucket,
// "mem://models", and that bucket.
func memSet(t *testing.T) (*bucket.Set, *blob.Bucket) {
	t.Helper()
	b := memblob.OpenBucket(nil)
	t.Cleanup(func() { b.Close() })
	s, err := bucket.New(t.Context(), &bucket.Options{Buckets: map[string]*blob.Bucket{"mem://models": b}})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, b
}

func requireKind(t *testing.T, err error, kind error, transient bool) {
	t.Helper()
	require.ErrorIs(t, err, kind)
	var be *bucket.Error
	require.ErrorAs(t, err, &be)
	require.Equal(t, transient, be.Transient, "transient")
	require.Equal(t, transient, bucket.IsTransient(err))
}

func TestVerifyMemory(t *testing.T) {
	t.Parallel()
	s, b := memSet(t)
	ctx := t.Context()
	data := []byte("weights of a small model")
	require.NoError(t, b.WriteAll(ctx, "m/1.bin", data, nil))

	res, err := s.Verify(ctx, "mem://models/m/1.bin", int64(len(data)), digest(data))
	require.NoError(t, err)
	require.Equal(t, &bucket.Result{Path: "mem://models/m/1.bin", SHA256: digest(data), SizeBytes: int64(len(data))}, res)

	_, err = s.Verify(ctx, "mem://models/m/1.bin", int64(len(data))+1, digest(data))
	requireKind(t, err, bucket.ErrSizeMismatch, false)
	_, err = s.Verify(ctx, "mem://models/m/1.bin", int64(len(data)), digest([]byte("other")))
	requireKind(t, err, bucket.ErrSHA256Mismatch, false)
	_, err = s.Verify(ctx, "mem://models/m/2.bin", 1, digest(data))
	requireKind(t, err, bucket.ErrNotFound, true)
	_, err = s.Verify(ctx, "mem://other/m/1.bin", int64(len(data)), digest(data))
	requireKind(t, err, bucket.ErrNotAllowed, false)
	_, err = s.Verify(ctx, "mem://models/m/1.bin?endpoint=http://evil", int64(len(data)), digest(data))
	requireKind(t, err, bucket.ErrInvalid, false)
	_, err = s.Verify(ctx, "mem://models/", 1, digest(data))
	requireKind(t, err, bucket.ErrInvalid, false)

	var nilSet *bucket.Set
	require.False(t, nilSet.Admits("mem://models/m/1.bin"))
	_, err = nilSet.Verify(ctx, "mem://models/m/1.bin", int64(len(data)), digest(data))
	requireKind(t, err, bucket.ErrNotAllowed, false)
	require.NoError(t, nilSet.Close())
	require.True(t, s.Admits("mem://models/m/1.bin"))
	require.False(t, s.Admits("mem://other/m/1.bin"))
}

// TestVerifyFileBucket reads through a file:// bucket given by URL: a
// path under the directory is admitted, one beside it is not.
func TestVerifyFileBucket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := []byte("onnx bytes")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "models", "r"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "models", "r", "1.onnx"), data, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), data, 0o644))
	s, err := bucket.New(t.Context(), &bucket.Options{Allow: []string{"file://" + filepath.ToSlash(filepath.Join(dir, "models"))}})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Verify(t.Context(), "file://"+filepath.ToSlash(filepath.Join(dir, "models", "r", "1.onnx")), int64(len(data)), digest(data))
	require.NoError(t, err)
	_, err = s.Verify(t.Context(), "file://"+filepath.ToSlash(filepath.Join(dir, "secret")), int64(len(data)), digest(data))
	requireKind(t, err, bucket.ErrNotAllowed, false)
	_, err = s.Verify(t.Context(), "file://"+filepath.ToSlash(dir)+"/models/../secret", int64(len(data)), digest(data))
	requireKind(t, err, bucket.ErrInvalid, false)
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"models", "s3://", "s3://models/prefix", "file://host/dir", "file:///a/../b", "nosuch://b"} {
		_, err := bucket.New(t.Context(), &bucket.Options{Allow: []string{raw}})
		require.ErrorIs(t, err, bucket.ErrInvalid, raw)
	}
	_, err := bucket.New(t.Context(), &bucket.Options{Allow: []string{"nosuch://b?token=hunter2"}})
	require.ErrorContains(t, err, "import its opener package")
	require.NotContains(t, err.Error(), "hunter2")
	_, err = bucket.New(t.Context(), &bucket.Options{Allow: []string{"mem://a", "mem://a"}})
	require.ErrorContains(t, err, "named twice")
	s, err := bucket.New(t.Context(), nil)
	require.NoError(t, err)
	_, err = s.Verify(t.Context(), "mem://a/b", 1, "")
	require.ErrorIs(t, err, bucket.ErrNotAllowed)
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"s3://models?region=eu-west-1":                              "s3://models?region=eu-west-1",
		"az://c?sas_token=sv%3D2020%26sig%3Dabc":                    "az://c?sas_token=REDACTED",
		"s3://key:secret@models/x":                                  "s3://models/x",
		"s3://m?endpoint=http%3A%2F%2Fu%3Ap%40minio%3A9000&sig=abc": "s3://m?endpoint=http%3A%2F%2Fminio%3A9000&sig=REDACTED",
	} {
		require.Equal(t, want, bucket.Redact(in), in)
	}
	require.Equal(t, "open s3://models?token=REDACTED: failed", bucket.RedactText("open s3://models?token=abc: failed"))
}

func TestWriteMemory(t *testing.T) {
	t.Parallel()
	s, b := memSet(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("w"), 3<<20)
	res, err := s.Write(ctx, "mem://models/new.bin", bytes.NewReader(data), int64(len(data)), digest(data))
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), res.SizeBytes)
	got, err := b.ReadAll(ctx, "new.bin")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))

	// A mismatch leaves the object that was there as it was, and
	// creates none where there was none.
	_, err = s.Write(ctx, "mem://models/new.bin", bytes.NewReader(data[1:]), int64(len(data)), digest(data))
	requireKind(t, err, bucket.ErrSizeMismatch, true)
	_, err = s.Write(ctx, "mem://models/other.bin", strings.NewReader("x"), int64(len(data)), digest(data))
	requireKind(t, err, bucket.ErrSizeMismatch, true)
	bad := bytes.Clone(data)
	bad[0] = 'x'
	_, err = s.Write(ctx, "mem://models/other.bin", bytes.NewReader(bad), int64(len(data)), digest(data))
	requireKind(t, err, bucket.ErrSHA256Mismatch, true)
	require.NotContains(t, err.Error(), digest(bad), "the error names no digest of what the source gave")
	got, err = b.ReadAll(ctx, "new.bin")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	ok, err := b.Exists(ctx, "other.bin")
	require.NoError(t, err)
	require.False(t, ok)

	_, err = s.Write(ctx, "mem://models/src-fails.bin", io.MultiReader(bytes.NewReader(data[:10]), errReader{}), int64(len(data)), digest(data))
	require.ErrorIs(t, err, errBroken)
	require.True(t, bucket.IsTransient(err))
	ok, err = b.Exists(ctx, "src-fails.bin")
	require.NoError(t, err)
	require.False(t, ok)
}

var errBroken = errors.New("connection reset")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// TestS3 runs the checks through s3blob and the AWS SDK against an S3
// server on a loopback listener.
func TestS3(t *testing.T) {
	srv := buckettest.NewS3(t, "models")
	ctx := t.Context()
	s, err := bucket.New(ctx, &bucket.Options{Allow: []string{srv.BucketURL("models")}})
	require.NoError(t, err)
	defer s.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	require.NoError(t, srv.Put("models", "r/1.onnx", data))

	t.Run("ok", func(t *testing.T) {
		res, err := s.Verify(ctx, "s3://models/r/1.onnx", int64(len(data)), digest(data))
		require.NoError(t, err)
		require.Equal(t, digest(data), res.SHA256)
	})
	t.Run("size mismatch reads no byte", func(t *testing.T) {
		gets := srv.Requests("GET", "models", "r/1.onnx")
		_, err := s.Verify(ctx, "s3://models/r/1.onnx", int64(len(data))-1, digest(data))
		requireKind(t, err, bucket.ErrSizeMismatch, false)
		require.Equal(t, gets, srv.Requests("GET", "models", "r/1.onnx"), "no GET of the object")
		require.Positive(t, srv.Requests("HEAD", "models", "r/1.onnx"))
	})
	t.Run("missing", func(t *testing.T) {
		_, err := s.Verify(ctx, "s3://models/r/none.onnx", 1, digest(data))
		requireKind(t, err, bucket.ErrNotFound, true)
		require.NotContains(t, err.Error(), srv.URL, "the error names no endpoint")
	})
	t.Run("denied", func(t *testing.T) {
		srv.Deny("models", "r/")
		defer srv.Intercept(nil)
		_, err := s.Verify(ctx, "s3://models/r/1.onnx", int64(len(data)), digest(data))
		requireKind(t, err, bucket.ErrDenied, false)
	})
	t.Run("changed while read", func(t *testing.T) {
		other := bytes.Repeat([]byte("fedcba9876543210"), 1<<16)
		srv.ReplaceWhileReading("models", "r/1.onnx", other)
		defer srv.Intercept(nil)
		_, err := s.Verify(ctx, "s3://models/r/1.onnx", int64(len(data)), digest(data))
		requireKind(t, err, bucket.ErrChanged, true)
		got, err := srv.Get("models", "r/1.onnx")
		require.NoError(t, err)
		require.True(t, bytes.Equal(other, got), "the object was replaced during the read")
	})
	t.Run("open", func(t *testing.T) {
		require.NoError(t, srv.Put("models", "r/open.onnx", data))
		r, err := s.Open(ctx, "s3://models/r/open.onnx", int64(len(data)))
		require.NoError(t, err)
		require.Equal(t, int64(len(data)), r.Size())
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		require.True(t, bytes.Equal(data, got))

		gets := srv.Requests("GET", "models", "r/open.onnx")
		_, err = s.Open(ctx, "s3://models/r/open.onnx", int64(len(data))+1)
		requireKind(t, err, bucket.ErrSizeMismatch, true)
		require.NotContains(t, err.Error(), strconv.Itoa(len(data)), "the error names not the object's size")
		require.Equal(t, gets, srv.Requests("GET", "models", "r/open.onnx"), "no GET of the object")
		_, err = s.Open(ctx, "s3://models/r/none.onnx", 1)
		requireKind(t, err, bucket.ErrNotFound, true)
		_, err = s.Open(ctx, "s3://elsewhere/r/1.onnx", 1)
		requireKind(t, err, bucket.ErrNotAllowed, false)
	})
	t.Run("open changed while read", func(t *testing.T) {
		other := bytes.Repeat([]byte("fedcba9876543210"), 1<<16)
		require.NoError(t, srv.Put("models", "r/2.onnx", data))
		srv.ReplaceWhileReading("models", "r/2.onnx", other)
		defer srv.Intercept(nil)
		r, err := s.Open(ctx, "s3://models/r/2.onnx", int64(len(data)))
		require.NoError(t, err)
		defer r.Close()
		_, err = io.Copy(io.Discard, r)
		requireKind(t, err, bucket.ErrChanged, true)
	})
	t.Run("write", func(t *testing.T) {
		_, err := s.Write(ctx, "s3://models/w/1.onnx", bytes.NewReader(data), int64(len(data)), digest(data))
		require.NoError(t, err)
		got, err := srv.Get("models", "w/1.onnx")
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got))
	})
	t.Run("write cancelled midway", func(t *testing.T) {
		big := bytes.Repeat([]byte("z"), 12<<20)
		wctx, cancel := context.WithCancel(ctx)
		src := &cancelAfter{r: bytes.NewReader(big), n: 7 << 20, cancel: cancel}
		_, err := s.Write(wctx, "s3://models/w/2.onnx", src, int64(len(big)), digest(big))
		require.ErrorIs(t, err, context.Canceled)
		keys, err := srv.Keys("models")
		require.NoError(t, err)
		require.NotContains(t, keys, "w/2.onnx")
	})
}

// cancelAfter reads r and calls cancel once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	m, err := c.r.Read(p)
	c.n -= m
	return m, err
}
