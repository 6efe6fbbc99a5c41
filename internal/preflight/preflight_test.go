package preflight_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

const (
	instanceID = "i-0a1b2c3d4e5f60718"
	vpcA, vpcB = "vpc-0a11111111111111a", "vpc-0b22222222222222b"
	eniA, eniB = "eni-0a1b2c3d4e5f00001", "eni-0a1b2c3d4e5f00002"
	topicARN   = "arn:aws:sns:us-east-1:123456789012:ec2-isolation-notifications"
	groupName  = "ec2-isolation-quarantine"
)

// account: an instance with an ENI in each of two VPCs, an instance profile and two volumes.
func account() sim.Scenario {
	return sim.Scenario{
		VPCs: []sim.VPC{{ID: vpcA, CIDR: "10.0.0.0/16"}, {ID: vpcB, CIDR: "10.1.0.0/16"}},
		Subnets: []sim.Subnet{
			{ID: "subnet-0a1111111111111a1", VpcID: vpcA, CIDR: "10.0.1.0/24"},
			{ID: "subnet-0b2222222222222b1", VpcID: vpcB, CIDR: "10.1.1.0/24"},
		},
		SecurityGroups: []sim.SecurityGroup{
			{ID: "sg-0a1b2c3d4e5f00001", VpcID: vpcA, Name: "web", Description: "web"},
			{ID: "sg-0a1b2c3d4e5f00003", VpcID: vpcB, Name: "db", Description: "db"},
		},
		InstanceProfiles: []sim.InstanceProfile{{Name: "web-app", Role: "web-app-role"}, {Name: groupName, Role: groupName}},
		Instances: []sim.Instance{{
			ID: instanceID, SubnetID: "subnet-0a1111111111111a1", Profile: "web-app",
			NetworkInterfaces: []sim.NetworkInterface{
				{ID: eniA, SubnetID: "subnet-0a1111111111111a1", DeviceIndex: 0, Groups: []string{"sg-0a1b2c3d4e5f00001"}},
				{ID: eniB, SubnetID: "subnet-0b2222222222222b1", DeviceIndex: 1, Groups: []string{"sg-0a1b2c3d4e5f00003"}},
			},
			Volumes: []sim.Volume{{ID: "vol-0a1b2c3d4e5f00001", DeviceName: "/dev/xvda"}, {ID: "vol-0a1b2c3d4e5f00002", DeviceName: "/dev/xvdf"}},
		}},
		Topics:  []sim.Topic{{Name: "ec2-isolation-notifications"}},
		Buckets: []sim.S3Bucket{{Name: bucketName, Versioning: true}},
	}
}

const bucketName = "ec2-isolation-incidents-123456789012"

var names = preflight.Names{GroupName: groupName, ProfileName: groupName, TopicARN: topicARN, IncidentBucket: bucketName, TagKey: "Isolate", TagValue: "true", Tracking: secgroup.ModeDirect}

// check runs the checks against the simulator, which has no IAM: the IAM checks are unverified.
func check(t *testing.T, sc sim.Scenario, n preflight.Names) (preflight.Report, *sim.Server) {
	t.Helper()
	srv, err := sim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cfg := srv.AWSConfig("engineer")
	rep := preflight.Run(context.Background(), preflight.Clients{EC2: ec2.NewFromConfig(cfg), SNS: sns.NewFromConfig(cfg),
		S3: s3.NewFromConfig(cfg), AutoScaling: autoscaling.NewFromConfig(cfg), ELB: elb.NewFromConfig(cfg)}, preflight.Input{
		Identity: preflight.Identity{Account: "123456789012", ARN: "arn:aws:iam::123456789012:user/engineer", Partition: "aws"},
		Names:    n, NamesFrom: "flags", InstanceID: instanceID,
	})
	return rep, srv
}

func table(rep preflight.Report) map[string]string {
	out := map[string]string{}
	for _, c := range rep.Checks {
		v := string(c.Status)
		if c.Missing != "" {
			v += " missing " + c.Missing
		}
		out[c.Name] = v
	}
	return out
}

var allPass = map[string]string{
	"caller identity": "pass",
	"settings":        "pass",
	`isolation instance profile "ec2-isolation-quarantine"`: "unverified",
	"notification topic":                          "pass",
	"instance " + instanceID:                      "pass",
	`group "ec2-isolation-quarantine" in ` + vpcA: "pass",
	`group "ec2-isolation-quarantine" in ` + vpcB: "pass",
	"apply group to " + eniA:                      "pass",
	"apply group to " + eniB:                      "pass",
	"snapshot 2 volumes":                          "pass",
	"detach instance profile":                     "unverified",
	"attach isolation profile":                    "unverified",
	"pass isolation role":                         "skip",
	"publish notification":                        "unverified",
	"tag Isolate=true":                            "pass",
	"incident bucket " + bucketName:               "pass",
	"write the incident record":                   "unverified",
	"termination protection":                      "pass",
	"shutdown behaviour":                          "pass",
	"delete-on-termination":                       "pass",
	"Auto Scaling group":                          "pass",
	"target groups":                               "pass",
	"revoke credentials":                          "unverified",
}

func TestChecksMakeEveryMutatingCallWithDryRunOnly(t *testing.T) {
	rep, srv := check(t, account(), names)
	if diff := cmp.Diff(allPass, table(rep)); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	var dry []string
	for _, c := range srv.Calls() {
		if c.Mutating {
			t.Errorf("mutating call without DryRun: %s", c.Action)
		}
		if c.DryRun && !slices.Contains(dry, c.Action) {
			dry = append(dry, c.Action)
		}
	}
	slices.Sort(dry)
	if want := []string{"CreateSecurityGroup", "CreateSnapshots", "CreateTags", "ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute"}; !slices.Equal(dry, want) {
		t.Errorf("DryRun calls %v, want %v", dry, want)
	}
	if rep.Record == nil || len(rep.Record.NetworkInterfaces) != 2 {
		t.Errorf("record %+v, want the instance's two ENIs", rep.Record)
	}
}

// Each refused permission fails (or, for what only preflight needs, leaves unverified) the check that needs it,
// naming the permission; the other checks still run.
func TestChecksNameTheMissingPermission(t *testing.T) {
	denied := func(service, action string) sim.ErrorFault {
		code := "UnauthorizedOperation"
		if service == "sns" {
			code = "AuthorizationError"
		}
		return sim.ErrorFault{Service: service, Action: action, Code: code, Status: http.StatusForbidden, Message: "You are not authorized to perform this operation."}
	}
	tests := []struct {
		fault sim.ErrorFault
		want  map[string]string
	}{
		{denied("ec2", "ModifyNetworkInterfaceAttribute"), map[string]string{
			"apply group to " + eniA: "fail missing ec2:ModifyNetworkInterfaceAttribute",
			"apply group to " + eniB: "fail missing ec2:ModifyNetworkInterfaceAttribute"}},
		{denied("ec2", "CreateSecurityGroup"), map[string]string{
			`group "ec2-isolation-quarantine" in ` + vpcA: "fail missing ec2:CreateSecurityGroup",
			`group "ec2-isolation-quarantine" in ` + vpcB: "fail missing ec2:CreateSecurityGroup"}},
		{denied("ec2", "CreateSnapshots"), map[string]string{"snapshot 2 volumes": "fail missing ec2:CreateSnapshots"}},
		{denied("ec2", "DescribeSnapshots"), map[string]string{"snapshot 2 volumes": "fail missing ec2:DescribeSnapshots"}},
		{denied("ec2", "DescribeNetworkInterfaces"), map[string]string{
			"network interfaces of " + instanceID: "fail missing ec2:DescribeNetworkInterfaces",
			"apply group to " + eniA:              "", "apply group to " + eniB: ""}},
		{denied("sns", "GetTopicAttributes"), map[string]string{"notification topic": "unverified missing sns:GetTopicAttributes"}},
		// Issue 15, item 2: the evidence settings, Auto Scaling and load balancing.
		{denied("ec2", "ModifyInstanceAttribute"), map[string]string{
			"termination protection": "fail missing ec2:ModifyInstanceAttribute",
			"shutdown behaviour":     "fail missing ec2:ModifyInstanceAttribute",
			"delete-on-termination":  "fail missing ec2:ModifyInstanceAttribute"}},
		{deniedAWS("autoscaling", "DescribeAutoScalingInstances"), map[string]string{
			"Auto Scaling group": "fail missing autoscaling:DescribeAutoScalingInstances"}},
		{deniedAWS("elasticloadbalancing", "DescribeTargetGroups"), map[string]string{
			"target groups": "fail missing elasticloadbalancing:DescribeTargetGroups"}},
	}
	for _, tt := range tests {
		t.Run(tt.fault.Action, func(t *testing.T) {
			sc := account()
			sc.Faults.Errors = []sim.ErrorFault{tt.fault}
			rep, _ := check(t, sc, names)
			want := map[string]string{}
			for k, v := range allPass {
				want[k] = v
			}
			for k, v := range tt.want {
				if v == "" {
					delete(want, k)
				} else {
					want[k] = v
				}
			}
			if diff := cmp.Diff(want, table(rep)); diff != "" {
				t.Errorf("checks (-want +got):\n%s", diff)
			}
			if rep.OK() == strings.Contains(strings.Join(mapValues(tt.want), " "), "fail") {
				t.Errorf("OK() = %v", rep.OK())
			}
		})
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// An instance "Validate and record" refuses stops the instance checks there, with its reason.
func TestChecksStopAtARefusedInstance(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*sim.Scenario)
		detail string
	}{
		{"terminated", func(sc *sim.Scenario) { sc.Instances[0].State = "terminated" }, "cannot be isolated"},
		{"describe denied", func(sc *sim.Scenario) {
			sc.Faults.Errors = []sim.ErrorFault{{Action: "DescribeInstances", Code: "UnauthorizedOperation", Status: http.StatusForbidden}}
		}, "denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := account()
			tt.change(&sc)
			rep, _ := check(t, sc, names)
			var got *preflight.Check
			for i, c := range rep.Checks {
				if c.Name == "instance "+instanceID {
					got = &rep.Checks[i]
				}
				if strings.Contains(c.Name, "apply group") || strings.Contains(c.Name, "snapshot") {
					t.Errorf("check %q ran after the instance was refused", c.Name)
				}
			}
			if got == nil || got.Status != preflight.Fail || !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("instance check %+v, want a failure saying %q", got, tt.detail)
			}
			if rep.OK() {
				t.Error("report OK with a refused instance")
			}
		})
	}
}

// A group with the isolation group's name that ec2-isolation did not create (no managed tag) is left alone: the
// workflow uses a group of its own under the derived name (issue 12 case 3), which preflight checks instead; when
// that name is not ours either, the check fails.
func TestChecksAGroupNotCreatedByUs(t *testing.T) {
	sc := account()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a1b2c3d4e5f00008", VpcID: vpcA, Name: groupName, Description: "someone else's"})
	rep, _ := check(t, sc, names)
	got := table(rep)
	if g := got[`group "ec2-isolation-quarantine" in `+vpcA]; g != "pass" {
		t.Errorf("check %q, want pass (left alone)", g)
	}
	if g := got[`group "ec2-isolation-quarantine-managed" in `+vpcA]; g != "pass" {
		t.Errorf("derived group check %q, want pass (will be created)", g)
	}

	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a1b2c3d4e5f00007", VpcID: vpcA, Name: groupName + "-managed", Description: "theirs too"})
	rep, _ = check(t, sc, names)
	if g := table(rep)[`group "ec2-isolation-quarantine-managed" in `+vpcA]; g != "fail" {
		t.Errorf("derived group not ours either: check %q, want fail", g)
	}
}

// An isolation group that already exists is used; rules someone added to it will be revoked, with DryRun now.
func TestChecksExistingGroupWithRules(t *testing.T) {
	sc := account()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a1b2c3d4e5f00009", VpcID: vpcA, Name: groupName, Description: "quarantine",
		Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}},
		Tags:    map[string]string{secgroup.TagManaged: "true"}})
	for _, deny := range []bool{false, true} {
		sc := sc
		if deny {
			sc.Faults.Errors = []sim.ErrorFault{{Action: "RevokeSecurityGroupIngress", Code: "UnauthorizedOperation", Status: http.StatusForbidden}}
		}
		rep, srv := check(t, sc, names)
		got := table(rep)
		want := "pass"
		if deny {
			want = "fail missing ec2:RevokeSecurityGroupIngress"
		}
		if g := got[`group "ec2-isolation-quarantine" in `+vpcA]; g != want {
			t.Errorf("deny %v: existing group check %q, want %q", deny, g, want)
		}
		if g := got["apply group to "+eniA]; g != "pass" {
			t.Errorf("apply check %q, want pass", g)
		}
		// The DryRun Modify names the existing isolation group.
		for _, c := range srv.Calls() {
			if c.Action == "ModifyNetworkInterfaceAttribute" && c.Params.Get("NetworkInterfaceId") == eniA && c.Params.Get("SecurityGroupId.1") != "sg-0a1b2c3d4e5f00009" {
				t.Errorf("DryRun Modify of %s with %v, want the isolation group", eniA, c.Params)
			}
		}
	}
}

// One ENI, one VPC, one volume: said in the singular (issue 15, item 9).
func TestChecksCountInEnglish(t *testing.T) {
	sc := account()
	sc.Instances[0].NetworkInterfaces = sc.Instances[0].NetworkInterfaces[:1]
	sc.Instances[0].Volumes = sc.Instances[0].Volumes[:1]
	rep, _ := check(t, sc, names)
	var instance, snapshot string
	for _, c := range rep.Checks {
		switch {
		case c.Name == "instance "+instanceID:
			instance = c.Detail
		case strings.HasPrefix(c.Name, "snapshot "):
			snapshot = c.Name
		}
	}
	if !strings.Contains(instance, "1 ENI in 1 VPC (") || !strings.Contains(instance, ", 1 volume,") {
		t.Errorf("instance check says %q, want 1 ENI in 1 VPC, 1 volume", instance)
	}
	if snapshot != "snapshot 1 volume" {
		t.Errorf("snapshot check named %q, want %q", snapshot, "snapshot 1 volume")
	}
}

// deniedAWS is the refusal of an awsquery service (Auto Scaling, ELBv2): AccessDenied.
func deniedAWS(service, action string) sim.ErrorFault {
	return sim.ErrorFault{Service: service, Action: action, Code: "AccessDenied", Status: http.StatusForbidden, Message: "User is not authorized to perform: " + service + ":" + action}
}

// The incident bucket (issue 15, item 2): a missing one fails preflight (before, it passed and run cut the network
// and then failed at the record), so does one without versioning, or none at all.
func TestChecksTheIncidentBucket(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*sim.Scenario, *preflight.Names)
		row    string
		detail string
	}{
		{"missing", func(_ *sim.Scenario, n *preflight.Names) { n.IncidentBucket = "does-not-exist" }, "incident bucket does-not-exist", "does not exist"},
		{"unversioned", func(sc *sim.Scenario, _ *preflight.Names) { sc.Buckets[0].Versioning = false }, "incident bucket " + bucketName, "versioning is never enabled"},
		{"none given", func(_ *sim.Scenario, n *preflight.Names) { n.IncidentBucket = "" }, "incident bucket", "--incident-bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, n := account(), names
			tt.edit(&sc, &n)
			rep, _ := check(t, sc, n)
			if rep.OK() {
				t.Error("OK() = true, want a failed check")
			}
			var got *preflight.Check
			for i, c := range rep.Checks {
				if c.Name == tt.row {
					got = &rep.Checks[i]
				}
			}
			if got == nil || got.Status != preflight.Fail || !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("row %q = %+v, want fail saying %q", tt.row, got, tt.detail)
			}
		})
	}
}
