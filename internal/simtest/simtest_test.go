package simtest

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

func TestCallsByService(t *testing.T) {
	srv := Start(t, sim.Scenario{Buckets: []sim.S3Bucket{{Name: "records", Versioning: true}},
		Roles: []sim.Role{{Name: "app"}}})
	cfg := srv.AWSConfig("")
	ctx := context.Background()
	sc, ic := s3.NewFromConfig(cfg), iam.NewFromConfig(cfg)
	if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("records"), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("records"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{"s3": Actions(srv, "s3"), "iam": Actions(srv, "iam"), "mutating": Mutating(srv),
		"byService": MutatingByService(srv)}
	want := map[string][]string{"s3": {"PutObject", "GetObject"}, "iam": {"ListRolePolicies"}, "mutating": {"PutObject"},
		"byService": {"s3:PutObject"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
