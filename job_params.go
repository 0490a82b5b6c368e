package harmonia

import (
	"fmt"
	"net/url"
	"path"
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
	// ArtifactID is the artifact whose file the download writes, at its
	// path: under the handler's root, or an object in a bucket.
	ArtifactID bson.ObjectID `bson:"artifact_id" json:"artifact_id"`
	// Source is where the file comes from: a file:// URL of a local
	// file, an http:// or https:// URL, or the URL of an object in a
	// bucket (s3://models/resnet.onnx, gs://…, az://…, mem://…). A
	// bucket URL names the bucket and the object's key only, with no
	// query, user information or fragment: the bucket's endpoint and
	// credentials are the worker's, never the enqueuer's. Which
	// directories, hosts and buckets a download may read is the
	// handler's choice (worker.DownloadOptions).
	Source string `bson:"source" json:"source"`
}

// Validate checks that an artifact is named and that the source is a
// file, http or https URL or a bucket object URL.
func (p *DownloadParams) Validate() error {
	if err := requireArtifact(p.ArtifactID); err != nil {
		return err
	}
	return CheckDownloadSource(p.Source)
}

// CheckDownloadSource checks that s is a download source a
// [DownloadParams] may name: a file:// URL of a clean absolute local
// path, an http:// or https:// URL naming a host, or an s3://, gs://,
// az:// or mem:// URL naming a bucket and an object key, without query,
// user information or fragment. It checks the form only: whether a
// handler admits the source (its directories, hosts and buckets) is the
// handler's own choice.
//
// Errors: [CodeInvalid] on field params.source, saying what is wrong.
func CheckDownloadSource(s string) error {
	if msg := sourceProblem(s); msg != "" {
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

// downloadSchemes are the source schemes a download accepts: true for
// the schemes of object storage, read through the handler's buckets.
var downloadSchemes = map[string]bool{"file": false, "http": false, "https": false,
	"s3": true, "gs": true, "az": true, "mem": true}

// sourceProblem returns why s is not an acceptable download source, or "".
func sourceProblem(s string) string {
	if s == "" {
		return "is required: a file://, http://, https:// or bucket (s3://, gs://, az://, mem://) URL"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "is not a valid URL: " + err.Error()
	}
	scheme := strings.ToLower(u.Scheme)
	inBucket, ok := downloadSchemes[scheme]
	switch {
	case !ok:
		return fmt.Sprintf("scheme %q is not allowed: use file, http, https, s3, gs, az or mem", u.Scheme)
	case inBucket:
		return bucketSourceProblem(u)
	case scheme == "file":
		if u.Host != "" && u.Host != "localhost" {
			return "file URLs must not name a remote host"
		}
		if !path.IsAbs(u.Path) || path.Clean(u.Path) != u.Path {
			return "file URLs must hold a clean absolute path"
		}
	case u.Host == "":
		return "must name a host"
	}
	return ""
}

// bucketSourceProblem returns why the object URL u is not an acceptable
// download source, or "".
func bucketSourceProblem(u *url.URL) string {
	switch key := strings.TrimPrefix(u.Path, "/"); {
	case u.Opaque != "" || u.Host == "":
		return "a bucket URL must name its bucket: scheme://bucket/key"
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "a bucket URL must not carry user information, a query or a fragment: the bucket's endpoint and credentials are the worker's"
	case key == "" || strings.HasSuffix(key, "/"):
		return "a bucket URL must name an object key: scheme://bucket/key"
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
