package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// Two passes may overlap: EventBridge invokes the function on schedule whether or not the last pass ended, and
// may deliver one schedule twice. Both would list the running executions before either starts one, and then
// both start one for the same instance under their own pass's name. Reserved concurrency of 1 would forbid it
// but fails deploys on accounts with a small concurrency quota (issue 13 item 7), so a pass that has something
// to start first takes a lease: one object in the incident bucket, written with S3's conditional writes (If-None-
// Match: * when absent, If-Match: <ETag> to take over an expired or released one), which S3 applies atomically
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). A pass that finds the lease
// held starts nothing (the holder does, or the next pass). A pass with nothing to start writes nothing.

// LeaseKey is the lease's key in the incident bucket (the role may put this key only).
const LeaseKey = "reconcile/lease.json"

// LeaseFor is how long a lease holds unless released: longer than the function's Timeout (120 s in
// template.yaml), so a pass that died holding it (timeout, crash) blocks starts for at most this long.
const LeaseFor = 3 * time.Minute

// recentStart: an execution the previous holder started in a pass scheduled less than this before (or after)
// this one is left to it, even if ListExecutions does not list it (it is eventually consistent:
// https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html) or it has already
// ended: this pass read the instance before that execution contained it, so its view is stale. A pass lasts at
// most the function's Timeout (120 s), less than LeaseFor: passes this far apart may have overlapped. The cost:
// an execution that failed at once is retried a pass or two later (a failed isolation is held back an hour anyway).
const recentStart = LeaseFor

// lease is the lease object's body.
type lease struct {
	// Holder is the pass holding it; Expires when it stops holding (at release, the release time).
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
	// Started maps each instance the last holder started an execution for to it, with its pass's time.
	Started map[string]startedExecution `json:"started,omitempty"`
}

type startedExecution struct {
	Execution string    `json:"execution"`
	At        time.Time `json:"at"`
}

// leaseS3 is the part of the S3 client the lease needs.
type leaseS3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// held is a lease taken: its ETag (for the release) and what the previous holder started recently.
type held struct {
	etag   string
	recent map[string]string
}

// heldBy is the reason a pass starts nothing: another pass holds the lease.
type heldBy struct {
	holder  string
	expires time.Time
}

func (e *heldBy) Error() string {
	return fmt.Sprintf("pass %s holds the reconciler's lease (until %s at the latest)", e.holder, e.expires.Format(time.RFC3339))
}

// acquire takes the lease for pass (scheduled at), or returns *heldBy when another pass holds it.
func acquire(ctx context.Context, c leaseS3, bucket, pass string, at, now time.Time) (held, error) {
	cur, etag, err := readLease(ctx, c, bucket)
	if err != nil {
		return held{}, err
	}
	if etag != "" && cur.Holder != pass && now.Before(cur.Expires) {
		return held{}, &heldBy{holder: cur.Holder, expires: cur.Expires}
	}
	h := held{recent: map[string]string{}}
	for id, s := range cur.Started {
		if d := at.Sub(s.At); d > -recentStart && d < recentStart {
			h.recent[id] = s.Execution
		}
	}
	body, _ := json.Marshal(lease{Holder: pass, Expires: now.Add(LeaseFor), Started: cur.Started})
	h.etag, err = putLease(ctx, c, bucket, body, etag)
	if errors.Is(err, errLostLease) {
		return held{}, &heldBy{holder: "another pass (it took the lease as this one did)", expires: now.Add(LeaseFor)}
	}
	return h, err
}

// release ends the lease at now, recording what this pass started. A lease taken over meanwhile (this pass
// outlived LeaseFor) is left to its new holder.
func release(ctx context.Context, c leaseS3, bucket, pass string, h held, started map[string]startedExecution, now time.Time) error {
	body, _ := json.Marshal(lease{Holder: pass, Expires: now, Started: started})
	_, err := putLease(ctx, c, bucket, body, h.etag)
	if errors.Is(err, errLostLease) {
		return nil
	}
	return err
}

var errLostLease = errors.New("the lease changed since it was read")

func readLease(ctx context.Context, c leaseS3, bucket string) (lease, string, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(LeaseKey)})
	var noKey *s3types.NoSuchKey
	switch {
	case errors.As(err, &noKey) || steperr.Code(err) == "NoSuchKey":
		return lease{}, "", nil
	case err != nil:
		return lease{}, "", steperr.FromAWS(fmt.Sprintf("get s3://%s/%s", bucket, LeaseKey), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if err != nil {
		return lease{}, "", &steperr.Transient{Op: "read the reconciler's lease", Err: err}
	}
	var l lease
	// An unreadable lease (written by hand) holds nothing: its ETag still guards the takeover.
	_ = json.Unmarshal(b, &l)
	return l, aws.ToString(out.ETag), nil
}

// putLease writes the lease if it is still what was read: absent (etag "") or at etag.
func putLease(ctx context.Context, c leaseS3, bucket string, body []byte, etag string) (string, error) {
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(LeaseKey), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json")}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	out, err := c.PutObject(ctx, in)
	if err == nil {
		return aws.ToString(out.ETag), nil
	}
	switch steperr.Code(err) {
	case "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey":
		return "", errLostLease
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() == http.StatusPreconditionFailed || re.HTTPStatusCode() == http.StatusConflict) {
		return "", errLostLease
	}
	return "", steperr.FromAWS(fmt.Sprintf("put s3://%s/%s", bucket, LeaseKey), err)
}
