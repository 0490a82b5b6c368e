package harmonia

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Outcome says what a get-or-create call did. Outcomes are results, not
// errors: a natural key that exists with other contents is a
// [CodeConflict] error instead.
type Outcome string

// The outcomes of [Store.GetOrCreateLicense], [Store.GetOrCreateArtifact]
// and [Store.GetOrCreateDataset].
const (
	// Created means nothing had the natural key: the entity was inserted.
	Created Outcome = "created"
	// Unchanged means the natural key exists with the same contents: the
	// stored entity was returned and nothing was written.
	Unchanged Outcome = "unchanged"
)

// NormalizeSPDXID returns the canonical spelling of an SPDX license
// identifier or expression, as the SPDX license list writes it: "mit" and
// " MIT" become "MIT", "apache-2.0" becomes "Apache-2.0". Surrounding
// spaces are removed. An id that the list does not know is returned
// trimmed but otherwise unchanged (validation then refuses it).
// CreateLicense, GetOrCreateLicense and GetLicenseBySPDXID normalise the
// ids they are given, so each license is stored once whatever its
// spelling.
func NormalizeSPDXID(id string) string {
	id = strings.TrimSpace(id)
	norm, invalid := spdxexp.ValidateAndNormalizeLicensesWithOptions([]string{id}, spdxexp.ValidateLicensesOptions{})
	if len(invalid) > 0 || len(norm) != 1 {
		return id
	}
	return norm[0]
}

// difference is one field whose stored value differs from the given one.
type difference struct {
	field         string
	stored, given any
}

// firstDifference returns the first of diffs whose values differ, or nil.
func firstDifference(diffs ...difference) *difference {
	for i := range diffs {
		d := &diffs[i]
		if a, ok := d.stored.([]bson.ObjectID); ok {
			b, _ := d.given.([]bson.ObjectID)
			if !sameIDSet(a, b) {
				return d
			}
			continue
		}
		if d.stored != d.given {
			return d
		}
	}
	return nil
}

// keyConflict is the conflict of a get-or-create whose natural key exists
// with a different value of d.field.
func keyConflict(entity, key string, d *difference) *Error {
	show := func(v any) string {
		switch v := v.(type) {
		case bson.ObjectID:
			if v.IsZero() {
				return "none"
			}
			return v.Hex()
		case []bson.ObjectID:
			return "[" + hexList(v) + "]"
		case string:
			return fmt.Sprintf("%q", v)
		}
		return fmt.Sprint(v)
	}
	return &Error{Code: CodeConflict, Entity: entity, Field: d.field,
		Reason: fmt.Sprintf("%s %s exists with %s %s, not %s", entity, key, d.field, show(d.stored), show(d.given))}
}

// getOrCreate inserts with create; when the natural key exists already it
// reads the stored entity with get and compares it with compare.
func getOrCreate[T any](ctx context.Context, v *T, create func(context.Context, *T) error,
	get func(context.Context) (*T, error), compare func(stored *T) error) (Outcome, error) {
	err := create(ctx, v)
	if err == nil {
		return Created, nil
	}
	var he *Error
	if !errors.As(err, &he) || he.Code != CodeConflict {
		return "", err
	}
	stored, gerr := get(ctx)
	if gerr != nil {
		return "", gerr
	}
	if err := compare(stored); err != nil {
		return "", err
	}
	*v = *stored
	return Unchanged, nil
}

// GetOrCreateLicense stores l unless a license with its SPDX id (in its
// canonical spelling, see [NormalizeSPDXID]) exists; then it compares
// commercial_use and text_path (Notes is not compared) and, when they are
// the same, returns [Unchanged]. On success l holds the stored license.
// It is safe to call concurrently with the same license.
//
// Errors: [CodeInvalid] (nothing written), [CodeConflict] naming the field
// that differs from the stored license, [CodeInternal].
func (s *Store) GetOrCreateLicense(ctx context.Context, l *License) (Outcome, error) {
	if l == nil {
		return "", nilArgument("license")
	}
	given := *l
	given.SPDXID = NormalizeSPDXID(given.SPDXID)
	return getOrCreate(ctx, l, s.CreateLicense,
		func(ctx context.Context) (*License, error) { return s.GetLicenseBySPDXID(ctx, given.SPDXID) },
		func(st *License) error {
			if d := firstDifference(
				difference{"commercial_use", st.CommercialUse, given.CommercialUse},
				difference{"text_path", st.TextPath, given.TextPath},
			); d != nil {
				return keyConflict(EntityLicense, "spdx_id "+st.SPDXID, d)
			}
			return nil
		})
}

// GetOrCreateArtifact stores a unless an artifact with its name and
// version exists; then it compares, in this order, hashes.sha256,
// size_bytes, path, license_id and dataset_ids (as a set) and, when they
// are all the same, returns [Unchanged] (Tags, Notes and CreatedBy are not
// compared: the stored ones stay). On success a holds the stored artifact.
// It is safe to call concurrently with the same artifact.
//
// Errors: [CodeInvalid] (a field, a missing license or dataset; nothing
// written), [CodeConflict] naming the first field that differs from the
// stored artifact (hashes.sha256 above all: other bytes under an existing
// name@version), [CodeInternal].
func (s *Store) GetOrCreateArtifact(ctx context.Context, a *ModelArtifact) (Outcome, error) {
	if a == nil {
		return "", nilArgument(EntityArtifact)
	}
	given := *a
	return getOrCreate(ctx, a, s.CreateArtifact,
		func(ctx context.Context) (*ModelArtifact, error) {
			return s.GetArtifactByKey(ctx, given.Name, given.Version)
		},
		func(st *ModelArtifact) error {
			if d := firstDifference(
				difference{"hashes.sha256", st.Hashes.SHA256, given.Hashes.SHA256},
				difference{"size_bytes", st.SizeBytes, given.SizeBytes},
				difference{"path", st.Path, given.Path},
				difference{"license_id", st.LicenseID, given.LicenseID},
				difference{"dataset_ids", st.DatasetIDs, given.DatasetIDs},
			); d != nil {
				return keyConflict(EntityArtifact, st.Key(), d)
			}
			return nil
		})
}

// GetOrCreateDataset stores d unless a dataset with its name and version
// exists; then it compares, in this order, hashes.sha256, size_bytes, path
// and license_id and, when they are all the same, returns [Unchanged]
// (Tags, Notes and CreatedBy are not compared). On success d holds the
// stored dataset. It is safe to call concurrently with the same dataset.
//
// Errors: [CodeInvalid] (nothing written), [CodeConflict] naming the first
// field that differs from the stored dataset, [CodeInternal].
func (s *Store) GetOrCreateDataset(ctx context.Context, d *Dataset) (Outcome, error) {
	if d == nil {
		return "", nilArgument(EntityDataset)
	}
	given := *d
	return getOrCreate(ctx, d, s.CreateDataset,
		func(ctx context.Context) (*Dataset, error) { return s.GetDatasetByKey(ctx, given.Name, given.Version) },
		func(st *Dataset) error {
			if diff := firstDifference(
				difference{"hashes.sha256", st.Hashes.SHA256, given.Hashes.SHA256},
				difference{"size_bytes", st.SizeBytes, given.SizeBytes},
				difference{"path", st.Path, given.Path},
				difference{"license_id", st.LicenseID, given.LicenseID},
			); diff != nil {
				return keyConflict(EntityDataset, st.Key(), diff)
			}
			return nil
		})
}

// nilArgument is the error of a call given a nil pointer for entity.
func nilArgument(entity string) *Error {
	return invalidf(entity, "", "a non-nil %s is required", entity)
}
