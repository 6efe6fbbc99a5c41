package sim

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// The create calls of the no-stack mode, and what AWS answers when they are repeated.
func TestCreatePrerequisites(t *testing.T) {
	ctx := context.Background()
	s, _, _ := start(t, baseScenario())
	cfg := s.AWSConfig("AKIDTEST")
	ic, sc := iam.NewFromConfig(cfg), s3.NewFromConfig(cfg)
	trust := aws.String(defaultTrustPolicy)
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("q-role"), AssumeRolePolicyDocument: trust}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("q-role"), AssumeRolePolicyDocument: trust}); apiCode(err) != "EntityAlreadyExists" {
		t.Errorf("CreateRole twice: %v, want EntityAlreadyExists", err)
	}
	if _, err := ic.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("q")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("q")}); apiCode(err) != "EntityAlreadyExists" {
		t.Errorf("CreateInstanceProfile twice: %v, want EntityAlreadyExists", err)
	}
	add := &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("q"), RoleName: aws.String("q-role")}
	if _, err := ic.AddRoleToInstanceProfile(ctx, add); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.AddRoleToInstanceProfile(ctx, add); apiCode(err) != "LimitExceeded" {
		t.Errorf("AddRoleToInstanceProfile twice: %v, want LimitExceeded", err)
	}
	p, err := ic.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("q")})
	if err != nil || len(p.InstanceProfile.Roles) != 1 || aws.ToString(p.InstanceProfile.Roles[0].RoleName) != "q-role" {
		t.Errorf("GetInstanceProfile: %+v %v", p, err)
	}

	b := aws.String("new-incidents")
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	// us-east-1: re-creating one's own bucket answers 200 OK.
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Errorf("CreateBucket twice in us-east-1: %v, want 200 OK", err)
	}
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Bad_Name")}); apiCode(err) != "InvalidBucketName" {
		t.Errorf("CreateBucket Bad_Name: %v, want InvalidBucketName", err)
	}
	if v, err := sc.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b}); err != nil || v.Status != "" {
		t.Errorf("a new bucket's versioning: %+v %v, want none", v, err)
	}
	if _, err := sc.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: b}); apiCode(err) != "NoSuchPublicAccessBlockConfiguration" {
		t.Errorf("GetPublicAccessBlock of a new bucket: %v", err)
	}
	if _, err := sc.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: b,
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: b, PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
		BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	if v, err := sc.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b}); err != nil || v.Status != s3types.BucketVersioningStatusEnabled {
		t.Errorf("versioning after PutBucketVersioning: %+v %v", v, err)
	}
	pab, err := sc.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: b})
	if err != nil || !aws.ToBool(pab.PublicAccessBlockConfiguration.RestrictPublicBuckets) || !aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicAcls) {
		t.Errorf("GetPublicAccessBlock: %+v %v", pab, err)
	}
	if _, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k")}); err != nil {
		t.Errorf("PutObject into the new bucket: %v", err)
	}
}
