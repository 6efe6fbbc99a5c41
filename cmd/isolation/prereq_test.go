package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ec2-isolation/ec2-isolation/internal/moto"
	"github.com/ec2-isolation/ec2-isolation/internal/prereq"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/template"
)

// onBareSim is the default scenario without the stack's resources: no isolation profile, no topic, no bucket.
func onBareSim(t *testing.T) *sim.Server {
	t.Helper()
	sc, err := loadScenario("default")
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults, sc.Behaviour, sc.Buckets, sc.Topics = sim.Faults{}, sim.Behaviour{}, nil, nil
	sc.InstanceProfiles = slices.DeleteFunc(sc.InstanceProfiles, func(p sim.InstanceProfile) bool { return p.Name == defaultProfileName })
	for i := range sc.InstanceProfiles {
		sc.InstanceProfiles[i].VisibleAfter = 0
	}
	srv := simtest.Start(t, sc)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": srv.URL(), "AWS_REGION": srv.Region(), "AWS_PROFILE": "",
		"AWS_ACCESS_KEY_ID": "engineer", "AWS_SECRET_ACCESS_KEY": "simulated", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		t.Setenv(k, v)
	}
	return srv
}

// An account with no stack: one command creates what is missing and isolates; run again, it creates nothing.
func TestRunCreatePrerequisitesWithoutAStack(t *testing.T) {
	const instance = "i-0a1b2c3d4e5f60718"
	srv := onBareSim(t)
	before := groupsOf(t, srv, instance)
	cfg := srv.AWSConfig("test")
	names := prereq.For(srv.AccountID(), srv.Region())
	ctx := context.Background()
	bucketExists := func() bool {
		_, err := s3.NewFromConfig(cfg).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(names.Bucket)})
		return err == nil
	}

	// Bad input: refused with exit 2, nothing created.
	for _, bad := range [][]string{
		{"--incident-bucket", "someone-elses"}, {"--stack", "ec2-isolation"}, {"--profile-name", "x"},
	} {
		code, _, errOut := cli(t, "", append([]string{"run", "--instance", instance, "--create-prerequisites", "--yes"}, bad...)...)
		if code != exitUsage || !strings.Contains(errOut, "--create-prerequisites") {
			t.Errorf("run --create-prerequisites %v: exit %d, stderr %q; want 2 naming the flag", bad, code, errOut)
		}
	}
	if bucketExists() {
		t.Fatal("a refused run created the bucket")
	}

	args := []string{"run", "--instance", instance, "--create-prerequisites", "--yes"}
	code, out, errOut := cli(t, "", args...)
	if code != exitOK || !strings.Contains(out, "Isolated: yes") {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, errOut)
	}
	plan, _, _ := strings.Cut(out, "Execution ")
	for _, want := range []string{
		"create role " + names.Role, "create instance profile " + names.Profile, "add role to instance profile " + names.Profile,
		"create topic " + names.TopicARN, "create bucket " + names.Bucket, "enable versioning " + names.Bucket,
		"block public access " + names.Bucket,
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan does not list %q:\n%s", want, plan)
		}
	}

	// The instance is contained with the new profile, whose role has no permissions.
	for eni, groups := range groupsOf(t, srv, instance) {
		if len(groups) != 1 || !strings.HasSuffix(groups[0], " "+names.Group) {
			t.Errorf("%s carries %v, want only %s", eni, groups, names.Group)
		}
	}
	ic := iam.NewFromConfig(cfg)
	p, err := ic.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(names.Profile)})
	if err != nil || len(p.InstanceProfile.Roles) != 1 || aws.ToString(p.InstanceProfile.Roles[0].RoleName) != names.Role {
		t.Fatalf("isolation profile: %+v %v", p, err)
	}
	// Its role denies every action, with the stack's isolation role's own policy (template.yaml).
	pol, err := ic.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(names.Role)})
	if err != nil || !slices.Equal(pol.PolicyNames, []string{prereq.DenyPolicyName}) {
		t.Errorf("the isolation role's inline policies: %v %v; want only %s", pol, err, prereq.DenyPolicyName)
	}
	if got, want := rolePolicy(t, ic, names.Role, prereq.DenyPolicyName), templateIsolationDeny(t); got != want {
		t.Errorf("the isolation role's %s policy is\n%s\nwant template.yaml's IsolationRole's\n%s", prereq.DenyPolicyName, got, want)
	}
	// And it holds: the instance's credentials, as a thief would copy them, may not even describe the instance.
	var key string
	srv.Update(func(a *sim.Account) { key, err = a.InstanceCredentials(instance) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec2.NewFromConfig(srv.AWSConfig(key)).DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Errorf("the isolated instance's credentials described instances: %v", err)
	}
	if _, err := sns.NewFromConfig(cfg).GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(names.TopicARN)}); err != nil {
		t.Errorf("topic: %v", err)
	}
	sc := s3.NewFromConfig(cfg)
	v, err := sc.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(names.Bucket)})
	if err != nil || v.Status != s3types.BucketVersioningStatusEnabled {
		t.Errorf("bucket versioning: %+v %v", v, err)
	}
	blocked := false
	srv.Update(func(a *sim.Account) { blocked = a.PublicAccessBlocked(names.Bucket) })
	if !blocked {
		t.Error("the bucket's public access is not blocked")
	}
	// The record is in the new bucket.
	objs, err := sc.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(names.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range objs.Versions {
		found = found || strings.Contains(aws.ToString(o.Key), instance)
	}
	if !found {
		t.Errorf("no record of %s in %s: %+v", instance, names.Bucket, objs.Versions)
	}
	// record and status find the mode's names themselves (no stack, no names passed).
	code, out, errOut = cli(t, "", "record", "--instance", instance)
	if code != exitOK || !strings.Contains(out, instance) || !strings.Contains(out, "isolation") {
		t.Errorf("record from the new bucket, no names passed: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cli(t, "", "status", "--instance", instance)
	if code != exitOK || !strings.Contains(out, instance) {
		t.Errorf("status, no names passed: exit %d\n%s\n%s", code, out, errOut)
	}

	// Twice = once: the second run finds everything and creates nothing.
	code, out, errOut = cli(t, "", args...)
	if code != exitOK || !strings.Contains(out, "Isolated: yes") {
		t.Fatalf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "all exist, nothing to create") {
		t.Errorf("second run's plan creates something:\n%s", out)
	}

	// A role an older version created (no deny policy) gets it, and nothing else is created.
	if _, err := ic.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(names.Role), PolicyName: aws.String(prereq.DenyPolicyName)}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli(t, "", args...)
	plan, _, _ = strings.Cut(out, "Execution ")
	if code != exitOK || !strings.Contains(plan, "put deny policy "+names.Role) || strings.Contains(plan, "create ") {
		t.Errorf("a role without its deny policy: exit %d, plan\n%s\n%s", code, plan, errOut)
	}
	if got, want := rolePolicy(t, ic, names.Role, prereq.DenyPolicyName), templateIsolationDeny(t); got != want {
		t.Errorf("after the third run the role's policy is %s, want %s", got, want)
	}

	// release finds them too, and restores the instance's groups.
	code, out, errOut = cli(t, "", "release", "--instance", instance, "--yes")
	if code != exitOK {
		t.Fatalf("release, no names passed: exit %d\n%s\n%s", code, out, errOut)
	}
	for eni, groups := range groupsOf(t, srv, instance) {
		if !slices.Equal(groups, before[eni]) {
			t.Errorf("after the release %s carries %v, want %v", eni, groups, before[eni])
		}
	}
}

// Without a stack and without the mode's bucket, the commands say both are missing (exit 2), and change nothing.
func TestNoStackNoPrerequisitesIsAClearError(t *testing.T) {
	onBareSim(t)
	for _, cmd := range [][]string{{"record", "--instance", "i-0a1b2c3d4e5f60718"}, {"status"}, {"release", "--instance", "i-0a1b2c3d4e5f60718", "--yes"}} {
		code, _, errOut := cli(t, "", cmd...)
		if code != exitUsage || !strings.Contains(errOut, "stack ec2-isolation does not exist") || !strings.Contains(errOut, "--create-prerequisites") {
			t.Errorf("%v: exit %d, stderr %q; want 2, naming the missing stack and the no-stack mode", cmd, code, errOut)
		}
	}
}

// rolePolicy is the role's inline policy as compact JSON (IAM returns it URL-encoded).
func rolePolicy(t *testing.T, c *iam.Client, role, name string) string {
	t.Helper()
	out, err := c.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	if err != nil {
		t.Fatalf("policy %s of role %s: %v", name, role, err)
	}
	doc, err := url.PathUnescape(aws.ToString(out.PolicyDocument))
	if err != nil {
		t.Fatal(err)
	}
	return compactJSON(t, doc)
}

// templateIsolationDeny is template.yaml's IsolationRole's one policy document, as compact JSON.
func templateIsolationDeny(t *testing.T) string {
	t.Helper()
	tpl, err := template.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pols, _ := tpl.Resources["IsolationRole"].Properties["Policies"].([]any)
	if len(pols) != 1 {
		t.Fatalf("template.yaml's IsolationRole has %d policies, want 1", len(pols))
	}
	p, _ := pols[0].(map[string]any)
	if p["PolicyName"] != prereq.DenyPolicyName {
		t.Errorf("template.yaml's IsolationRole's policy is named %v, want %s", p["PolicyName"], prereq.DenyPolicyName)
	}
	b, err := json.Marshal(p["PolicyDocument"])
	if err != nil {
		t.Fatal(err)
	}
	return compactJSON(t, string(b))
}

func compactJSON(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("%q: %v", doc, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// The same against moto_server: an account seeded without the isolation profile and without a stack.
func TestRunCreatePrerequisitesOnMoto(t *testing.T) {
	s, c := onMoto(t, moto.SeedOptions{NoIsolationProfile: true})
	ctx := context.Background()
	names := prereq.For(s.AccountID, s.Region)
	args := []string{"run", "--instance", s.InstanceID, "--create-prerequisites", "--yes"}
	code, out, errOut := cli(t, "", args...)
	if code != exitOK || !strings.Contains(out, "Isolated: yes") {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"create instance profile " + names.Profile, "create bucket " + names.Bucket, "block public access " + names.Bucket} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan does not list %q:\n%s", want, out)
		}
	}
	p, err := c.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(names.Profile)})
	if err != nil || len(p.InstanceProfile.Roles) != 1 || aws.ToString(p.InstanceProfile.Roles[0].RoleName) != names.Role {
		t.Fatalf("isolation profile: %+v %v", p, err)
	}
	if got, want := rolePolicy(t, c.IAM, names.Role, prereq.DenyPolicyName), templateIsolationDeny(t); got != want {
		t.Errorf("the isolation role's %s policy on moto is %s, want template.yaml's %s", prereq.DenyPolicyName, got, want)
	}
	v, err := c.S3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(names.Bucket)})
	if err != nil || v.Status != s3types.BucketVersioningStatusEnabled {
		t.Errorf("bucket versioning: %+v %v", v, err)
	}
	pab, err := c.S3.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(names.Bucket)})
	if err != nil || !aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicPolicy) || !aws.ToBool(pab.PublicAccessBlockConfiguration.RestrictPublicBuckets) {
		t.Errorf("public access block: %+v %v", pab, err)
	}
	objs, err := c.S3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(names.Bucket)})
	if err != nil || len(objs.Versions) == 0 || !strings.Contains(aws.ToString(objs.Versions[0].Key), s.InstanceID) {
		t.Errorf("the record of %s in %s: %+v %v", s.InstanceID, names.Bucket, objs, err)
	}
	code, out, errOut = cli(t, "", args...)
	if code != exitOK || !strings.Contains(out, "all exist, nothing to create") {
		t.Errorf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
}
