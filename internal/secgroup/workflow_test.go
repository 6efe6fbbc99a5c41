package secgroup_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
)

// The default account's instance (events/isolate.json): three ENIs, two in vpc-0a1…, one in vpc-0b2….
const (
	defaultInstance = "i-0a1b2c3d4e5f60718"
	defaultVPCA     = "vpc-0a11111111111111a"
	defaultVPCB     = "vpc-0b22222222222222b"
	foreignGroup    = "sg-0b2000000000000f1"
)

// isolateDefault runs the isolation workflow (the real definition and handlers, in process) on the simulate
// command's default account after change, with no delay that a wall clock could race: waits return at once and
// the account answers without latency or asynchronous settling. onEvent (optional) sees each history event as
// it is recorded, before the state it announces runs.
func isolateDefault(t *testing.T, change func(*sim.Scenario), onEvent ...func(*sim.Server, asl.Event)) (*sim.Server, *asl.Execution) {
	t.Helper()
	sc, err := sim.LoadScenario("../../cmd/isolation/scenarios/default.json")
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults, sc.Behaviour = sim.Faults{}, sim.Behaviour{}
	sc.Roles = append(sc.Roles, sim.Role{Name: "web-app-role"}, sim.Role{Name: "ec2-isolation-quarantine"})
	change(&sc)
	srv, err := sim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	env := stackenv.Getenv(stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil))
	r, err := runner.New(runner.Config{
		Definition: ec2isolation.Definition, StateMachineName: runner.StateMachineName, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: env, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Engine: asl.Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }, OnEvent: func(ev asl.Event) {
			for _, f := range onEvent {
				f(srv, ev)
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile("../../events/isolate.json")
	if err != nil {
		t.Fatal(err)
	}
	return srv, r.Start(context.Background(), "isolate-1", event)
}

// Issue 12 case 3, end to end: a group that is not ours has the isolation group's name in one of the instance's
// two VPCs. The execution succeeds; every ENI is on a managed, empty group of its VPC (the derived one in that
// VPC); the foreign group is unchanged. Before, the execution failed with a ConfigError and no ENI was contained.
func TestIsolationBesideAForeignGroupContainsEveryENI(t *testing.T) {
	groupName := stackenv.Getenv(stackenv.ForSim(sim.Scenario{}, "us-east-1", "123456789012", nil))(secgroup.EnvGroupName)
	srv, e := isolateDefault(t, func(sc *sim.Scenario) {
		sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: foreignGroup, VpcID: defaultVPCB, Name: groupName,
			Description: "a team's group that happens to share the name", Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}}})
	})
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s %s: %s", e.Status, e.Error, e.Cause)
	}
	r := newReader(t, srv)
	iso := map[string]string{}
	for vpc, name := range map[string]string{defaultVPCA: groupName, defaultVPCB: secgroup.DerivedName(groupName)} {
		gs := r.groupsNamed(name)[vpc]
		if len(gs) != 1 || !secgroup.Managed(&gs[0]) || len(gs[0].IpPermissions)+len(gs[0].IpPermissionsEgress) != 0 {
			t.Fatalf("%s in %s: %+v, want one managed group without rules", name, vpc, gs)
		}
		iso[vpc] = aws.ToString(gs[0].GroupId)
	}
	want := map[string][]string{
		"eni-0a1b2c3d4e5f00001": {iso[defaultVPCA]}, "eni-0a1b2c3d4e5f00002": {iso[defaultVPCA]}, "eni-0a1b2c3d4e5f00003": {iso[defaultVPCB]},
	}
	if diff := cmp.Diff(want, r.eniGroups(defaultInstance)); diff != "" {
		t.Errorf("ENI groups (-want +got):\n%s", diff)
	}
	f := r.groupsNamed(groupName)[defaultVPCB]
	if len(f) != 1 || aws.ToString(f[0].GroupId) != foreignGroup || len(f[0].IpPermissions) != 1 {
		t.Errorf("the foreign group was changed: %+v", f)
	}
	for _, c := range srv.Calls() {
		if c.Mutating && c.Params.Get("GroupId") == foreignGroup {
			t.Errorf("%s on the foreign group", c.Action)
		}
	}
}

// Issue 12 case 4, end to end (warm path): our isolation groups exist, so Validate finds them ready and Ensure is
// skipped; one is deleted just before Apply. Apply reports GroupMissing, the definition sends it to Ensure, which
// creates the group again, and the execution succeeds with every ENI contained. Before: 8 retries of
// GroupNotVisible, then FAILED, and a redrive failed the same way.
func TestIsolationWhenAGroupIsDeletedBeforeApply(t *testing.T) {
	groupName := stackenv.Getenv(stackenv.ForSim(sim.Scenario{}, "us-east-1", "123456789012", nil))(secgroup.EnvGroupName)
	const isoA, isoB = "sg-0a1000000000000e1", "sg-0b2000000000000e1"
	deleted := false
	srv, e := isolateDefault(t, func(sc *sim.Scenario) {
		managed := map[string]string{secgroup.TagManaged: "true"}
		sc.SecurityGroups = append(sc.SecurityGroups,
			sim.SecurityGroup{ID: isoA, VpcID: defaultVPCA, Name: groupName, Description: "q", Egress: []sim.Rule{}, Tags: managed},
			sim.SecurityGroup{ID: isoB, VpcID: defaultVPCB, Name: groupName, Description: "q", Egress: []sim.Rule{}, Tags: managed})
	}, func(srv *sim.Server, ev asl.Event) {
		if ev.Type == asl.TaskScheduled && ev.State == "Apply isolation security group" && !deleted {
			deleted = true
			srv.Update(func(a *sim.Account) {
				if err := a.DeleteSecurityGroup(isoB); err != nil {
					t.Errorf("delete %s: %v", isoB, err)
				}
			})
		}
	})
	if !deleted {
		t.Fatal("Apply isolation security group never scheduled")
	}
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s %s: %s", e.Status, e.Error, e.Cause)
	}
	r := newReader(t, srv)
	gs := r.groupsNamed(groupName)[defaultVPCB]
	if len(gs) != 1 || aws.ToString(gs[0].GroupId) == isoB {
		t.Fatalf("groups named %s in %s: %+v, want one new group", groupName, defaultVPCB, gs)
	}
	want := map[string][]string{
		"eni-0a1b2c3d4e5f00001": {isoA}, "eni-0a1b2c3d4e5f00002": {isoA}, "eni-0a1b2c3d4e5f00003": {aws.ToString(gs[0].GroupId)},
	}
	if diff := cmp.Diff(want, r.eniGroups(defaultInstance)); diff != "" {
		t.Errorf("ENI groups (-want +got):\n%s", diff)
	}
	var applies, ensures int
	for _, ev := range e.History.Events() {
		if ev.Type == asl.TaskScheduled {
			switch ev.State {
			case "Apply isolation security group":
				applies++
			case "Ensure isolation security group":
				ensures++
			}
		}
	}
	if applies != 2 || ensures != 1 {
		t.Errorf("Apply scheduled %d times, Ensure %d: want Apply, GroupMissing, Ensure, Apply", applies, ensures)
	}
}
