package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// SchemaVersion of the IncidentFile this package writes.
const SchemaVersion = 1

// maxWriteAttempts bounds the read-modify-write loop: each lost race means another execution of the same
// instance wrote in between; a handful of them at once is already unusual.
const maxWriteAttempts = 8

// maxRecordSize refuses to read a record larger than any this package writes (a few incidents of a few KB).
const maxRecordSize = 16 << 20

// S3API is the part of the S3 client the record uses.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// store reads and writes one bucket's incident records.
type store struct {
	s3     S3API
	bucket string
}

// loaded is a record as read: file is nil when there is no object (never written, or its current version is a
// delete marker).
type loaded struct {
	file          *workflow.IncidentFile
	etag, version string
}

// errNoBucket: the bucket does not exist (deleted, or the stack's parameter names another).
var errNoBucket = errors.New("the bucket does not exist")

// errUnreadable wraps a record that is not an IncidentFile.
type errUnreadable struct{ err error }

func (e *errUnreadable) Error() string { return "not a readable incident record: " + e.err.Error() }
func (e *errUnreadable) Unwrap() error { return e.err }

// load reads the record. The function's role needs s3:ListBucket on the bucket besides s3:GetObject: without it
// S3 answers a missing key with 403 AccessDenied (an AWSError here) instead of 404 NoSuchKey.
func (s store) load(ctx context.Context, key string) (loaded, error) {
	out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	var (
		noKey    *types.NoSuchKey
		noBucket *types.NoSuchBucket
	)
	switch {
	case err == nil:
	case errors.As(err, &noKey) || steperr.Code(err) == "NoSuchKey":
		return loaded{}, nil
	case errors.As(err, &noBucket) || steperr.Code(err) == "NoSuchBucket":
		return loaded{}, errNoBucket
	default:
		return loaded{}, steperr.FromAWS(fmt.Sprintf("get s3://%s/%s", s.bucket, key), err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxRecordSize+1))
	if err != nil {
		return loaded{}, &steperr.Transient{Op: fmt.Sprintf("read s3://%s/%s", s.bucket, key), Err: err}
	}
	if len(body) > maxRecordSize {
		return loaded{}, &errUnreadable{fmt.Errorf("larger than %d bytes", maxRecordSize)}
	}
	var f workflow.IncidentFile
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&f); err != nil {
		return loaded{}, &errUnreadable{err}
	}
	if f.SchemaVersion != SchemaVersion {
		return loaded{}, &errUnreadable{fmt.Errorf("schema version %d, want %d", f.SchemaVersion, SchemaVersion)}
	}
	return loaded{file: &f, etag: aws.ToString(out.ETag), version: aws.ToString(out.VersionId)}, nil
}

// save writes f if the object is still what load read: absent (etag "") or at that ETag. It reports a lost race
// as errConflict.
func (s store) save(ctx context.Context, key string, f *workflow.IncidentFile, etag string) (string, error) {
	// Compact: indenting would also reformat the embedded description, so a record read back would not be
	// byte-equal to the one written.
	body, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	in := &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"),
	}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	out, err := s.s3.PutObject(ctx, in)
	switch {
	case err == nil:
		return aws.ToString(out.VersionId), nil
	case lostRace(err), etag != "" && steperr.Code(err) == "NoSuchKey":
		// NoSuchKey: the object read was deleted since; the next read sees that.
		return "", errConflict
	}
	return "", steperr.FromAWS(fmt.Sprintf("put s3://%s/%s", s.bucket, key), err)
}

var errConflict = errors.New("the record changed since it was read")

// lostRace: S3 refused the conditional write because the object changed (412 PreconditionFailed), or because a
// concurrent conditional write to the same key is in progress (409 ConditionalRequestConflict).
func lostRace(err error) bool {
	switch steperr.Code(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && (re.HTTPStatusCode() == http.StatusPreconditionFailed || re.HTTPStatusCode() == http.StatusConflict)
}

// mutation changes a record read by load (file nil: no record yet) and returns the record to write, and
// whether it differs from what was read (no write when it does not).
type mutation func(l loaded) (f *workflow.IncidentFile, changed bool, err error)

// update runs a read-modify-write of the record, conditional on what it read, again from the read when
// another writer came first. It returns the record and its version (the one read when nothing changed).
func (s store) update(ctx context.Context, key string, m mutation) (*workflow.IncidentFile, string, error) {
	for range maxWriteAttempts {
		l, err := s.load(ctx, key)
		if err != nil {
			return nil, "", err
		}
		f, changed, err := m(l)
		if err != nil || !changed {
			return f, l.version, err
		}
		version, err := s.save(ctx, key, f, l.etag)
		if errors.Is(err, errConflict) {
			continue
		}
		return f, version, err
	}
	return nil, "", &steperr.Transient{Op: fmt.Sprintf("write s3://%s/%s", s.bucket, key),
		Err: fmt.Errorf("the record changed under %d attempts in a row", maxWriteAttempts)}
}

// Load reads the incident record of key from bucket (workflow.IncidentKey): nil when there is none. The reader
// needs s3:GetObject and s3:ListBucket (without it a missing record is AccessDenied, not NoSuchKey).
func Load(ctx context.Context, s3c S3API, bucket, key string) (*workflow.IncidentFile, error) {
	l, err := store{s3: s3c, bucket: bucket}.load(ctx, key)
	if errors.Is(err, errNoBucket) {
		return nil, fmt.Errorf("incident bucket %s: %w", bucket, err)
	}
	return l.file, err
}
