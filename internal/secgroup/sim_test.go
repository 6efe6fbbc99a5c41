package secgroup_test

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The simulated account of these tests: two VPCs in the same zone (vpcA with IPv6), groups in both, and three
// instances: one ENI; three ENIs; and two ENIs in two VPCs (a multi-VPC attachment).
const (
	groupName = "ec2-isolation-quarantine"
	vpcA      = "vpc-0a1"
	vpcB      = "vpc-0b2"

	oneENI    = "i-0000000000000001a"
	threeENIs = "i-0000000000000003a"
	twoVPCs   = "i-000000000000002b0"
)

func scenario() sim.Scenario {
	return sim.Scenario{
		VPCs: []sim.VPC{
			{ID: vpcA, CIDR: "10.0.0.0/16", IPv6CIDR: "2600:1f18:1:100::/56"},
			{ID: vpcB, CIDR: "10.1.0.0/16"},
		},
		Subnets: []sim.Subnet{
			{ID: "subnet-0a1", VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.1.0/24"},
			{ID: "subnet-0a2", VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.2.0/24"},
			{ID: "subnet-0b1", VpcID: vpcB, AvailabilityZone: "us-east-1a", CIDR: "10.1.1.0/24"},
		},
		SecurityGroups: []sim.SecurityGroup{
			{ID: "sg-0a1", VpcID: vpcA, Name: "web", Description: "web",
				Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "203.0.113.0/24"}}},
			{ID: "sg-0a2", VpcID: vpcA, Name: "db", Description: "db"},
			{ID: "sg-0b1", VpcID: vpcB, Name: "mgmt", Description: "mgmt"},
		},
		Instances: []sim.Instance{
			{ID: oneENI, SubnetID: "subnet-0a1", Tags: isolateTag, NetworkInterfaces: []sim.NetworkInterface{
				{ID: "eni-01a", SubnetID: "subnet-0a1", DeviceIndex: 0, Groups: []string{"sg-0a1"}},
			}},
			{ID: threeENIs, SubnetID: "subnet-0a1", Tags: isolateTag, NetworkInterfaces: []sim.NetworkInterface{
				{ID: "eni-03a", SubnetID: "subnet-0a1", DeviceIndex: 0, Groups: []string{"sg-0a1", "sg-0a2"}},
				{ID: "eni-03b", SubnetID: "subnet-0a2", DeviceIndex: 1, Groups: []string{"sg-0a2"}},
				{ID: "eni-03c", SubnetID: "subnet-0a1", DeviceIndex: 2, Groups: []string{"sg-0a1"}},
			}},
			{ID: twoVPCs, SubnetID: "subnet-0a1", Tags: isolateTag, NetworkInterfaces: []sim.NetworkInterface{
				{ID: "eni-02a", SubnetID: "subnet-0a1", DeviceIndex: 0, Groups: []string{"sg-0a1"}},
				{ID: "eni-02b", SubnetID: "subnet-0b1", DeviceIndex: 1, Groups: []string{"sg-0b1"}},
			}},
		},
	}
}

// isolateTag is the tag the responder put on every instance before the event (the current tag decides).
var isolateTag = map[string]string{"Isolate": "true"}

// vpcsOf is what "Validate and record" puts in the record: the VPCs of the instance's ENIs, sorted.
var vpcsOf = map[string][]string{oneENI: {vpcA}, threeENIs: {vpcA}, twoVPCs: {vpcA, vpcB}}

// fastWait keeps the visibility waits of the tests short.
var fastWait = secgroup.Wait{Attempts: 30, Base: time.Millisecond, Max: 20 * time.Millisecond}

func start(t *testing.T, sc sim.Scenario) *sim.Server {
	t.Helper()
	return simtest.Start(t, sc)
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// client is a real SDK EC2 client reaching srv as caller.
func client(_ *testing.T, srv *sim.Server, caller string) *ec2.Client {
	return ec2.NewFromConfig(srv.AWSConfig(caller))
}

func newEnsure(t *testing.T, srv *sim.Server, caller string, mode secgroup.Mode) *secgroup.Ensure {
	h := secgroup.NewEnsure(client(t, srv, caller), secgroup.Settings{GroupName: groupName, Mode: mode}, quiet())
	h.Wait = fastWait
	return h
}

func newApply(t *testing.T, srv *sim.Server, caller string, mode secgroup.Mode) *secgroup.Apply {
	return secgroup.NewApply(client(t, srv, caller), mode, quiet())
}

func ensureInput(instance string) workflow.EnsureGroupsInput {
	return workflow.EnsureGroupsInput{InstanceID: instance, ExecutionName: "exec-1", VpcIDs: vpcsOf[instance]}
}

// mutating counts the mutating calls (DryRun excluded) received, and lists their actions.
func mutating(srv *sim.Server) []string { return simtest.Mutating(srv) }

func calledAction(srv *sim.Server, action string) int {
	n := 0
	for _, c := range srv.Calls() {
		if c.Action == action {
			n++
		}
	}
	return n
}

// reader reads the account back through the SDK, as a user would.
type reader struct {
	t   *testing.T
	ec2 *ec2.Client
}

func newReader(t *testing.T, srv *sim.Server) reader {
	return reader{t: t, ec2: client(t, srv, "test-reader")}
}

// groupsNamed returns the groups with this name, by VPC.
func (r reader) groupsNamed(name string) map[string][]types.SecurityGroup {
	r.t.Helper()
	out, err := r.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}},
	})
	if err != nil {
		r.t.Fatalf("DescribeSecurityGroups: %v", err)
	}
	byVPC := map[string][]types.SecurityGroup{}
	for _, g := range out.SecurityGroups {
		byVPC[aws.ToString(g.VpcId)] = append(byVPC[aws.ToString(g.VpcId)], g)
	}
	return byVPC
}

// eniGroups returns the groups of every ENI attached to the instance.
func (r reader) eniGroups(instance string) map[string][]string {
	r.t.Helper()
	out, err := r.ec2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{instance}}},
	})
	if err != nil {
		r.t.Fatalf("DescribeNetworkInterfaces: %v", err)
	}
	m := map[string][]string{}
	for _, n := range out.NetworkInterfaces {
		ids := []string{}
		for _, g := range n.Groups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
		slices.Sort(ids)
		m[aws.ToString(n.NetworkInterfaceId)] = ids
	}
	return m
}

// rule is a security group rule in a comparable form.
type rule struct{ Protocol, Peer string }

func rules(perms []types.IpPermission) []rule {
	out := []rule{}
	for _, p := range perms {
		proto := aws.ToString(p.IpProtocol)
		for _, r := range p.IpRanges {
			out = append(out, rule{proto, aws.ToString(r.CidrIp)})
		}
		for _, r := range p.Ipv6Ranges {
			out = append(out, rule{proto, aws.ToString(r.CidrIpv6)})
		}
		for _, r := range p.UserIdGroupPairs {
			out = append(out, rule{proto, aws.ToString(r.GroupId)})
		}
		for _, r := range p.PrefixListIds {
			out = append(out, rule{proto, aws.ToString(r.PrefixListId)})
		}
	}
	slices.SortFunc(out, func(a, b rule) int {
		if a.Protocol != b.Protocol {
			if a.Protocol < b.Protocol {
				return -1
			}
			return 1
		}
		switch {
		case a.Peer < b.Peer:
			return -1
		case a.Peer > b.Peer:
			return 1
		}
		return 0
	})
	return out
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// change is a workflow.Change without its time.
type change struct{ Resource, Action, Detail string }

func changesOf(cs []workflow.Change) []change {
	out := []change{}
	for _, c := range cs {
		out = append(out, change{c.Resource, c.Action, c.Detail})
	}
	return sortedChanges(out)
}

func sortedChanges(cs []change) []change {
	out := append([]change{}, cs...)
	slices.SortFunc(out, func(a, b change) int {
		return cmp.Or(strings.Compare(a.Resource, b.Resource), strings.Compare(a.Action, b.Action), strings.Compare(a.Detail, b.Detail))
	})
	return out
}

// ignoreAt compares changes without their time.
var ignoreAt = cmpopts.IgnoreFields(workflow.Change{}, "At")

// validated runs "Validate and record" for the instance, as the workflow does first.
func validated(t *testing.T, srv *sim.Server, instance string, mode secgroup.Mode) workflow.Record {
	t.Helper()
	s := validate.Settings{TagKey: "Isolate", TagValue: "true", Groups: secgroup.Settings{GroupName: groupName, Mode: mode}}
	rec, err := validate.New(client(t, srv, "validate"), s, quiet()).Handle(context.Background(),
		workflow.ValidateInput{Event: tagEvent(instance), ExecutionName: "exec-1"})
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return rec
}

// tagEvent is the event EventBridge sends when the instance is tagged Isolate=true.
func tagEvent(instance string) workflow.TagEvent {
	return workflow.TagEvent{
		Version: "0", ID: "5f1ae1f4-7d7f-4a3b-9d0e-000000000001", DetailType: "Tag Change on Resource", Source: "aws.tag",
		Account: "123456789012", Time: "2026-11-22T10:00:00Z", Region: "us-east-1",
		Resources: []string{"arn:aws:ec2:us-east-1:123456789012:instance/" + instance},
		Detail: workflow.TagDetail{ChangedTagKeys: []string{"Isolate"}, Service: "ec2", ResourceType: "instance", Version: 1,
			Tags: map[string]string{"Isolate": "true"}},
	}
}
