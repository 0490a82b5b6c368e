package bucket

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"gocloud.dev/blob"
)

// Options says which buckets a [Set] may read and write. The zero value
// admits none.
type Options struct {
	// Allow lists the URLs of the buckets the Set opens, each as its
	// opener takes it: "s3://models?region=eu-west-1",
	// "s3://models?endpoint=http://127.0.0.1:9000&use_path_style=true&disable_https=true",
	// "gs://weights", "az://container", "file:///srv/models",
	// "mem://scratch". An object path is admitted when its scheme and
	// bucket (host) are an entry's; for file:// when it lies under the
	// entry's directory. Query parameters configure the opener and are
	// never shown: an error names a bucket by [Redact]. Credentials come
	// from each cloud's usual environment and profile, not from here.
	// Defaults to none.
	Allow []string
	// Buckets are buckets the caller opened, by the URL its object paths
	// start with: "s3://models", "mem://scratch", "file:///srv/models".
	// The Set does not close them. Defaults to none.
	Buckets map[string]*blob.Bucket
	// Mux opens the Allow URLs. Defaults to blob.DefaultURLMux(), which
	// knows the schemes of the opener packages the program imports
	// (gocloud's blank-import convention: _ "gocloud.dev/blob/s3blob",
	// or this module's bucket/all).
	Mux *blob.URLMux
}

// Set is the buckets a program allows, opened. Its methods are safe for
// concurrent use. Object paths are URLs: "s3://models/resnet/1.onnx"
// names key "resnet/1.onnx" of bucket "s3://models".
type Set struct {
	byID  map[string]*blob.Bucket // "scheme://host" of non-file buckets
	dirs  []fileBucket            // file:// buckets, longest directory first
	owned []*blob.Bucket          // opened by New, closed by Close
}

// fileBucket is a file:// bucket and the directory it serves.
type fileBucket struct {
	dir string
	b   *blob.Bucket
}

// New opens the buckets opts allows. It makes no network request: an
// opener only reads its configuration (region, credentials chain), and a
// bucket that does not exist or cannot be read shows on first use.
//
// Errors: an [*Error] with Kind [ErrInvalid] for a URL that does not name
// a bucket, names one twice, or that no imported opener serves (the
// error says which package to import).
func New(ctx context.Context, opts *Options) (*Set, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	mux := o.Mux
	if mux == nil {
		mux = blob.DefaultURLMux()
	}
	s := &Set{byID: map[string]*blob.Bucket{}}
	add := func(raw string, b *blob.Bucket) error {
		id, dir, err := bucketID(raw)
		if err != nil {
			return err
		}
		if _, dup := s.byID[id]; dup {
			return &Error{Op: "open", Path: Redact(raw), Kind: ErrInvalid, Reason: "the bucket is named twice"}
		}
		if b == nil {
			if b, err = mux.OpenBucket(ctx, raw); err != nil {
				e := &Error{Op: "open", Path: Redact(raw), Kind: ErrInvalid, Err: redactErr(err)}
				if u, _ := url.Parse(raw); u != nil && !mux.ValidBucketScheme(u.Scheme) {
					e.Reason, e.Err = fmt.Sprintf("no opener for scheme %q: import its opener package (gocloud.dev/blob/%sblob)", u.Scheme, openerName(u.Scheme)), nil
				}
				return e
			}
			s.owned = append(s.owned, b)
		}
		s.byID[id] = b
		if dir != "" {
			s.dirs = append(s.dirs, fileBucket{dir: dir, b: b})
		}
		return nil
	}
	for _, raw := range o.Allow {
		if err := add(raw, nil); err != nil {
			s.Close()
			return nil, err
		}
	}
	for raw, b := range o.Buckets {
		if b == nil {
			s.Close()
			return nil, &Error{Op: "open", Path: Redact(raw), Kind: ErrInvalid, Reason: "the bucket is nil"}
		}
		if err := add(raw, b); err != nil {
			s.Close()
			return nil, err
		}
	}
	slices.SortFunc(s.dirs, func(a, b fileBucket) int { return len(b.dir) - len(a.dir) })
	return s, nil
}

// openerName is the gocloud package name of scheme's opener, less "blob".
func openerName(scheme string) string {
	if n, ok := map[string]string{"gs": "gcs", "az": "azure"}[scheme]; ok {
		return n
	}
	return scheme
}

// bucketID returns the identity of the bucket URL raw: "scheme://host",
// or for file:// "file://" and its directory, which it also returns.
func bucketID(raw string) (id, dir string, err error) {
	bad := func(reason string) error {
		return &Error{Op: "open", Path: Redact(raw), Kind: ErrInvalid, Reason: reason}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "", "", bad("not a bucket URL (scheme://bucket)")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return "", "", bad("a file:// bucket must not name a remote host")
		}
		if !path.IsAbs(u.Path) || path.Clean(u.Path) != u.Path {
			return "", "", bad("a file:// bucket must hold a clean absolute directory")
		}
		return "file://" + u.Path, u.Path, nil
	}
	if u.Host == "" {
		return "", "", bad("the URL names no bucket (scheme://bucket)")
	}
	if u.Path != "" && u.Path != "/" {
		return "", "", bad("the URL must name a bucket only, without a key or prefix path (use a prefix query parameter)")
	}
	return scheme + "://" + u.Host, "", nil
}

// Close closes the buckets New opened from URLs; buckets the caller
// passed stay open. Closing a nil Set does nothing.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, b := range s.owned {
		if err := b.Close(); err != nil {
			errs = append(errs, redactErr(err))
		}
	}
	s.owned = nil
	return errors.Join(errs...)
}

// IsBucketPath reports whether p is a URL with a scheme other than file
// (s3://, gs://, az://, mem:// …): a path that only a [Set] can read,
// never a local file.
func IsBucketPath(p string) bool {
	u, err := url.Parse(p)
	return err == nil && len(u.Scheme) > 1 && !strings.EqualFold(u.Scheme, "file")
}

// Admits reports whether the object path p names an object of a bucket
// in s. A nil Set admits nothing.
func (s *Set) Admits(p string) bool {
	if s == nil {
		return false
	}
	_, _, err := s.locate("", p)
	return err == nil
}

// locate returns the bucket and key of the object path p.
func (s *Set) locate(op, p string) (*blob.Bucket, string, error) {
	bad := func(kind error, reason string) error {
		return &Error{Op: op, Path: Redact(p), Kind: kind, Reason: reason}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return nil, "", bad(ErrInvalid, "not an object URL (scheme://bucket/key)")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, "", bad(ErrInvalid, "an object path must not carry user information, a query or a fragment: the bucket's options are the program's")
	}
	if s == nil {
		return nil, "", bad(ErrNotAllowed, "the bucket is not among the allowed buckets: none is allowed")
	}
	if strings.EqualFold(u.Scheme, "file") {
		if u.Host != "" && u.Host != "localhost" {
			return nil, "", bad(ErrInvalid, "a file URL must not name a remote host")
		}
		clean := path.Clean(u.Path)
		if !path.IsAbs(u.Path) || clean != u.Path {
			return nil, "", bad(ErrInvalid, "a file URL must hold a clean absolute path")
		}
		for _, d := range s.dirs {
			if key, ok := strings.CutPrefix(clean, d.dir+"/"); ok || d.dir == "/" {
				if d.dir == "/" {
					key = strings.TrimPrefix(clean, "/")
				}
				if key != "" {
					return d.b, key, nil
				}
			}
		}
		return nil, "", bad(ErrNotAllowed, "the file is not under an allowed file:// bucket")
	}
	b := s.byID[strings.ToLower(u.Scheme)+"://"+u.Host]
	if b == nil {
		return nil, "", bad(ErrNotAllowed, "the bucket is not among the allowed buckets")
	}
	key := strings.TrimPrefix(u.Path, "/")
	if key == "" || strings.HasSuffix(key, "/") {
		return nil, "", bad(ErrInvalid, "the path names no object key")
	}
	return b, key, nil
}
