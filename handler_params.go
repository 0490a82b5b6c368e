package harmonia

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Built-in job types.
const (
	JobDownload  JobType = "download"
	JobValidate  JobType = "validate"
	JobInference JobType = "inference"
)

// ValidateParams are the params of a [JobValidate] job.
type ValidateParams struct {
	// ArtifactID is the artifact whose local file is checked.
	ArtifactID bson.ObjectID `bson:"artifact_id" json:"artifact_id"`
}

// Validate checks that an artifact is named.
func (p *ValidateParams) Validate() error { return requireArtifact(p.ArtifactID) }

// DownloadParams are the params of a [JobDownload] job.
type DownloadParams struct {
	// ArtifactID is the artifact whose local file the download writes.
	ArtifactID bson.ObjectID `bson:"artifact_id" json:"artifact_id"`
	// Source is where the file comes from: a file://, http:// or https://
	// URL.
	Source string `bson:"source" json:"source"`
}

// Validate checks that an artifact is named and that the source is a
// file, http or https URL.
func (p *DownloadParams) Validate() error {
	if err := requireArtifact(p.ArtifactID); err != nil {
		return err
	}
	if msg := sourceProblem(p.Source); msg != "" {
		return invalidf(EntityJob, "params.source", "%s", msg)
	}
	return nil
}

// InferenceParams are the params of a [JobInference] job.
type InferenceParams struct {
	// ArtifactID is the model the inference runs.
	ArtifactID bson.ObjectID `bson:"artifact_id" json:"artifact_id"`
	// Input is the caller's input document, passed to the InferenceFunc
	// as it is.
	Input bson.Raw `bson:"input,omitempty" json:"input,omitempty"`
}

// Validate checks that an artifact is named.
func (p *InferenceParams) Validate() error { return requireArtifact(p.ArtifactID) }

func requireArtifact(id bson.ObjectID) error {
	if id.IsZero() {
		return invalidf(EntityJob, "params.artifact_id", "is required: the id of the artifact the job works on")
	}
	return nil
}

// downloadSchemes are the source schemes a download accepts.
var downloadSchemes = map[string]bool{"file": true, "http": true, "https": true}

// sourceProblem returns why s is not an acceptable download source, or "".
func sourceProblem(s string) string {
	if s == "" {
		return "is required: a file://, http:// or https:// URL"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a valid URL: " + err.Error()
	}
	scheme := strings.ToLower(u.Scheme)
	if !downloadSchemes[scheme] {
		return fmt.Sprintf("scheme %q is not allowed: use file, http or https", u.Scheme)
	}
	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return "file URLs must not name a remote host"
		}
		if !path.IsAbs(u.Path) || path.Clean(u.Path) != u.Path {
			return "file URLs must hold a clean absolute path"
		}
	} else if u.Host == "" {
		return "must name a host"
	}
	return ""
}

// artifactParams are the built-in params types, which all name an
// artifact.
type artifactParams interface {
	Validate() error
	artifactID() bson.ObjectID
}

func (p *ValidateParams) artifactID() bson.ObjectID { return p.ArtifactID }

func (p *DownloadParams) artifactID() bson.ObjectID { return p.ArtifactID }

func (p *InferenceParams) artifactID() bson.ObjectID { return p.ArtifactID }

// paramsArtifact decodes job's params into p and loads the artifact they
// name. Bad params and a missing artifact are permanent failures.
func paramsArtifact(ctx context.Context, store *Store, job *Job, p artifactParams) (*ModelArtifact, error) {
	if err := job.DecodeParams(p); err != nil {
		return nil, Permanent(err)
	}
	if err := p.Validate(); err != nil {
		return nil, Permanent(err)
	}
	a, err := store.GetArtifact(ctx, p.artifactID())
	if errors.Is(err, ErrNotFound) {
		return nil, Permanent(err)
	}
	return a, err
}

// checkHandlerArgs checks a built-in handler's store and root and returns
// root made absolute.
func checkHandlerArgs(store *Store, root string) (string, error) {
	if store == nil {
		return "", invalidf(EntityWorker, "store", "a *Store is required (from harmonia.Open)")
	}
	if root == "" {
		return "", invalidf(EntityWorker, "root", "a root directory is required: artifact paths are taken under it")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", invalidf(EntityWorker, "root", "%v", err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return "", invalidf(EntityWorker, "root", "%s must be an existing directory", abs)
	}
	return abs, nil
}

// localPath returns p, an artifact's local path or file:// URI, as a path
// relative to root. A relative path is taken under root; an absolute one
// must lie under it. Any path that leaves root lexically fails here;
// os.Root refuses the ones that leave it through symbolic links.
func localPath(root, p string) (string, error) {
	if scheme, ok := uriScheme(p); ok {
		if scheme != "file" {
			return "", mismatch("path %s is not a local file (scheme %s)", p, scheme)
		}
		u, err := url.Parse(p)
		if err != nil {
			return "", mismatch("path %s: %v", p, err)
		}
		p = u.Path
	}
	rel := filepath.FromSlash(p)
	if filepath.IsAbs(rel) {
		var err error
		if rel, err = filepath.Rel(root, rel); err != nil {
			return "", mismatch("path %s escapes the root %s", p, root)
		}
	}
	if !filepath.IsLocal(rel) {
		return "", mismatch("path %s escapes the root %s", p, root)
	}
	return rel, nil
}
