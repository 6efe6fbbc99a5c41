package verify_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/verify"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The simulated account: two VPCs in one zone; the instance has two ENIs in vpcA and the app-server profile; a
// spare (stopped) instance holds ENIs a test moves onto the instance after Apply, one of them in vpcB, where no
// isolation group exists.
const (
	account   = "123456789012"
	region    = "us-east-1"
	vpcA      = "vpc-0a1"
	vpcB      = "vpc-0b2"
	instance  = "i-0123456789abcdef0"
	spare     = "i-0fedcba9876543210"
	groupName = "ec2-isolation-quarantine"
	isoName   = "ec2-isolation"
	caller    = "verify-containment" // the function's role, as the simulator records it
)

func scenario() sim.Scenario {
	return sim.Scenario{
		Account: account, Region: region,
		VPCs: []sim.VPC{{ID: vpcA, CIDR: "10.0.0.0/16", IPv6CIDR: "2600:1f18:1:100::/56"}, {ID: vpcB, CIDR: "10.1.0.0/16"}},
		Subnets: []sim.Subnet{
			{ID: "subnet-0a1", VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.1.0/24"},
			{ID: "subnet-0a2", VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.2.0/24"},
			{ID: "subnet-0b1", VpcID: vpcB, AvailabilityZone: "us-east-1a", CIDR: "10.1.1.0/24"},
		},
		SecurityGroups: []sim.SecurityGroup{
			{ID: "sg-0web", VpcID: vpcA, Name: "web", Description: "web",
				Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "203.0.113.0/24"}}},
			{ID: "sg-0db", VpcID: vpcA, Name: "db", Description: "db"},
			{ID: "sg-0mgmt", VpcID: vpcB, Name: "mgmt", Description: "mgmt"},
		},
		InstanceProfiles: []sim.InstanceProfile{{Name: "app-server", Role: "app-server"}, {Name: isoName, Role: isoName}},
		Instances: []sim.Instance{
			{ID: instance, SubnetID: "subnet-0a1", Profile: "app-server", Tags: map[string]string{"Isolate": "true", "Name": "web-1"},
				NetworkInterfaces: []sim.NetworkInterface{
					{ID: "eni-0a1", SubnetID: "subnet-0a1", DeviceIndex: 0, Groups: []string{"sg-0web", "sg-0db"}},
					{ID: "eni-0a2", SubnetID: "subnet-0a2", DeviceIndex: 1, Groups: []string{"sg-0db"}},
				}},
			{ID: spare, State: "stopped", SubnetID: "subnet-0a1", NetworkInterfaces: []sim.NetworkInterface{
				{ID: "eni-0a8", SubnetID: "subnet-0a1", DeviceIndex: 0, Groups: []string{"sg-0db"}},
				{ID: "eni-0a9", SubnetID: "subnet-0a2", DeviceIndex: 1, Groups: []string{"sg-0web"}},
				{ID: "eni-0b9", SubnetID: "subnet-0b1", DeviceIndex: 2, Groups: []string{"sg-0mgmt"}},
			}},
		},
		Behaviour: sim.Behaviour{AssociationSettle: 20 * time.Millisecond},
	}
}

// fastWait keeps the in-handler waits short; bounded by attempts, not by the wall clock.
var fastWait = secgroup.Wait{Attempts: 30, Base: time.Millisecond, Max: 20 * time.Millisecond}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func settings(mode secgroup.Mode) verify.Settings {
	return verify.Settings{Groups: secgroup.Settings{GroupName: groupName, Mode: mode},
		Profile: profile.Settings{IsolationProfileName: isoName}, TagKey: "Isolate", TagValue: "true"}
}

func client(srv *sim.Server, who string) *ec2.Client { return ec2.NewFromConfig(srv.AWSConfig(who)) }

func verifier(srv *sim.Server, mode secgroup.Mode) *verify.Handler {
	h := verify.New(client(srv, caller), settings(mode), quiet())
	h.Wait = fastWait
	h.Sleep = func(_ context.Context, d time.Duration) error {
		advance(srv, d)
		return nil
	}
	return h
}

// clocks are the simulators' virtual clocks: time moves only when a step waits (or a test says so), so that what
// a step waits for (an association settling) happens when it waits, however loaded the machine is.
var clocks sync.Map // *sim.Server -> *sim.ManualClock

func advance(srv *sim.Server, d time.Duration) {
	c, _ := clocks.Load(srv)
	c.(*sim.ManualClock).Advance(d)
}

// isolate runs the real containment steps (Validate and record, Ensure, Apply, Disassociate, Attach), each with
// its own caller, and returns the input "Verify containment" gets after them.
func isolate(t testing.TB, srv *sim.Server, mode secgroup.Mode) workflow.VerifyInput {
	t.Helper()
	ctx := context.Background()
	gs := secgroup.Settings{GroupName: groupName, Mode: mode}
	rec, err := validate.New(client(srv, "validate-and-record"), validate.Settings{TagKey: "Isolate", TagValue: "true", Groups: gs}, quiet()).
		Handle(ctx, workflow.ValidateInput{ExecutionName: "exec-1", Event: tagEvent(instance)})
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	in := workflow.VerifyInput{InstanceID: instance, ExecutionName: "exec-1", Record: &rec}
	if !rec.GroupsReady {
		ensure := secgroup.NewEnsure(client(srv, "ensure-security-group"), gs, quiet())
		ensure.Wait = fastWait
		groups, err := ensure.Handle(ctx, workflow.EnsureGroupsInput{InstanceID: instance, ExecutionName: "exec-1", VpcIDs: rec.VpcIDs, Record: &rec})
		if err != nil {
			t.Fatalf("ensure: %v", err)
		}
		in.Groups = &groups
	}
	var ensured *workflow.EnsureGroupsOutput
	if in.Groups != nil {
		ensured = in.Groups
	}
	var apply workflow.ApplyGroupsOutput
	for range 100 { // Apply's GroupNotVisible is retried by the state machine
		apply, err = secgroup.NewApply(client(srv, "apply-security-group"), mode, quiet()).
			Handle(ctx, workflow.ApplyGroupsInput{InstanceID: instance, ExecutionName: "exec-1", Record: &rec, Ensured: ensured})
		var nv *steperr.GroupNotVisible
		if !errors.As(err, &nv) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	in.Apply = &apply
	ps := profile.Settings{IsolationProfileName: isoName}
	iin := workflow.InstanceInput{InstanceID: instance, ExecutionName: "exec-1"}
	if _, err := profile.NewDisassociate(client(srv, "disassociate-profile"), ps, quiet()).Handle(ctx, iin); err != nil {
		t.Fatalf("disassociate: %v", err)
	}
	attach := profile.NewAttach(client(srv, "attach-isolation-profile"), ps, quiet())
	for attempt := 0; ; attempt++ { // AssociationPending is retried by the state machine
		_, err := attach.Handle(ctx, iin)
		var ap *steperr.AssociationPending
		if err == nil {
			break
		}
		if !errors.As(err, &ap) || attempt == 500 {
			t.Fatalf("attach: %v", err)
		}
		advance(srv, 5*time.Millisecond) // the state machine's Retry interval
	}
	return in
}

func tagEvent(id string) workflow.TagEvent {
	return workflow.TagEvent{Version: "0", ID: "5f1ae1f4-7d7f-4a3b-9d0e-000000000001", DetailType: "Tag Change on Resource",
		Source: "aws.tag", Account: account, Time: "2026-11-22T10:00:00Z", Region: region,
		Resources: []string{"arn:aws:ec2:" + region + ":" + account + ":instance/" + id},
		Detail: workflow.TagDetail{ChangedTagKeys: []string{"Isolate"}, Service: "ec2", ResourceType: "instance", Version: 3,
			Tags: map[string]string{"Isolate": "true"}}}
}

// reader reads the account back through the SDK, as a user would.
type reader struct {
	t   testing.TB
	ec2 *ec2.Client
}

func read(t *testing.T, srv *sim.Server) reader { return reader{t, client(srv, "test")} }

// enis returns the groups of every ENI attached to the instance, by ENI id.
func (r reader) enis() map[string][]string { return r.enisOf(instance) }

func (r reader) enisOf(id string) map[string][]string {
	r.t.Helper()
	out, err := r.ec2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if err != nil {
		r.t.Fatalf("describe network interfaces: %v", err)
	}
	got := map[string][]string{}
	for _, n := range out.NetworkInterfaces {
		var gs []string
		for _, g := range n.Groups {
			gs = append(gs, aws.ToString(g.GroupId))
		}
		got[aws.ToString(n.NetworkInterfaceId)] = gs
	}
	return got
}

func (r reader) group(id string) types.SecurityGroup {
	r.t.Helper()
	out, err := r.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil || len(out.SecurityGroups) != 1 {
		r.t.Fatalf("describe security group %s: %v", id, err)
	}
	return out.SecurityGroups[0]
}

// groupNamed is the group named name in vpc ("" when there is none).
func (r reader) groupNamed(vpc, name string) string {
	r.t.Helper()
	out, err := r.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil {
		r.t.Fatalf("describe security groups: %v", err)
	}
	if len(out.SecurityGroups) == 0 {
		return ""
	}
	return aws.ToString(out.SecurityGroups[0].GroupId)
}

func (r reader) vpcOf(eni string) string {
	r.t.Helper()
	out, err := r.ec2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		r.t.Fatalf("describe %s: %v", eni, err)
	}
	return aws.ToString(out.NetworkInterfaces[0].VpcId)
}

// associations are the instance's associations not disassociated, as "profile-name state".
func (r reader) associations() []string {
	r.t.Helper()
	out, err := r.ec2.DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{instance}}}})
	if err != nil {
		r.t.Fatalf("describe associations: %v", err)
	}
	var got []string
	for _, a := range out.IamInstanceProfileAssociations {
		if a.State != types.IamInstanceProfileAssociationStateDisassociated {
			arn := aws.ToString(a.IamInstanceProfile.Arn)
			got = append(got, arn[strings.LastIndex(arn, "/")+1:]+" "+string(a.State))
		}
	}
	slices.Sort(got)
	return got
}

// contained checks, through the SDK, what the user relies on: every attached ENI carries exactly one group, the
// managed group named as the isolation group in its VPC, which has no rule; the isolation profile is the only
// association, associated or associating.
func (r reader) contained() {
	r.t.Helper()
	enis := r.enis()
	if len(enis) == 0 {
		r.t.Fatal("no ENI attached")
	}
	for eni, groups := range enis {
		want := r.groupNamed(r.vpcOf(eni), groupName)
		if want == "" || !slices.Equal(groups, []string{want}) {
			r.t.Errorf("%s carries %v, want only the isolation group %q of its VPC", eni, groups, want)
			continue
		}
		sg := r.group(want)
		if len(sg.IpPermissions) > 0 || len(sg.IpPermissionsEgress) > 0 {
			r.t.Errorf("isolation group %s has rules: in %v out %v", want, sg.IpPermissions, sg.IpPermissionsEgress)
		}
		if !secgroup.Managed(&sg) {
			r.t.Errorf("isolation group %s is not tagged as managed", want)
		}
	}
	as := r.associations()
	if len(as) != 1 || (as[0] != isoName+" associated" && as[0] != isoName+" associating") {
		r.t.Errorf("associations %v, want only the isolation profile", as)
	}
}

// isoGroup is the isolation group of vpcA the network branch used.
func isoGroup(t *testing.T, in workflow.VerifyInput) string {
	t.Helper()
	groups := in.Record.IsolationGroups
	if in.Groups != nil {
		groups = in.Groups.Groups
	}
	for _, g := range groups {
		if g.VpcID == vpcA {
			return g.IsolationGroupID
		}
	}
	t.Fatal("no isolation group of vpcA in the input")
	return ""
}

func start(t testing.TB) *sim.Server { return startWith(t, scenario()) }

// startWith serves sc on a virtual clock.
func startWith(t testing.TB, sc sim.Scenario) *sim.Server {
	t.Helper()
	clock := sim.NewManualClock(time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC))
	srv, err := sim.Start(sc, sim.WithClock(clock))
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(srv.Close)
	clocks.Store(srv, clock)
	return srv
}

// verifyCalls lists the actions of the function's mutating calls.
func verifyCalls(srv *sim.Server) []string {
	var out []string
	for _, c := range srv.Calls() {
		if c.Caller == caller && c.Mutating {
			out = append(out, c.Action)
		}
	}
	return out
}

// verifySettings reads the settings from env without the variable missing.
func verifySettings(env map[string]string, missing string) (verify.Settings, error) {
	return verify.SettingsFromEnv(func(k string) string {
		if k == missing {
			return ""
		}
		return env[k]
	})
}
