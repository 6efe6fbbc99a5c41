package sim

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"
)

const incidents = "ec2-isolation-incidents-123456789012"

func startS3(t *testing.T) (*Server, *s3.Client) {
	t.Helper()
	sc := baseScenario()
	sc.Buckets = []S3Bucket{{Name: incidents, Versioning: true}, {Name: "plain-bucket"}}
	s, _, _ := start(t, sc)
	return s, s3.NewFromConfig(s.AWSConfig("AKIDTEST"))
}

func getBody(t *testing.T, c *s3.Client, bucket, key, version string) (string, *s3.GetObjectOutput) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		t.Fatalf("GetObject %s/%s@%s: %v", bucket, key, version, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), out
}

func TestS3PutGetVersions(t *testing.T) {
	s, c := startS3(t)
	ctx := context.Background()
	key := "incidents/123456789012/us-east-1/i-0aaaaaaaaaaaaaaa1.json"
	put := func(body string, mod func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
		in := &s3.PutObjectInput{Bucket: aws.String(incidents), Key: aws.String(key), Body: strings.NewReader(body),
			ContentType: aws.String("application/json")}
		if mod != nil {
			mod(in)
		}
		return c.PutObject(ctx, in)
	}
	first, err := put(`{"v":1}`, func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if aws.ToString(first.VersionId) == "" || aws.ToString(first.ETag) == "" {
		t.Fatalf("put answer without version or ETag: %+v", first)
	}
	// The calls went path-style to the server (no option on the client).
	calls := s.Calls()
	if len(calls) != 1 || calls[0].Service != "s3" || calls[0].Action != "PutObject" || !calls[0].Mutating ||
		calls[0].Params.Get("Bucket") != incidents || calls[0].Params.Get("Key") != key || calls[0].Params.Get("If-None-Match") != "*" {
		t.Fatalf("calls %+v", calls)
	}

	_, err = put(`{"v":"again"}`, func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	wantErr(t, err, "PreconditionFailed", 412)
	_, err = put(`{"v":"stale"}`, func(in *s3.PutObjectInput) { in.IfMatch = aws.String(`"0123456789abcdef0123456789abcdef"`) })
	wantErr(t, err, "PreconditionFailed", 412)
	second, err := put(`{"v":2}`, func(in *s3.PutObjectInput) { in.IfMatch = first.ETag })
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if aws.ToString(second.VersionId) == aws.ToString(first.VersionId) || aws.ToString(second.ETag) == aws.ToString(first.ETag) {
		t.Fatalf("second version %+v same as first %+v", second, first)
	}

	body, out := getBody(t, c, incidents, key, "")
	if body != `{"v":2}` || aws.ToString(out.ETag) != aws.ToString(second.ETag) || aws.ToString(out.VersionId) != aws.ToString(second.VersionId) ||
		aws.ToString(out.ContentType) != "application/json" {
		t.Errorf("current: %q etag %s version %s type %s", body, aws.ToString(out.ETag), aws.ToString(out.VersionId), aws.ToString(out.ContentType))
	}
	if body, _ := getBody(t, c, incidents, key, aws.ToString(first.VersionId)); body != `{"v":1}` {
		t.Errorf("first version body %q", body)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(incidents), Key: aws.String(key)})
	if err != nil || aws.ToString(head.ETag) != aws.ToString(second.ETag) || aws.ToInt64(head.ContentLength) != 7 {
		t.Errorf("HeadObject: %+v %v", head, err)
	}

	lv, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(incidents), Prefix: aws.String("incidents/")})
	if err != nil {
		t.Fatal(err)
	}
	type ver struct {
		Key, Version string
		Latest       bool
		Size         int64
	}
	var got []ver
	for _, v := range lv.Versions {
		got = append(got, ver{aws.ToString(v.Key), aws.ToString(v.VersionId), aws.ToBool(v.IsLatest), aws.ToInt64(v.Size)})
	}
	want := []ver{{key, aws.ToString(second.VersionId), true, 7}, {key, aws.ToString(first.VersionId), false, 7}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	lv, err = c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(incidents), Prefix: aws.String("other/")})
	if err != nil || len(lv.Versions) != 0 {
		t.Errorf("other prefix: %+v %v", lv, err)
	}

	var stored []string
	s.Update(func(a *Account) {
		for _, v := range a.ObjectVersions(incidents, key) {
			stored = append(stored, string(v.Body))
		}
	})
	if diff := cmp.Diff([]string{`{"v":1}`, `{"v":2}`}, stored); diff != "" {
		t.Errorf("stored versions (-want +got):\n%s", diff)
	}

	vc, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(incidents)})
	if err != nil || vc.Status != s3types.BucketVersioningStatusEnabled {
		t.Errorf("GetBucketVersioning: %+v %v", vc, err)
	}
	vc, err = c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("plain-bucket")})
	if err != nil || vc.Status != "" {
		t.Errorf("GetBucketVersioning(plain): %+v %v", vc, err)
	}
}

func TestS3Errors(t *testing.T) {
	_, c := startS3(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"get missing key", func() error {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(incidents), Key: aws.String("nope")})
			var nk *s3types.NoSuchKey
			if err != nil && !errors.As(err, &nk) {
				t.Errorf("GetObject missing key: not a *types.NoSuchKey: %T", err)
			}
			return err
		}, "NoSuchKey", 404},
		{"get missing bucket", func() error {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("k")})
			return err
		}, "NoSuchBucket", 404},
		{"head missing key", func() error {
			_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(incidents), Key: aws.String("nope")})
			return err
		}, "NotFound", 404},
		{"put missing bucket", func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("no-such-bucket"), Key: aws.String("k"), Body: strings.NewReader("x")})
			return err
		}, "NoSuchBucket", 404},
		{"if-match without object", func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(incidents), Key: aws.String("new"), Body: strings.NewReader("x"),
				IfMatch: aws.String(`"abc"`)})
			return err
		}, "NoSuchKey", 404},
		{"unknown version", func() error {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(incidents), Key: aws.String("nope"), VersionId: aws.String("v123")})
			return err
		}, "NoSuchVersion", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.call(), tc.code, tc.status)
		})
	}
}

func TestS3DeleteKeepsVersions(t *testing.T) {
	s, c := startS3(t)
	ctx := context.Background()
	p, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(incidents), Key: aws.String("k"), Body: strings.NewReader("one")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(incidents), Key: aws.String("k")})
	if err != nil || !aws.ToBool(d.DeleteMarker) {
		t.Fatalf("DeleteObject: %+v %v", d, err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(incidents), Key: aws.String("k")})
	wantErr(t, err, "NoSuchKey", 404)
	if body, _ := getBody(t, c, incidents, "k", aws.ToString(p.VersionId)); body != "one" {
		t.Errorf("old version after delete: %q", body)
	}
	// A create-only write succeeds again: the current version is a delete marker.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(incidents), Key: aws.String("k"), Body: strings.NewReader("two"),
		IfNoneMatch: aws.String("*")}); err != nil {
		t.Fatalf("create over delete marker: %v", err)
	}
	var markers []bool
	s.Update(func(a *Account) {
		for _, v := range a.ObjectVersions(incidents, "k") {
			markers = append(markers, v.DeleteMarker)
		}
	})
	if diff := cmp.Diff([]bool{false, true, false}, markers); diff != "" {
		t.Errorf("versions' delete markers (-want +got):\n%s", diff)
	}
	// Unversioned bucket: no version id, the object is replaced.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("plain-bucket"), Key: aws.String("k"), Body: strings.NewReader("a")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("plain-bucket"), Key: aws.String("k"), Body: strings.NewReader("b")})
	if err != nil || out.VersionId != nil {
		t.Fatalf("unversioned put: %+v %v", out, err)
	}
	if body, _ := getBody(t, c, "plain-bucket", "k", ""); body != "b" {
		t.Errorf("unversioned body %q", body)
	}
}

func TestS3InjectedFault(t *testing.T) {
	sc := baseScenario()
	sc.Buckets = []S3Bucket{{Name: incidents, Versioning: true}}
	sc.Faults.Errors = []ErrorFault{{Action: "PutObject", Service: "s3", Code: "SlowDown", Status: 503, FirstCalls: 1}}
	s, _, _ := start(t, sc)
	c := s3.NewFromConfig(s.AWSConfig("AKIDTEST"))
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(incidents), Key: aws.String("k"),
		Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("PutObject (retried): %v", err)
	}
	var codes []string
	for _, c := range s.Calls() {
		codes = append(codes, c.Action+"="+c.ErrorCode)
	}
	if diff := cmp.Diff([]string{"PutObject=SlowDown", "PutObject="}, codes); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// The checksum the SDK sends with PutObject comes back when GetObject asks for it, and the SDK validates the
// body against it.
func TestS3Checksums(t *testing.T) {
	s, c := startS3(t)
	ctx := context.Background()
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(incidents), Key: aws.String("k"), Body: strings.NewReader("record"),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.ChecksumSHA256) == "" {
		t.Fatalf("PutObject answer without the checksum: %+v", put)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(incidents), Key: aws.String("k"), ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || string(body) != "record" || aws.ToString(out.ChecksumSHA256) != aws.ToString(put.ChecksumSHA256) {
		t.Errorf("GetObject: %q %v checksum %s, want %s", body, err, aws.ToString(out.ChecksumSHA256), aws.ToString(put.ChecksumSHA256))
	}
	// A stored checksum that does not match the body fails the SDK's validation: the checksum is really checked.
	s.Update(func(a *Account) {
		a.buckets.get(incidents).objects["k"][0].body = []byte("tampered")
	})
	out, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(incidents), Key: aws.String("k"), ChecksumMode: s3types.ChecksumModeEnabled})
	if err == nil {
		_, err = io.ReadAll(out.Body)
		out.Body.Close()
	}
	if err == nil {
		t.Error("tampered body passed the checksum validation")
	}
}
