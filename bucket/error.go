package bucket

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"

	"gocloud.dev/gcerrors"
)

// The kinds of failure a Set tells apart. An [*Error] wraps one of them
// (or none, for a failure of the store or the network that fits no kind);
// test with errors.Is:
//
//	errors.Is(err, bucket.ErrNotFound)
var (
	// ErrNotAllowed: the path names a bucket that is not in the Set.
	// Permanent.
	ErrNotAllowed = errors.New("bucket not allowed")
	// ErrInvalid: the path is not a bucket path the Set can read (a
	// query, user information, no object key), or a bucket URL given to
	// [New] cannot be opened. Permanent.
	ErrInvalid = errors.New("invalid bucket path")
	// ErrNotFound: the object (or its bucket) does not exist. Transient,
	// as a missing local file is: an upload may still be on its way.
	ErrNotFound = errors.New("object not found")
	// ErrDenied: the store refused the credentials the program runs with.
	// Permanent: only an operator can fix it.
	ErrDenied = errors.New("access denied")
	// ErrChanged: the object was replaced or deleted while it was read.
	// Transient: the next attempt reads the new object.
	ErrChanged = errors.New("object changed while it was read")
	// ErrSizeMismatch: the object's size is not the one expected.
	// Permanent for [Set.Verify]; transient for [Set.Write], whose source
	// may have been cut short.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrSHA256Mismatch: the object's sha256 is not the one expected.
	// Permanent for [Set.Verify]; transient for [Set.Write].
	ErrSHA256Mismatch = errors.New("sha256 mismatch")
)

// Error is the error of every method of a [Set]. Its text names the path
// with any query and user information removed, and the text of the
// underlying error has every URL in it redacted the same way, so it can
// be logged and stored with a job.
type Error struct {
	// Op is what failed: "open", "read", "verify" or "write".
	Op string
	// Path is the object's path, redacted with [Redact].
	Path string
	// Kind is one of the Err… values of this package, or nil when the
	// failure fits none of them (a network error, a store's internal
	// error).
	Kind error
	// Transient reports whether trying again later may succeed.
	Transient bool
	// Reason says what went wrong, in words; it never holds a secret.
	Reason string
	// Err is the underlying error, if any; its Error text is redacted.
	Err error
}

// Error returns "bucket: OP PATH: REASON: CAUSE".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("bucket: ")
	b.WriteString(e.Op)
	if e.Path != "" {
		b.WriteString(" ")
		b.WriteString(e.Path)
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	} else if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and Err, so errors.Is finds both.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// IsTransient reports whether err is an [*Error] that may go away if the
// operation is tried again later. An error of another type is taken as
// transient.
func IsTransient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Transient
	}
	return true
}

// redacted is an error whose text had its URLs redacted; Unwrap still
// reaches the original, so errors.Is and errors.As see through it.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// redactErr returns err with its text redacted.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return &redacted{msg: RedactText(err.Error()), err: err}
}

// failure classifies err, returned by the store for path, into an Error.
func failure(op, path string, err error) *Error {
	e := &Error{Op: op, Path: Redact(path), Err: redactErr(err), Transient: true}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return e
	case errors.As(err, new(*changedError)):
		e.Kind = ErrChanged
		return e
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		e.Kind = ErrNotFound
	case gcerrors.PermissionDenied:
		e.Kind, e.Transient = ErrDenied, false
	case gcerrors.FailedPrecondition:
		e.Kind = ErrChanged
	case gcerrors.InvalidArgument, gcerrors.Unimplemented, gcerrors.AlreadyExists:
		e.Transient = false
	}
	return e
}

// safeParams are the query parameters of bucket URLs that hold no
// secret: [Redact] keeps their values.
var safeParams = map[string]bool{
	"region": true, "endpoint": true, "use_path_style": true, "s3ForcePathStyle": true,
	"disable_https": true, "profile": true, "prefix": true, "anonymous": true,
	"dualstack": true, "fips": true, "accelerate": true, "hostname_immutable": true,
	"awssdk": true, "ssetype": true, "domain": true, "protocol": true, "localemu": true,
	"storage_account": true, "cdn": true, "create_dir": true, "dir_file_mode": true,
	"base_url": true, "metadata": true, "nomd5": true, "no_tmp_dir": true,
}

// Redact returns the URL u without user information (name and password)
// and with the value of every query parameter replaced by "REDACTED",
// except parameters known to hold no secret (region, endpoint,
// use_path_style, disable_https, profile, prefix and the like). A string
// that does not parse as a URL is returned as "REDACTED".
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "REDACTED"
	}
	p.User = nil
	if p.RawQuery != "" {
		q := p.Query()
		for k, vs := range q {
			for i, v := range vs {
				if !safeParams[k] {
					vs[i] = "REDACTED"
				} else if strings.Contains(v, "://") {
					vs[i] = Redact(v)
				}
			}
		}
		p.RawQuery = q.Encode()
	}
	return p.String()
}

// urlInText finds URLs in free text.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// RedactText returns s with every URL in it redacted by [Redact].
func RedactText(s string) string {
	return urlInText.ReplaceAllStringFunc(s, func(u string) string {
		trimmed := strings.TrimRight(u, ".,:;)]")
		return Redact(trimmed) + u[len(trimmed):]
	})
}
