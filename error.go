package harmonia

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Code classifies an [Error]. Codes are stable strings that callers may log,
// compare and map to their own transport (HTTP status, gRPC code).
type Code string

// The codes every harmonia operation returns. Each method's documentation
// says which it may return.
const (
	// CodeInvalid means the input broke a rule: a field failed validation,
	// or a reference names something that does not exist. Nothing was
	// written.
	CodeInvalid Code = "invalid"
	// CodeNotFound means the entity addressed by id or natural key does not
	// exist.
	CodeNotFound Code = "not_found"
	// CodeConflict means the operation contradicts the stored state: a
	// duplicate natural key, a change to a published entity, a lost lease.
	CodeConflict Code = "conflict"
	// CodeInternal means the server or the driver failed; the cause is
	// wrapped and available through [errors.Unwrap].
	CodeInternal Code = "internal"
)

// Sentinel errors, one per code, for use with [errors.Is]:
//
//	if errors.Is(err, harmonia.ErrNotFound) { … }
var (
	ErrInvalid  = &Error{Code: CodeInvalid}
	ErrNotFound = &Error{Code: CodeNotFound}
	ErrConflict = &Error{Code: CodeConflict}
	ErrInternal = &Error{Code: CodeInternal}
)

// FieldError is one broken rule of an entity: the field's document path
// (for example "hashes.sha256") and why it was refused. Fields are always
// named as stored (the bson names); options that are not stored
// ([Options], worker.Options) are named by their Go name in snake_case
// ("lease_duration" for WorkerOptions.LeaseDuration).
type FieldError struct {
	Field  string
	Reason string
}

// Error is the one error type of harmonia. It names the entity kind
// ("model_artifact", "license", …), the field where one applies, and the
// reason. Validation errors list every broken rule in Fields; Field and
// Reason repeat the first of them.
//
// Use [errors.Is] with the sentinels ([ErrInvalid], [ErrNotFound],
// [ErrConflict], [ErrInternal]) to test the code, and [errors.As] to read the
// details.
type Error struct {
	Code   Code
	Entity string
	Field  string
	Reason string
	// Fields lists every broken rule of a validation error.
	Fields []FieldError
	// Err is the underlying cause, if any (a driver error, a context error).
	Err error
}

// Error formats the error as
//
//	harmonia: entity: field: reason (code)
//
// for example `harmonia: model_artifact: hashes.sha256: must be 64
// lowercase hex characters (invalid)`. The entity or the field is left out
// when the error has none. A validation error with several broken rules
// lists every one, separated by "; ", each as "field: reason":
//
//	harmonia: model_artifact: name: is required; version: is required (invalid)
//
// The text of the cause (Err: a driver or context error) is not part of
// it; read it with [errors.Unwrap] or log it separately.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("harmonia: ")
	if e.Entity != "" {
		b.WriteString(e.Entity)
		b.WriteString(": ")
	}
	switch {
	case len(e.Fields) > 1:
		for i, f := range e.Fields {
			if i > 0 {
				b.WriteString("; ")
			}
			if f.Field != "" {
				b.WriteString(f.Field)
				b.WriteString(": ")
			}
			b.WriteString(f.Reason)
		}
	default:
		if e.Field != "" {
			b.WriteString(e.Field)
			b.WriteString(": ")
		}
		b.WriteString(cmp.Or(e.Reason, string(e.Code)))
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code; it makes
// errors.Is(err, ErrConflict) work for every conflict.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Entity == "" && t.Field == ""
}

// ErrorCode returns the code of err: the code of the first *Error in its
// chain, "" for nil, and [CodeInternal] for any other error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Errorf returns an *Error with code about field of entity, its reason
// formatted from format and args; an invalid one also lists field in
// Fields. Packages that extend harmonia (its worker, for example) report
// their errors with it, so that [ErrorCode] and errors.Is hold for them
// too.
func Errorf(code Code, entity, field, format string, args ...any) *Error {
	reason := fmt.Sprintf(format, args...)
	e := &Error{Code: code, Entity: entity, Field: field, Reason: reason}
	if code == CodeInvalid {
		e.Fields = []FieldError{{Field: field, Reason: reason}}
	}
	return e
}

func invalidf(entity, field, format string, args ...any) *Error {
	return Errorf(CodeInvalid, entity, field, format, args...)
}

// invalidCause is invalidf with a cause, which Error() leaves out.
func invalidCause(entity, field string, cause error, format string, args ...any) *Error {
	e := invalidf(entity, field, format, args...)
	e.Err = cause
	return e
}

func notFoundf(entity, format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Entity: entity, Reason: fmt.Sprintf(format, args...)}
}

func conflictf(entity, field, format string, args ...any) *Error {
	return &Error{Code: CodeConflict, Entity: entity, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// DriverError translates an error from the MongoDB driver, met while
// doing op on entity, into an *Error: duplicate keys become conflicts, a
// missing document becomes not found, context errors and everything else
// become internal errors that keep the cause. An *Error passes through
// unchanged, and nil stays nil. harmonia's own methods translate their
// errors with it; packages that extend harmonia use it for theirs.
func DriverError(entity, op string, err error) error {
	if err == nil {
		return nil
	}
	var he *Error
	if errors.As(err, &he) {
		return err
	}
	switch {
	case mongo.IsDuplicateKeyError(err):
		return &Error{Code: CodeConflict, Entity: entity, Reason: op + ": duplicate key", Err: err}
	case errors.Is(err, mongo.ErrNoDocuments):
		return &Error{Code: CodeNotFound, Entity: entity, Reason: op + ": not found", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeInternal, Entity: entity, Reason: op + ": context canceled", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeInternal, Entity: entity, Reason: op + ": context deadline exceeded", Err: err}
	}
	return &Error{Code: CodeInternal, Entity: entity, Reason: op + " failed", Err: err}
}

// duplicateOf turns a duplicate key error on insert into a conflict naming
// the natural key (fields, for example "name,version") and its value. Other
// errors go through wrapErr.
func duplicateOf(entity, fields, value string, err error) error {
	if mongo.IsDuplicateKeyError(err) {
		return &Error{Code: CodeConflict, Entity: entity, Field: fields,
			Reason: fmt.Sprintf("%s %s exists already", fields, value), Err: err}
	}
	return wrapErr(entity, "insert", err)
}

// ErrPublishedContent is the cause of the conflict a write gets when it
// would change the content (path, size_bytes, hashes.sha256) of an
// artifact or dataset that an inventory version published. Test for it
// with errors.Is(err, harmonia.ErrPublishedContent).
var ErrPublishedContent = errors.New("published content cannot change")

// PublishedContentConflict returns the error of a write that would change
// the content of the published artifact or dataset entity (EntityArtifact
// or EntityDataset) named by what (its id or natural key). Store methods
// return it; tools that check ahead, such as an importer's dry run, return
// the same.
func PublishedContentConflict(entity, what string) *Error {
	return &Error{Code: CodeConflict, Entity: entity, Field: "published", Err: ErrPublishedContent,
		Reason: fmt.Sprintf("%s %s is published in an inventory version: its path, size_bytes and hashes.sha256 cannot change", entity, what)}
}

// ErrLeaseLost is the cause of the error a worker gets when it writes to a
// job whose lease it no longer holds: the lease expired and another worker
// claimed the job, or the job is no longer running. Such errors have the
// code [CodeConflict]; test for them with
//
//	errors.Is(err, harmonia.ErrLeaseLost)
var ErrLeaseLost = errors.New("lease lost")

// ErrJobCancelled is the cause of the error a worker gets when it writes
// to a running job that [Queue.CancelJob] cancelled, and the cause
// ([context.Cause]) of its handler's context, which the worker cancels
// at the job's next heartbeat. Such errors have the code [CodeConflict];
// test for them with
//
//	errors.Is(err, harmonia.ErrJobCancelled)
var ErrJobCancelled = errors.New("job cancelled")

// Permanent marks err as a failure that retrying will not fix: FailJob
// (and a Worker, when a handler returns it) fails the job for good
// whatever attempts it has left. The text is err's.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }

func (e *permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

func wrapErr(entity, op string, err error) error { return DriverError(entity, op, err) }
