package verify_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// hand is a person's (or an attacker's) client: its changes are what the read-back must catch.
func hand(srv *sim.Server) *ec2.Client { return client(srv, "someone") }

// A contained instance: one round of reads, no change; a retry and a redrive change nothing either.
func TestContainedInstanceIsReadOnly(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	iso := isoGroup(t, in)
	h := verifier(srv, secgroup.ModeDirect)
	srv.ResetCalls()
	for _, rerun := range []workflow.Rerun{{}, {Attempt: 1}, {RedriveCount: 1}} {
		in.Rerun = rerun
		out, err := h.Handle(context.Background(), in)
		if err != nil {
			t.Fatalf("%+v: %v", rerun, err)
		}
		if !out.Contained || out.Rounds != 1 || len(out.Open) != 0 || len(out.Changes) != 0 || len(out.Added) != 0 || out.Superseded != "" {
			t.Errorf("%+v: %+v, want contained in one round, nothing open, changed or added", rerun, out)
		}
		want := []workflow.VerifiedInterface{
			{ID: "eni-0a1", VpcID: vpcA, Groups: []string{iso}, IsolationGroupID: iso},
			{ID: "eni-0a2", VpcID: vpcA, Groups: []string{iso}, IsolationGroupID: iso},
		}
		if diff := cmp.Diff(want, out.NetworkInterfaces); diff != "" {
			t.Errorf("interfaces (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]workflow.VerifiedGroup{{VpcID: vpcA, GroupID: iso}}, out.Groups); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
		if len(out.Associations) != 1 || !strings.HasSuffix(out.Associations[0].ProfileARN, "/"+isoName) {
			t.Errorf("associations %+v, want the isolation profile's only", out.Associations)
		}
	}
	if m := simtest.Mutating(srv); len(m) != 0 {
		t.Errorf("mutating calls on a contained instance: %v", m)
	}
	// One round trip: the instance, the groups and the associations at once.
	if got := simtest.Actions(srv, "ec2"); len(got) != 9 {
		t.Errorf("calls %v, want 3 reads per run", got)
	}
	read(t, srv).contained()
}

// Issue 12 case 2(a): a rule added to the isolation group (here after Apply; before the run it is the same
// group, found usable by a check that ignored inbound rules). The read-back finds it, empties the group, names
// the rule.
func TestRuleOnIsolationGroupIsRevoked(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	iso := isoGroup(t, in)
	ctx := context.Background()
	if _, err := hand(srv).AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(iso),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := hand(srv).AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(iso),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		t.Fatal(err)
	}

	out, err := verifier(srv, secgroup.ModeDirect).Handle(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	read(t, srv).contained()
	wantOpen := []string{
		iso + " has 1 ingress rule (tcp 22 from 0.0.0.0/0)",
		iso + " has 1 egress rule (all traffic to 0.0.0.0/0)",
	}
	if diff := cmp.Diff(wantOpen, out.Open); diff != "" {
		t.Errorf("open (-want +got):\n%s", diff)
	}
	if !out.Contained || out.Rounds != 2 || len(out.Groups) != 1 || out.Groups[0].Ingress != 0 || out.Groups[0].Egress != 0 {
		t.Errorf("output %+v, want contained after one repair, the group read back empty", out)
	}
	if got := actions(out.Changes); !slices.Equal(got, []string{"RevokeSecurityGroupEgress", "RevokeSecurityGroupIngress"}) {
		t.Errorf("changes %v", out.Changes)
	}
}

// Issue 12 case 2(b): an ENI on [original, isolation] is open (the union of its groups' rules applies).
func TestENIOnOriginalAndIsolationGroup(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	iso := isoGroup(t, in)
	if _, err := hand(srv).ModifyNetworkInterfaceAttribute(context.Background(), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0a1"), Groups: []string{"sg-0web", iso}}); err != nil {
		t.Fatal(err)
	}
	out, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	read(t, srv).contained()
	if got := read(t, srv).enis()["eni-0a1"]; !slices.Equal(got, []string{iso}) {
		t.Errorf("eni-0a1 carries %v, want only %s", got, iso)
	}
	want := []string{fmt.Sprintf("eni-0a1 carries sg-0web, %s, not only the isolation group %s of %s", iso, iso, vpcA)}
	if diff := cmp.Diff(want, out.Open); diff != "" {
		t.Errorf("open (-want +got):\n%s", diff)
	}
	if len(out.Changes) != 1 || out.Changes[0].Step != "Verify containment" || out.Changes[0].Resource != "eni-0a1" ||
		out.Changes[0].Detail != "groups sg-0web,"+iso+" -> "+iso {
		t.Errorf("changes %+v", out.Changes)
	}
	if len(out.Added) != 0 {
		t.Errorf("added %+v: eni-0a1 is in the record", out.Added)
	}
}

// Issue 12 case 2(c) and the handler side of case 9: an ENI attached after Apply, in the instance's VPC and in a
// VPC without an isolation group. Each is contained (a group created where there is none), and listed in Added
// with its groups before the change, for "Record outcome" to add to the pre-isolation state.
func TestENIAttachedAfterApply(t *testing.T) {
	for _, tt := range []struct {
		name, eni, vpc, subnet string
		groups                 []string
	}{
		{"same VPC", "eni-0a9", vpcA, "subnet-0a2", []string{"sg-0web"}},
		{"new VPC", "eni-0b9", vpcB, "subnet-0b1", []string{"sg-0mgmt"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t)
			in := isolate(t, srv, secgroup.ModeDirect)
			srv.Update(func(a *sim.Account) {
				if err := a.DetachNetworkInterface(tt.eni); err != nil {
					t.Fatal(err)
				}
				if err := a.AttachNetworkInterface(tt.eni, instance, 2); err != nil {
					t.Fatal(err)
				}
			})
			out, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			r := read(t, srv)
			r.contained()
			iso := r.groupNamed(tt.vpc, groupName)
			if got := r.enis()[tt.eni]; !slices.Equal(got, []string{iso}) {
				t.Errorf("%s carries %v, want only %s", tt.eni, got, iso)
			}
			want := []workflow.NetworkInterface{{ID: tt.eni, VpcID: tt.vpc, SubnetID: tt.subnet, DeviceIndex: 2, Groups: tt.groups}}
			if diff := cmp.Diff(want, out.Added); diff != "" {
				t.Errorf("added (-want +got):\n%s", diff)
			}
			if len(out.Open) != 1 || !strings.HasPrefix(out.Open[0], tt.eni+" carries "+strings.Join(tt.groups, ", ")) {
				t.Errorf("open %q, want %s named", out.Open, tt.eni)
			}
			if tt.vpc == vpcB {
				if !slices.Contains(actions(out.Changes), "CreateSecurityGroup") {
					t.Errorf("changes %v, want the group of %s created", out.Changes, vpcB)
				}
				sg := r.group(iso)
				if aws.ToString(sg.VpcId) != vpcB || !strings.Contains(aws.ToString(sg.Description), "quarantine") {
					t.Errorf("group %s: %+v", iso, sg)
				}
			}
			for _, c := range out.Changes {
				if c.Step != "Verify containment" {
					t.Errorf("change %+v not reported as Verify containment's", c)
				}
			}
		})
	}
}

// An ENI attached after Validate that "Apply isolation security group" already isolated: its groups before
// Apply (Apply's observation) are what Added carries; the read-back finds it contained and changes nothing.
func TestENIIsolatedByApplyIsAddedWithItsGroupsBeforeApply(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	iso := isoGroup(t, in)
	srv.Update(func(a *sim.Account) {
		_ = a.DetachNetworkInterface("eni-0a9")
		if err := a.AttachNetworkInterface("eni-0a9", instance, 2); err != nil {
			t.Fatal(err)
		}
	})
	// Apply again (a retry) with the same record: it finds eni-0a9 and isolates it, reporting its groups before.
	apply, err := secgroup.NewApply(client(srv, "apply-security-group"), secgroup.ModeDirect, quiet()).Handle(context.Background(),
		workflow.ApplyGroupsInput{InstanceID: instance, ExecutionName: "exec-1", Record: in.Record, Ensured: in.Groups})
	if err != nil {
		t.Fatal(err)
	}
	in.Apply = &apply
	srv.ResetCalls()
	out, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := []workflow.NetworkInterface{{ID: "eni-0a9", VpcID: vpcA, SubnetID: "subnet-0a2", DeviceIndex: 2, Groups: []string{"sg-0web"}}}
	if diff := cmp.Diff(want, out.Added); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	if out.Rounds != 1 || len(verifyCalls(srv)) != 0 {
		t.Errorf("rounds %d, calls %v: want contained at once", out.Rounds, verifyCalls(srv))
	}
	if got := read(t, srv).enis()["eni-0a9"]; !slices.Equal(got, []string{iso}) {
		t.Errorf("eni-0a9 carries %v", got)
	}
}

// Profile associations: one in disassociating is not attached; another profile associated beside it is open.
// The read-back gives the instance the isolation profile and nothing else.
func TestProfileAssociations(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, a *sim.Account)
		open  []string // what each open item says
	}{
		{"isolation profile disassociating, app profile associated", func(t *testing.T, a *sim.Account) {
			if err := a.SetAssociationState(instance, "disassociating"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.AddAssociation(instance, "app-server", "associated"); err != nil {
				t.Fatal(err)
			}
		}, []string{"of " + isoName + " is disassociating: not attached", "of app-server is associated"}},
		{"isolation profile disassociating", func(t *testing.T, a *sim.Account) {
			if err := a.SetAssociationState(instance, "disassociating"); err != nil {
				t.Fatal(err)
			}
		}, []string{"of " + isoName + " is disassociating: not attached"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t)
			in := isolate(t, srv, secgroup.ModeDirect)
			settled(t, srv)
			srv.Update(func(a *sim.Account) { tt.setup(t, a) })
			out, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			read(t, srv).contained()
			if len(out.Open) != len(tt.open) {
				t.Fatalf("open %q, want %d items", out.Open, len(tt.open))
			}
			for _, p := range tt.open {
				if !slices.ContainsFunc(out.Open, func(o string) bool { return strings.Contains(o, p) }) {
					t.Errorf("open %q, want one saying %q", out.Open, p)
				}
			}
			if len(out.Associations) != 1 || !strings.HasSuffix(out.Associations[0].ProfileARN, "/"+isoName) {
				t.Errorf("associations read back %+v", out.Associations)
			}
		})
	}
	t.Run("another profile in place of the isolation profile", func(t *testing.T) {
		srv := start(t)
		in := isolate(t, srv, secgroup.ModeDirect)
		settled(t, srv)
		ctx := context.Background()
		as, err := hand(srv).DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{})
		if err != nil || len(as.IamInstanceProfileAssociations) != 1 {
			t.Fatal(err, as)
		}
		if _, err := hand(srv).ReplaceIamInstanceProfileAssociation(ctx, &ec2.ReplaceIamInstanceProfileAssociationInput{
			AssociationId:      as.IamInstanceProfileAssociations[0].AssociationId,
			IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("app-server")}}); err != nil {
			t.Fatal(err)
		}
		settled(t, srv)
		out, err := verifier(srv, secgroup.ModeDirect).Handle(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		read(t, srv).contained()
		if len(out.Open) != 2 || !strings.Contains(out.Open[0], "of app-server is associated") ||
			out.Open[1] != "the isolation profile "+isoName+" is not associated" {
			t.Errorf("open %q", out.Open)
		}
		if got := actions(out.Changes); !slices.Equal(got, []string{"ReplaceIamInstanceProfileAssociation"}) {
			t.Errorf("changes %v, want the app profile replaced by the isolation profile", got)
		}
	})
}

// settled waits (bounded) until no association changes state.
func settled(t *testing.T, srv *sim.Server) {
	t.Helper()
	for range 500 {
		if as := read(t, srv).associations(); !slices.ContainsFunc(as, func(a string) bool {
			return strings.HasSuffix(a, "ing")
		}) {
			return
		}
		advance(srv, 5*time.Millisecond)
	}
	t.Fatal("associations never settled")
}

// What cannot be contained fails loudly, naming it, after a bounded number of rounds; what is retryable (a 5xx
// with no end) is left to the state machine's retries. Either way the state read back is honest.
func TestNotContained(t *testing.T) {
	for _, tt := range []struct {
		name, code string
		status     int
		calls      int
		check      func(t *testing.T, err error, iso string)
	}{
		{"refused", "UnauthorizedOperation", 403, 2, func(t *testing.T, err error, iso string) {
			var nc *steperr.NotContained
			if !errors.As(err, &nc) || fmt.Sprintf("%T", err) != "*steperr.NotContained" {
				t.Fatalf("error %T %v, want NotContained", err, err)
			}
			want := fmt.Sprintf("eni-0a1 carries sg-0web, %s, not only the isolation group %s of %s", iso, iso, vpcA)
			if len(nc.Open) != 2 || nc.Open[0] != want || !strings.Contains(nc.Open[1], "UnauthorizedOperation") || nc.InstanceID != instance {
				t.Errorf("open %q, want %q and the refusal", nc.Open, want)
			}
		}},
		{"server error", "InternalError", 500, 2 * awscfg.MaxAttempts, func(t *testing.T, err error, _ string) {
			if fmt.Sprintf("%T", err) != "*steperr.Transient" {
				t.Fatalf("error %T %v, want Transient (retried by the state machine)", err, err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t)
			in := isolate(t, srv, secgroup.ModeDirect)
			iso := isoGroup(t, in)
			if _, err := hand(srv).ModifyNetworkInterfaceAttribute(context.Background(), &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String("eni-0a1"), Groups: []string{"sg-0web", iso}}); err != nil {
				t.Fatal(err)
			}
			srv.Update(func(a *sim.Account) {
				a.Faults.Errors = []sim.ErrorFault{{Action: "ModifyNetworkInterfaceAttribute", Caller: caller, Code: tt.code, Status: tt.status}}
			})
			srv.ResetCalls()
			_, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
			tt.check(t, err, iso)
			if got := read(t, srv).enis()["eni-0a1"]; !slices.Equal(got, []string{"sg-0web", iso}) {
				t.Errorf("eni-0a1 carries %v", got)
			}
			// Bounded: two rounds of repair (each call retried by the SDK on a 5xx), then the verdict.
			if n := len(verifyCalls(srv)); n != tt.calls {
				t.Errorf("%d modify calls, want %d (2 rounds)", n, tt.calls)
			}
		})
	}
}

// A terminated instance is never reported contained.
func TestTerminatedInstance(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	srv.Update(func(a *sim.Account) {
		if err := a.TerminateInstance(instance); err != nil {
			t.Fatal(err)
		}
	})
	srv.ResetCalls()
	out, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
	var ni *steperr.InstanceNotIsolatable
	if !errors.As(err, &ni) || !strings.Contains(ni.Reason, "terminated") || out.Contained {
		t.Fatalf("%+v, %T %v: want InstanceNotIsolatable saying terminated", out, err, err)
	}
	if m := simtest.Mutating(srv); len(m) != 0 {
		t.Errorf("mutating calls: %v", m)
	}
}

// The current tag no longer carries the isolation value: a note; containment is verified all the same.
func TestSupersededIsANote(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	srv.Update(func(a *sim.Account) { a.SetTag(instance, "Isolate", "release") })
	srv.ResetCalls()
	out, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
	if err != nil || !out.Contained {
		t.Fatalf("%+v %v", out, err)
	}
	if out.Superseded != `the instance now carries Isolate="release", not Isolate="true"` {
		t.Errorf("superseded %q", out.Superseded)
	}
	if m := simtest.Mutating(srv); len(m) != 0 {
		t.Errorf("mutating calls: %v", m)
	}
}

// Untrack-first mode: a repair puts an ENI straight on the isolation group, never on the allow-all group; an
// ENI attached since Validate that already carries the allow-all group is no pre-isolation observation.
func TestUntrackFirstRepairsDirectly(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeUntrackFirst)
	var untrack string
	for _, g := range in.Groups.Groups {
		untrack = g.UntrackGroupID
	}
	if untrack == "" {
		t.Fatal("no allow-all group")
	}
	ctx := context.Background()
	if _, err := hand(srv).ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0a1"), Groups: []string{untrack}}); err != nil {
		t.Fatal(err)
	}
	srv.Update(func(a *sim.Account) {
		_ = a.DetachNetworkInterface("eni-0a9")
		if err := a.AttachNetworkInterface("eni-0a9", instance, 2); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := hand(srv).ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0a9"), Groups: []string{"sg-0web", untrack}}); err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	out, err := verifier(srv, secgroup.ModeUntrackFirst).Handle(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	read(t, srv).contained()
	iso := isoGroup(t, in)
	for _, c := range srv.Calls() {
		if c.Caller == caller && c.Action == "ModifyNetworkInterfaceAttribute" && c.Params.Get("SecurityGroupId.1") != iso {
			t.Errorf("a repair put %s on %v", c.Params.Get("NetworkInterfaceId"), c.Params["SecurityGroupId.1"])
		}
	}
	if len(out.Added) != 0 {
		t.Errorf("added %+v: its groups hold the allow-all group", out.Added)
	}
	if len(read(t, srv).group(untrack).IpPermissions) == 0 {
		t.Error("the allow-all group was changed")
	}
}

// The isolation group the network branch used was deleted since (and the ENIs put back): the read-back finds
// the VPC without a group, creates one as Ensure does and contains the ENIs on it.
func TestIsolationGroupDeletedSince(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	iso := isoGroup(t, in)
	ctx := context.Background()
	for _, eni := range []string{"eni-0a1", "eni-0a2"} {
		if _, err := hand(srv).ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eni), Groups: []string{"sg-0db"}}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Update(func(a *sim.Account) {
		if err := a.DeleteSecurityGroup(iso); err != nil {
			t.Fatal(err)
		}
	})
	out, err := verifier(srv, secgroup.ModeDirect).Handle(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	read(t, srv).contained()
	if got := read(t, srv).groupNamed(vpcA, groupName); got == iso || got == "" {
		t.Errorf("isolation group %q, want a new one", got)
	}
	if len(out.Open) != 2 || out.Open[0] != "eni-0a1 carries sg-0db, and "+vpcA+" has no isolation group" {
		t.Errorf("open %q", out.Open)
	}
}

// Input the definition never produces, and settings the stack never sets, are refused before any call.
func TestRefusals(t *testing.T) {
	srv := start(t)
	h := verifier(srv, secgroup.ModeDirect)
	for _, tt := range []struct {
		name string
		in   workflow.VerifyInput
	}{
		{"no instance", workflow.VerifyInput{ExecutionName: "e"}},
		{"not an instance id", workflow.VerifyInput{InstanceID: "eni-0a1", ExecutionName: "e"}},
		{"no execution", workflow.VerifyInput{InstanceID: instance}},
		{"another instance's record", workflow.VerifyInput{InstanceID: instance, ExecutionName: "e", Record: &workflow.Record{InstanceID: spare}}},
	} {
		_, err := h.Handle(context.Background(), tt.in)
		var ii *steperr.InvalidInput
		if !errors.As(err, &ii) {
			t.Errorf("%s: %T %v, want InvalidInput", tt.name, err, err)
		}
	}
	if calls := srv.Calls(); len(calls) != 0 {
		t.Errorf("calls: %v", calls)
	}
	env := map[string]string{"ISOLATION_GROUP_NAME": groupName, "ISOLATION_PROFILE_NAME": isoName, "TAG_KEY": "Isolate", "TAG_VALUE": "true"}
	for _, missing := range []string{"ISOLATION_GROUP_NAME", "ISOLATION_PROFILE_NAME", "TAG_KEY", "TAG_VALUE"} {
		_, err := verifySettings(env, missing)
		var ce *steperr.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: %v, want a ConfigError naming it", missing, err)
		}
	}
	if _, err := verifySettings(env, ""); err != nil {
		t.Errorf("complete settings: %v", err)
	}
}

func actions(cs []workflow.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Action)
	}
	slices.Sort(out)
	return out
}

// Issue 12 case 3, the read-back's side: where a foreign group holds the isolation group's name, the isolation
// group is ec2-isolation's group under another name (tagged as a managed isolation group). An ENI attached in
// that VPC goes on it; the foreign group is neither used nor changed.
func TestForeignGroupHoldsTheName(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups,
		sim.SecurityGroup{ID: "sg-0f0", VpcID: vpcB, Name: groupName, Description: "someone else's",
			Ingress: []sim.Rule{{Protocol: "-1", CIDR: "0.0.0.0/0"}}},
		sim.SecurityGroup{ID: "sg-0d0", VpcID: vpcB, Name: groupName + "-2", Description: "ours", Egress: []sim.Rule{},
			Tags: map[string]string{secgroup.TagManaged: "true", secgroup.TagRole: "isolation"}})
	srv := startWith(t, sc)
	in := isolate(t, srv, secgroup.ModeDirect)
	srv.Update(func(a *sim.Account) {
		_ = a.DetachNetworkInterface("eni-0b9")
		if err := a.AttachNetworkInterface("eni-0b9", instance, 2); err != nil {
			t.Fatal(err)
		}
	})
	srv.ResetCalls()
	out, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	r := read(t, srv)
	if got := r.enis()["eni-0b9"]; !slices.Equal(got, []string{"sg-0d0"}) {
		t.Errorf("eni-0b9 carries %v, want only sg-0d0", got)
	}
	if got := verifyCalls(srv); !slices.Equal(got, []string{"ModifyNetworkInterfaceAttribute"}) {
		t.Errorf("mutating calls %v, want eni-0b9 modified only", got)
	}
	if len(r.group("sg-0f0").IpPermissions) != 1 {
		t.Error("the foreign group was changed")
	}
	if !out.Contained || len(out.Added) != 1 || out.Added[0].ID != "eni-0b9" {
		t.Errorf("%+v", out)
	}
}

// Two executions verify the same instance at once, each finding an ENI in a VPC without an isolation group: both
// end contained, on the one group created (the loser of the creation race uses the winner's).
func TestConcurrentVerifications(t *testing.T) {
	srv := start(t)
	in := isolate(t, srv, secgroup.ModeDirect)
	srv.Update(func(a *sim.Account) {
		_ = a.DetachNetworkInterface("eni-0b9")
		if err := a.AttachNetworkInterface("eni-0b9", instance, 2); err != nil {
			t.Fatal(err)
		}
	})
	outs := make([]workflow.VerifyOutput, 2)
	errs := make([]error, 2)
	done := make(chan int)
	for i := range 2 {
		go func() {
			in := in
			in.ExecutionName = fmt.Sprintf("exec-%d", i+1)
			outs[i], errs[i] = verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
			done <- i
		}()
	}
	<-done
	<-done
	for i := range 2 {
		if errs[i] != nil || !outs[i].Contained {
			t.Errorf("execution %d: %+v %v", i+1, outs[i], errs[i])
		}
	}
	r := read(t, srv)
	r.contained()
	out, err := r.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpcB}}, {Name: aws.String("group-name"), Values: []string{groupName}}}})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Errorf("isolation groups in %s: %v %v", vpcB, out, err)
	}
}

// Reads that keep failing are the named errors the state machine retries; nothing is changed.
func TestReadFailures(t *testing.T) {
	for _, tt := range []struct{ action, code, want string }{
		{"DescribeInstances", "RequestLimitExceeded", "*steperr.Throttled"},
		{"DescribeSecurityGroups", "InternalError", "*steperr.Transient"},
		{"DescribeIamInstanceProfileAssociations", "Unavailable", "*steperr.Transient"},
	} {
		t.Run(tt.action, func(t *testing.T) {
			srv := start(t)
			in := isolate(t, srv, secgroup.ModeDirect)
			srv.Update(func(a *sim.Account) {
				a.Faults.Errors = []sim.ErrorFault{{Action: tt.action, Caller: caller, Code: tt.code}}
			})
			srv.ResetCalls()
			_, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
			if got := fmt.Sprintf("%T", err); got != tt.want {
				t.Errorf("%s %v, want %s", got, err, tt.want)
			}
			if m := simtest.Mutating(srv); len(m) != 0 {
				t.Errorf("mutating calls: %v", m)
			}
		})
	}
}

// Issue 12 case 3 with no group of ours yet in that VPC: the read-back has Ensure make one under the derived name
// (never touching the foreign group), contains the ENI on it; a retry finds it contained (by its tags) and
// changes nothing.
func TestForeignGroupOnlyThenRetry(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0f0", VpcID: vpcB, Name: groupName,
		Description: "someone else's", Ingress: []sim.Rule{{Protocol: "-1", CIDR: "0.0.0.0/0"}}})
	srv := startWith(t, sc)
	in := isolate(t, srv, secgroup.ModeDirect)
	srv.Update(func(a *sim.Account) {
		_ = a.DetachNetworkInterface("eni-0b9")
		if err := a.AttachNetworkInterface("eni-0b9", instance, 2); err != nil {
			t.Fatal(err)
		}
	})
	h := verifier(srv, secgroup.ModeDirect)
	out, err := h.Handle(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	r := read(t, srv)
	derived := r.groupNamed(vpcB, secgroup.DerivedName(groupName))
	if derived == "" || !out.Contained {
		t.Fatalf("no group %s in %s; %+v", secgroup.DerivedName(groupName), vpcB, out)
	}
	if got := r.enis()["eni-0b9"]; !slices.Equal(got, []string{derived}) {
		t.Errorf("eni-0b9 carries %v, want only %s", got, derived)
	}
	if sg := r.group(derived); len(sg.IpPermissions)+len(sg.IpPermissionsEgress) != 0 || !secgroup.Managed(&sg) {
		t.Errorf("derived group %+v", sg)
	}
	if len(r.group("sg-0f0").IpPermissions) != 1 {
		t.Error("the foreign group was changed")
	}
	if len(out.Open) != 1 || !strings.Contains(out.Open[0], "sg-0f0 has the isolation group's name") {
		t.Errorf("open %q, want the foreign group named", out.Open)
	}

	srv.ResetCalls()
	in.Attempt = 1
	again, err := h.Handle(context.Background(), in)
	if err != nil || !again.Contained || again.Rounds != 1 || len(simtest.Mutating(srv)) != 0 {
		t.Errorf("retry: %+v %v, mutating %v; want contained at once, no change", again, err, simtest.Mutating(srv))
	}
}

// TestReadBackSparesTheUnfilteredBucket (issue 16): in a storm the next instances' Validate reads DescribeInstances
// without a filter, from EC2's smaller unfiltered bucket (50 at 10/s); the read-back filters by instance id and so
// reads from the non-mutating one. Here the unfiltered bucket is empty (the simulator's clock stands still, so it
// never refills) and the verification still reads everything at its first attempt.
func TestReadBackSparesTheUnfilteredBucket(t *testing.T) {
	sc := scenario()
	sc.Faults.TokenBuckets.Enabled = true
	srv := startWith(t, sc)
	in := isolate(t, srv, secgroup.ModeDirect)
	other := client(srv, "other-caller")
	for i := 0; ; i++ {
		_, err := other.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{instance}},
			func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
		if err != nil {
			if steperr.Code(err) != "RequestLimitExceeded" || i < 10 {
				t.Fatalf("unfiltered call %d: %v", i, err)
			}
			break
		}
	}
	srv.ResetCalls()
	out, err := verifier(srv, secgroup.ModeDirect).Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !out.Contained {
		t.Errorf("%+v, want contained", out)
	}
	for _, c := range srv.Calls() {
		if c.ErrorCode == "RequestLimitExceeded" {
			t.Errorf("%s throttled: the read-back took from the unfiltered bucket", c.Action)
		}
	}
}
