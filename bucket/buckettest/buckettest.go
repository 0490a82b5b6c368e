// Package buckettest runs an S3-compatible server in process, on a
// loopback HTTP listener, for tests of code that reads and writes
// buckets through gocloud.dev/blob/s3blob (and so through the AWS SDK's
// real HTTP client). The server is github.com/johannesboyne/gofakes3
// with its in-memory backend.
//
//	srv := buckettest.NewS3(t, "models")
//	set, err := bucket.New(ctx, &bucket.Options{Allow: []string{srv.BucketURL("models")}})
//
// NewS3 sets fake static credentials in the test's environment
// (t.Setenv), so a test that uses it cannot call t.Parallel.
package buckettest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	_ "gocloud.dev/blob/s3blob" // the s3:// opener the bucket URLs need
)

// Credentials are the fake static credentials [NewS3] puts in the
// environment, by variable name. The server checks no signature.
var Credentials = map[string]string{
	"AWS_ACCESS_KEY_ID":         "buckettest",
	"AWS_SECRET_ACCESS_KEY":     "buckettest-secret",
	"AWS_REGION":                "us-east-1",
	"AWS_EC2_METADATA_DISABLED": "true",
	// gofakes3 sends no checksums: validating them would only warn.
	"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
	"AWS_CONFIG_FILE":                  "/nonexistent/buckettest/config",
	"AWS_SHARED_CREDENTIALS_FILE":      "/nonexistent/buckettest/credentials",
}

// S3 is an in-process S3 server.
type S3 struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL     string
	backend *s3mem.Backend
	srv     *httptest.Server

	mu       sync.Mutex
	requests map[string]int // "METHOD /bucket/key"
	wrap     func(http.ResponseWriter, *http.Request, http.Handler)
}

// NewS3 starts a server with the given buckets, sets [Credentials] in
// the test's environment and stops the server at the test's cleanup.
func NewS3(t testing.TB, buckets ...string) *S3 {
	t.Helper()
	for k, v := range Credentials {
		t.Setenv(k, v)
	}
	s, err := StartS3(buckets...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartS3 starts a server with the given buckets. It sets no
// credentials: the caller's environment must hold some (see
// [Credentials]). Stop it with Close.
func StartS3(buckets ...string) (*S3, error) {
	s := &S3{backend: s3mem.New(), requests: map[string]int{}}
	for _, b := range buckets {
		if err := s.backend.CreateBucket(b); err != nil {
			return nil, err
		}
	}
	fake := gofakes3.New(s.backend).Server()
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.Method+" "+r.URL.Path]++
		wrap := s.wrap
		s.mu.Unlock()
		if wrap != nil {
			wrap(w, r, fake)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server.
func (s *S3) Close() { s.srv.Close() }

// BucketURL returns the s3:// URL that opens bucket on this server with
// gocloud's s3blob: endpoint, path-style addressing, plain HTTP and a
// region in its query.
func (s *S3) BucketURL(bucket string) string {
	q := url.Values{"endpoint": {s.URL}, "use_path_style": {"true"}, "disable_https": {"true"}, "region": {"us-east-1"}}
	return "s3://" + bucket + "?" + q.Encode()
}

// Put stores data as the object key of bucket, replacing any.
func (s *S3) Put(bucket, key string, data []byte) error {
	_, err := s.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil)
	return err
}

// Get returns the object key of bucket, or an error when there is none.
func (s *S3) Get(bucket, key string) ([]byte, error) {
	obj, err := s.backend.GetObject(bucket, key, nil)
	if err != nil {
		return nil, err
	}
	defer obj.Contents.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(obj.Contents)
	return b.Bytes(), err
}

// Keys returns the keys of the objects in bucket.
func (s *S3) Keys(bucket string) ([]string, error) {
	res, err := s.backend.ListBucket(bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(res.Contents))
	for i, c := range res.Contents {
		keys[i] = c.Key
	}
	return keys, nil
}

// Requests returns how many requests with method (GET, HEAD, PUT …) the
// server received for the object key of bucket.
func (s *S3) Requests(method, bucket, key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[method+" /"+bucket+"/"+key]
}

// Intercept makes every later request go through f, which may answer
// it itself or pass it on to the server with next.ServeHTTP; nil
// removes it.
func (s *S3) Intercept(f func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wrap = f
}

// Deny answers every request for an object under the key prefix of
// bucket with 403 AccessDenied, as S3 does for credentials without the
// right to read it.
func (s *S3) Deny(bucket, prefix string) {
	s.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !strings.HasPrefix(r.URL.Path, "/"+bucket+"/"+prefix) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`))
		}
	})
}

// ReplaceWhileReading makes the next GET of the object key of bucket
// replace the object with data once the first part of the old one has
// been sent, as a concurrent upload would.
func (s *S3) ReplaceWhileReading(bucket, key string, data []byte) {
	var once sync.Once
	s.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method != http.MethodGet || r.URL.Path != "/"+bucket+"/"+key {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&afterFirstWrite{ResponseWriter: w, f: func() {
			// A failed Put leaves the object as it was, which the
			// test that asked for the change then sees.
			once.Do(func() { _ = s.Put(bucket, key, data) })
		}}, r)
	})
}

// afterFirstWrite calls f after the first write of a response body.
type afterFirstWrite struct {
	http.ResponseWriter
	f    func()
	done bool
}

func (a *afterFirstWrite) Write(p []byte) (int, error) {
	n, err := a.ResponseWriter.Write(p)
	if !a.done {
		a.done = true
		if fl, ok := a.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		a.f()
	}
	return n, err
}
