package harmonia

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/go-playground/validator/v10"
)

// AllowedURISchemes are the URI schemes a path may use; anything else must
// be a clean local path.
var allowedURISchemes = map[string]bool{"s3": true, "gs": true, "az": true, "http": true, "https": true, "file": true}

// validatorInstance builds the one validator harmonia uses, with its custom
// rules registered once. It is immutable after construction and safe for
// concurrent use.
var validatorInstance = sync.OnceValue(func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("bson"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	rules := map[string]func(string) bool{
		"nocontrol": func(s string) bool { return controlProblem(s) == "" },
		"name":      func(s string) bool { return NameProblem(s) == "" },
		"sha256hex": IsSHA256Hex,
		"storepath": func(s string) bool { return PathProblem(s) == "" },
		"spdx":      func(s string) bool { return spdxProblem(s) == "" },
		"tag":       validTag,
		"jobtype":   validJobType,
	}
	for tag, ok := range rules {
		ok := ok
		if err := v.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
			return fl.Field().Kind() == reflect.String && ok(fl.Field().String())
		}); err != nil {
			panic(err) // unreachable: the tags above are valid names
		}
	}
	return v
})

// validateEntity runs the struct's rules and turns the result into an
// *Error naming the entity and every broken field.
func validateEntity(entity string, v any) error {
	err := validatorInstance().Struct(v)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return &Error{Code: CodeInvalid, Entity: entity, Reason: "cannot be validated", Err: err}
	}
	fields := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		ns := fe.Namespace()
		if _, rest, ok := strings.Cut(ns, "."); ok {
			ns = rest
		}
		fields = append(fields, FieldError{Field: ns, Reason: reasonFor(fe)})
	}
	return &Error{Code: CodeInvalid, Entity: entity, Field: fields[0].Field, Reason: fields[0].Reason, Fields: fields}
}

func reasonFor(fe validator.FieldError) string {
	var s string
	if v := reflect.ValueOf(fe.Value()); v.Kind() == reflect.String {
		s = v.String() // named string types too (JobType, …)
	}
	s = echo(s)
	switch fe.Tag() {
	case "required":
		return "is required"
	case "max":
		if fe.Kind() == reflect.String {
			return "must be at most " + fe.Param() + " characters"
		}
		return "must have at most " + fe.Param() + " items"
	case "gte":
		return "must be at least " + fe.Param()
	case "lte":
		if fe.Param() == "9007199254740991" {
			return "must be at most 2^53-1 (9007199254740991), the largest integer a JSON number holds exactly"
		}
		return "must be at most " + fe.Param()
	case "unique":
		return "must not contain duplicates"
	case "sha256hex":
		return "must be 64 lowercase hex characters"
	case "nocontrol":
		return controlProblem(s)
	case "name":
		return NameProblem(s)
	case "storepath":
		return PathProblem(s)
	case "spdx":
		return spdxProblem(s)
	case "tag":
		return fmt.Sprintf("tag %q must be 1 to 64 lowercase letters, digits or . _ : / + - and start with a letter or digit", s)
	case "jobtype":
		return fmt.Sprintf("job type %q must be lowercase letters, digits, _ . - and start with a letter", s)
	}
	return "fails rule " + fe.Tag()
}

// IsSHA256Hex reports whether s is a SHA-256 digest written as 64
// lowercase hex characters.
func IsSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func controlProblem(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("must not contain control characters (found %U)", r)
		}
	}
	return ""
}

func spdxProblem(s string) string {
	if ok, _ := spdxexp.ValidateLicenses([]string{s}); !ok {
		return fmt.Sprintf("%q is not a valid SPDX license identifier or expression", s)
	}
	return ""
}

func validTag(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && strings.IndexByte("._:/+-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Valid reports whether t is a well-formed job type: lowercase letters,
// digits, _ . and -, starting with a letter.
func (t JobType) Valid() bool { return validJobType(string(t)) }

func validJobType(s string) bool {
	if len(s) == 0 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// PathProblem returns why p is not an acceptable artifact, dataset or
// license-text location, or "" when it is. Accepted are s3://bucket/key,
// gs://bucket/key, az://container/key, http(s)://host/path and file:///path
// URIs, and clean relative or absolute local paths. Refused are NUL bytes
// and control characters, other schemes, and ".." segments anywhere.
func PathProblem(p string) string {
	if p == "" {
		return "is required"
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "must not contain NUL bytes"
	}
	if msg := controlProblem(p); msg != "" {
		return msg
	}
	if scheme, ok := URIScheme(p); ok {
		return uriProblem(p, scheme)
	}
	if hasDotDot(p) {
		return "must not contain .. segments"
	}
	if clean := path.Clean(p); clean != p {
		return fmt.Sprintf("must be a clean path (%q)", clean)
	}
	return ""
}

// URIScheme returns the scheme, lowercased, of p when p, an artifact's
// path, looks like a URI ("scheme:…" with a scheme of two or more
// characters), and false when p is a plain path.
func URIScheme(p string) (string, bool) {
	i := strings.IndexByte(p, ':')
	if i < 2 {
		return "", false
	}
	for j := 0; j < i; j++ {
		c := p[j]
		isAlpha := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !isAlpha && (j == 0 || ((c < '0' || c > '9') && c != '+' && c != '-' && c != '.')) {
			return "", false
		}
	}
	return strings.ToLower(p[:i]), true
}

func uriProblem(p, scheme string) string {
	if !allowedURISchemes[scheme] {
		return fmt.Sprintf("URI scheme %q is not allowed (want s3, gs, az, http, https or file, or a local path)", scheme)
	}
	u, err := url.Parse(p)
	if err != nil {
		return "is not a valid URI: " + err.Error()
	}
	if u.Opaque != "" {
		return "must be " + scheme + "://…"
	}
	if hasDotDot(u.Path) {
		return "must not contain .. segments"
	}
	switch scheme {
	case "s3", "gs", "az":
		if !validBucket(u.Host) {
			return fmt.Sprintf("bucket %q must be 3 to 63 lowercase letters, digits, dots or hyphens", u.Host)
		}
		if strings.TrimPrefix(u.Path, "/") == "" {
			return "must name an object key after the bucket (" + scheme + "://bucket/key)"
		}
	case "http", "https":
		if u.Host == "" {
			return "must name a host"
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return "file URIs must not name a remote host"
		}
		if !path.IsAbs(u.Path) || path.Clean(u.Path) != u.Path {
			return "file URIs must hold a clean absolute path"
		}
	}
	return ""
}

func hasDotDot(p string) bool {
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if seg == ".." {
			return true
		}
	}
	return false
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return b[0] != '.' && b[0] != '-' && b[len(b)-1] != '.' && b[len(b)-1] != '-'
}
