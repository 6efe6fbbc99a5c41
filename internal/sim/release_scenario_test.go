package sim

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"
)

// The release demo's scenario holds what issue 7's isolate-then-release test needs, read through the SDK.
func TestReleaseScenario(t *testing.T) {
	sc, err := LoadScenario("../../cmd/isolation/scenarios/release.json")
	if err != nil {
		t.Fatal(err)
	}
	s, c, _ := start(t, sc)
	cfg := s.AWSConfig("AKIDTEST")
	ctx := context.Background()
	const id = "i-0a1b2c3d4e5f60718"
	in := describeOne(t, c, id)
	vpcs := map[string]bool{}
	for _, n := range in.NetworkInterfaces {
		vpcs[aws.ToString(n.VpcId)] = true
	}
	if len(in.NetworkInterfaces) != 3 || len(vpcs) != 2 {
		t.Errorf("%d ENIs in %d VPCs, want 3 in 2", len(in.NetworkInterfaces), len(vpcs))
	}
	for _, b := range in.BlockDeviceMappings {
		if !aws.ToBool(b.Ebs.DeleteOnTermination) {
			t.Errorf("%s: DeleteOnTermination false", aws.ToString(b.DeviceName))
		}
	}
	sd, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: "instanceInitiatedShutdownBehavior"})
	if err != nil || aws.ToString(sd.InstanceInitiatedShutdownBehavior.Value) != "terminate" {
		t.Errorf("shutdown behaviour %+v %v", sd, err)
	}
	tp, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: "disableApiTermination"})
	if err != nil || aws.ToBool(tp.DisableApiTermination.Value) {
		t.Errorf("termination protection %+v %v", tp, err)
	}

	ic := iam.NewFromConfig(cfg)
	p, err := ic.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("web-app")})
	if err != nil || len(p.InstanceProfile.Roles) != 1 {
		t.Fatalf("profile %+v %v", p, err)
	}
	role := p.InstanceProfile.Roles[0].RoleName
	inline, err := ic.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: role})
	if err != nil || len(inline.PolicyNames) != 1 {
		t.Errorf("inline policies %+v %v", inline, err)
	}
	att, err := ic.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: role})
	if err != nil || len(att.AttachedPolicies) != 1 {
		t.Errorf("attached policies %+v %v", att, err)
	}

	ac := autoscaling.NewFromConfig(cfg)
	g, err := ac.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(g.AutoScalingInstances) != 1 {
		t.Fatalf("auto scaling %+v %v", g, err)
	}
	groups, err := ac.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{aws.ToString(g.AutoScalingInstances[0].AutoScalingGroupName)}})
	if err != nil || len(groups.AutoScalingGroups) != 1 || len(groups.AutoScalingGroups[0].TargetGroupARNs) != 2 {
		t.Fatalf("group %+v %v", groups, err)
	}
	ec := elb.NewFromConfig(cfg)
	var ports []string
	for _, arn := range groups.AutoScalingGroups[0].TargetGroupARNs {
		for _, h := range health(t, ec, arn) {
			if len(h) > len(id) && h[:len(id)] == id {
				ports = append(ports, h)
			}
		}
	}
	slices.Sort(ports)
	if diff := cmp.Diff([]string{id + ":443=healthy", id + ":8443=healthy", id + ":9100=healthy"}, ports); diff != "" {
		t.Errorf("registrations (-want +got):\n%s", diff)
	}

	v, err := s3.NewFromConfig(cfg).GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("ec2-isolation-incidents-123456789012")})
	if err != nil || v.Status != s3types.BucketVersioningStatusEnabled {
		t.Errorf("incident bucket %+v %v", v, err)
	}
}

func TestNewScenarioFieldsStrict(t *testing.T) {
	good, err := os.ReadFile("../../cmd/isolation/scenarios/release.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, from, to string }{
		{"role", `{"name": "ec2-isolation-quarantine"}`, `{"name": "ec2-isolation-quarantine", "policies": {}}`},
		{"target group", `"protocol": "HTTPS",`, `"protocol": "HTTPS", "healthCheck": "/",`},
		{"target", `"port": 8443}`, `"port": 8443, "az": "us-east-1a"}`},
		{"auto scaling group", `"minSize": 1,`, `"minSize": 1, "min": 1,`},
		{"auto scaling instance", `"instances": [{"id": "i-0a1b2c3d4e5f60718"}`, `"instances": [{"id": "i-0a1b2c3d4e5f60718", "state": "InService"}`},
		{"bucket", `"versioning": true}`, `"versioning": true, "encryption": "aws:kms"}`},
		{"behaviour", `"snapshotCompleteAfter": "1s"`, `"snapshotCompleteAfter": "1s", "deregistrationDelay": "1s"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(good), tc.from) {
				t.Fatalf("release.json no longer contains %s", tc.from)
			}
			if _, err := ParseScenario([]byte(strings.Replace(string(good), tc.from, tc.to, 1))); err == nil {
				t.Error("unknown field accepted")
			}
		})
	}
	sc, err := ParseScenario([]byte(strings.Replace(string(good), `"snapshotCompleteAfter": "1s"`, `"snapshotCompleteAfter": "1s", "targetDeregistrationDelay": "300ms"`, 1)))
	if err != nil || sc.Behaviour.TargetDeregistrationDelay != 300*time.Millisecond {
		t.Errorf("targetDeregistrationDelay: %v %v", sc.Behaviour.TargetDeregistrationDelay, err)
	}
}

// Every built-in scenario of cmd/isolation loads and starts.
func TestBuiltinScenariosStart(t *testing.T) {
	files, err := filepath.Glob("../../cmd/isolation/scenarios/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		sc, err := LoadScenario(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		s, err := Start(sc)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		s.Close()
	}
}
