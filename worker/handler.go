package worker

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/harmonia-ml/harmonia"
)

// paramsArtifact decodes job's params into p and loads the artifact
// *id, the params' artifact, names. Bad params and a missing artifact are permanent failures.
func paramsArtifact(ctx context.Context, store *harmonia.Store, job *harmonia.Job, p interface{ Validate() error }, id *bson.ObjectID) (*harmonia.ModelArtifact, error) {
	if err := job.DecodeParams(p); err != nil {
		return nil, harmonia.Permanent(err)
	}
	if err := p.Validate(); err != nil {
		return nil, harmonia.Permanent(err)
	}
	a, err := store.GetArtifact(ctx, *id)
	if errors.Is(err, harmonia.ErrNotFound) {
		return nil, harmonia.Permanent(err)
	}
	return a, err
}

// checkHandlerArgs checks a built-in handler's store and root and returns
// root made absolute.
func checkHandlerArgs(store *harmonia.Store, root string) (string, error) {
	if store == nil {
		return "", harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "store", "a *Store is required (from harmonia.Open)")
	}
	if root == "" {
		return "", harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "root", "a root directory is required: artifact paths are taken under it")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "root", "%v", err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return "", harmonia.Errorf(harmonia.CodeInvalid, EntityWorker, "root", "%s must be an existing directory", abs)
	}
	return abs, nil
}

// localPath returns p, an artifact's local path or file:// URI, as a path
// relative to root. A relative path is taken under root; an absolute one
// must lie under it. Any path that leaves root lexically fails here;
// os.Root refuses the ones that leave it through symbolic links.
func localPath(root, p string) (string, error) {
	if scheme, ok := harmonia.URIScheme(p); ok {
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
