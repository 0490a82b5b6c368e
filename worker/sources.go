package worker

import (
	"context"
	"errors"
	"fmt"
	"github.com/harmonia-ml/harmonia"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/harmonia-ml/harmonia/bucket"
)

// maxRedirects is how many redirects a download follows when the
// client has no CheckRedirect of its own (net/http's default policy).
const maxRedirects = 10

// sources opens the download sources a [DownloadOptions] admits.
type sources struct {
	client  *http.Client
	buckets *bucket.Set
	dirs    []string
	hosts   []allowedHost
}

// allowedHost is one entry of DownloadOptions.AllowedHosts; an empty
// port admits every port.
type allowedHost struct{ name, port string }

// errRedirectRefused is what the download client's CheckRedirect returns
// for a redirect to a host that is not allowed.
var errRedirectRefused = errors.New("redirect to a host that is not allowed")

// newSources checks opts and returns the sources they admit.
func newSources(opts *DownloadOptions) (*sources, error) {
	var o DownloadOptions
	if opts != nil {
		o = *opts
	}
	s := &sources{buckets: o.Buckets}
	for _, d := range o.AllowedDirs {
		if d == "" {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "allowed_dirs", "an allowed directory must not be empty")
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "allowed_dirs", "%s: %v", d, err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "allowed_dirs", "%s must be an existing directory", abs)
		}
		s.dirs = append(s.dirs, abs)
	}
	for _, h := range o.AllowedHosts {
		u, err := url.Parse("//" + h)
		if err != nil || h == "" || u.Host != h || u.Hostname() == "" || u.User != nil || u.Path != "" {
			return nil, harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "allowed_hosts", "%q must be a host name, optionally with a port (example.com, example.com:8443, [::1]:8080)", h)
		}
		s.hosts = append(s.hosts, allowedHost{name: strings.ToLower(u.Hostname()), port: u.Port()})
	}
	client := http.DefaultClient
	if o.Client != nil {
		client = o.Client
	}
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !s.hostAllowed(req.URL) {
			return errRedirectRefused
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	s.client = &c
	return s, nil
}

// refused is the error of a source outside the options. It names only
// the kind of refusal, never anything learnt about the target.
func refused(reason string) error {
	return harmonia.Permanent(&harmonia.Error{Code: harmonia.CodeInvalid, Entity: harmonia.EntityJob, Field: "params.source", Reason: reason, Err: ErrSourceNotAllowed})
}

// hostAllowed reports whether u's host (and port) is allowed.
func (s *sources) hostAllowed(u *url.URL) bool {
	name, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	for _, h := range s.hosts {
		if h.name == name && (h.port == "" || h.port == port) {
			return true
		}
	}
	return false
}

// open opens source for reading, provided it is admitted; want is the
// artifact's size.
func (s *sources) open(ctx context.Context, source string, want int64) (io.ReadCloser, error) {
	if err := harmonia.CheckDownloadSource(source); err != nil {
		return nil, harmonia.Permanent(err)
	}
	u, err := url.Parse(source)
	if err != nil {
		return nil, harmonia.Permanent(err)
	}
	switch strings.ToLower(u.Scheme) {
	case "file":
		return s.openFile(filepath.FromSlash(u.Path))
	case "http", "https":
		return s.get(ctx, u, want)
	}
	return s.openObject(ctx, source, want)
}

// openObject opens the object at source in an allowed bucket, after
// checking its size against want from its attributes.
func (s *sources) openObject(ctx context.Context, source string, want int64) (io.ReadCloser, error) {
	r, err := s.buckets.Open(ctx, source, want)
	if errors.Is(err, bucket.ErrNotAllowed) {
		return nil, refused("the bucket is not among the download handler's allowed buckets")
	}
	if err != nil {
		return nil, bucketErr(err)
	}
	return r, nil
}

// openFile opens the regular file at the absolute path p when it lies
// under an allowed directory, without following a symbolic link out of
// that directory.
func (s *sources) openFile(p string) (io.ReadCloser, error) {
	const (
		outside    = "the file is not under the download handler's allowed directories"
		notRegular = "only regular files are read from the download handler's allowed directories"
	)
	for _, dir := range s.dirs {
		rel, err := filepath.Rel(dir, p)
		if err != nil || !filepath.IsLocal(rel) {
			continue
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		fi, err := root.Stat(rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("source file %s does not exist", p)
		case err != nil:
			// A link out of the directory, or one that cannot be
			// followed: refused alike, whatever lies behind it.
			return nil, refused(outside)
		case !fi.Mode().IsRegular():
			return nil, refused(notRegular)
		}
		f, err := root.Open(rel)
		if err != nil {
			return nil, err
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, refused(notRegular)
		}
		return f, nil
	}
	return nil, refused(outside)
}

// get sends a GET for u to an allowed host and returns the body of a 200
// answer. 4xx answers other than 408 and 429 fail for good.
func (s *sources) get(ctx context.Context, u *url.URL, want int64) (io.ReadCloser, error) {
	if !s.hostAllowed(u) {
		return nil, refused("the host is not among the download handler's allowed hosts")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, harmonia.Permanent(err)
	}
	resp, err := s.client.Do(req)
	if errors.Is(err, errRedirectRefused) {
		return nil, refused("the source redirects to a host that is not among the download handler's allowed hosts")
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
			return nil, harmonia.Permanent(err)
		}
		return nil, err
	}
	if resp.ContentLength >= 0 && resp.ContentLength != want {
		resp.Body.Close()
		return nil, fmt.Errorf("size mismatch: the source announces a length other than the artifact's %d bytes", want)
	}
	return resp.Body, nil
}
