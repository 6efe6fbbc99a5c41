package validate_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// TestFindsUsableIsolationGroups: the record says which isolation groups can be applied as they are (ours, with
// exactly the rules they need, in the instance's VPCs), and GroupsReady only when every VPC has all it needs.
func TestFindsUsableIsolationGroups(t *testing.T) {
	const (
		vpcA, vpcB = "vpc-0aaa0000000000001", "vpc-0bbb0000000000002"
		oneVPC     = "i-0123456789abcdef0"
		twoVPCs    = "i-0223456789abcdef0"
	)
	managed := map[string]string{secgroup.TagManaged: "true"}
	allowAll := []sim.Rule{{Protocol: "-1", CIDR: "0.0.0.0/0"}, {Protocol: "-1", IPv6CIDR: "::/0"}}
	untrackName := groupName + secgroup.UntrackSuffix
	// The groups a test may seed. Egress nil gets EC2's default egress rule; []sim.Rule{} none.
	var (
		isoA        = sim.SecurityGroup{ID: "sg-000000000000000e1", VpcID: vpcA, Name: groupName, Description: "q", Egress: []sim.Rule{}, Tags: managed}
		isoB        = sim.SecurityGroup{ID: "sg-000000000000000e2", VpcID: vpcB, Name: groupName, Description: "q", Egress: []sim.Rule{}, Tags: managed}
		isoARules   = sim.SecurityGroup{ID: "sg-000000000000000e3", VpcID: vpcA, Name: groupName, Description: "q", Tags: managed}
		isoAForeign = sim.SecurityGroup{ID: "sg-000000000000000e4", VpcID: vpcA, Name: groupName, Description: "a team's", Egress: []sim.Rule{}}
		untrackA    = sim.SecurityGroup{ID: "sg-000000000000000f1", VpcID: vpcA, Name: untrackName, Description: "u", Ingress: allowAll, Egress: allowAll, Tags: managed}
		untrackAV4  = sim.SecurityGroup{ID: "sg-000000000000000f2", VpcID: vpcA, Name: untrackName, Description: "u", Ingress: allowAll[:1], Egress: allowAll, Tags: managed}
	)
	tests := []struct {
		name      string
		mode      secgroup.Mode
		instance  string
		groups    []sim.SecurityGroup
		wantFound []workflow.VpcGroups
		wantReady bool
	}{
		{"no isolation group yet", secgroup.ModeDirect, oneVPC, nil, nil, false},
		{"a usable group in the only VPC", secgroup.ModeDirect, oneVPC, []sim.SecurityGroup{isoA, isoB},
			[]workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: isoA.ID}}, true},
		{"two VPCs, both ready", secgroup.ModeDirect, twoVPCs, []sim.SecurityGroup{isoB, isoA},
			[]workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: isoA.ID}, {VpcID: vpcB, IsolationGroupID: isoB.ID}}, true},
		{"two VPCs, one without group", secgroup.ModeDirect, twoVPCs, []sim.SecurityGroup{isoA},
			[]workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: isoA.ID}}, false},
		{"a usable group in another VPC only", secgroup.ModeDirect, oneVPC, []sim.SecurityGroup{isoB}, nil, false},
		{"our group with a rule is not usable as it is", secgroup.ModeDirect, oneVPC, []sim.SecurityGroup{isoARules}, nil, false},
		{"someone else's group with the name is not ours", secgroup.ModeDirect, oneVPC, []sim.SecurityGroup{isoAForeign}, nil, false},
		{"direct mode ignores the allow-all group", secgroup.ModeDirect, oneVPC, []sim.SecurityGroup{isoA, untrackA},
			[]workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: isoA.ID}}, true},
		{"untrack-first, both groups", secgroup.ModeUntrackFirst, oneVPC, []sim.SecurityGroup{isoA, untrackA},
			[]workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: isoA.ID, UntrackGroupID: untrackA.ID}}, true},
		{"untrack-first, no allow-all group", secgroup.ModeUntrackFirst, oneVPC, []sim.SecurityGroup{isoA},
			[]workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: isoA.ID}}, false},
		{"untrack-first, allow-all group lacking ::/0 inbound", secgroup.ModeUntrackFirst, oneVPC, []sim.SecurityGroup{isoA, untrackAV4},
			[]workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: isoA.ID}}, false},
		{"untrack-first, only the allow-all group", secgroup.ModeUntrackFirst, oneVPC, []sim.SecurityGroup{untrackA},
			[]workflow.VpcGroups{{VpcID: vpcA, UntrackGroupID: untrackA.ID}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := network()
			sc.SecurityGroups = append(sc.SecurityGroups, tt.groups...)
			sc.Instances = []sim.Instance{
				{ID: oneVPC, NetworkInterfaces: []sim.NetworkInterface{{ID: "eni-00000000000000001", SubnetID: "subnet-0aaa000000000001", Groups: []string{"sg-0000000000000000a"}}}},
				{ID: twoVPCs, NetworkInterfaces: []sim.NetworkInterface{
					{ID: "eni-00000000000000021", SubnetID: "subnet-0aaa000000000001", Groups: []string{"sg-0000000000000000a"}},
					{ID: "eni-00000000000000022", SubnetID: "subnet-0bbb000000000001", DeviceIndex: 1, Groups: []string{"sg-0000000000000000d"}},
				}},
			}
			srv, client := start(t, sc)
			s := settings
			s.Groups.Mode = tt.mode
			rec, err := validate.New(client, s, slog.New(slog.DiscardHandler)).Handle(context.Background(),
				workflow.ValidateInput{Event: tagEvent(tt.instance), ExecutionName: "exec-1"})
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if diff := cmp.Diff(tt.wantFound, rec.IsolationGroups); diff != "" {
				t.Errorf("isolation groups (-want +got):\n%s", diff)
			}
			if rec.GroupsReady != tt.wantReady {
				t.Errorf("groupsReady = %v, want %v", rec.GroupsReady, tt.wantReady)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("mutating calls: %v", m)
			}
			// One lookup by name only (the VPCs are not known before the instance's description), and one of the
			// managed groups by tag (isolation artifacts), in the same round trip.
			var lookups []string
			for _, c := range srv.Calls() {
				if c.Action != "DescribeSecurityGroups" {
					continue
				}
				lookups = append(lookups, c.Params.Get("Filter.1.Name"))
				if c.Params.Get("Filter.1.Name") != "group-name" {
					continue
				}
				if got := []string{c.Params.Get("Filter.1.Value.1"), c.Params.Get("Filter.1.Value.2")}; !slices.Equal(got, padded(s.Groups.Names())) {
					t.Errorf("looked up names %v, want %v", got, s.Groups.Names())
				}
			}
			slices.Sort(lookups)
			if !slices.Equal(lookups, []string{"group-name", "tag:ec2-isolation:managed"}) {
				t.Errorf("DescribeSecurityGroups filters %v, want one call filtered by group-name and one by the managed tag", lookups)
			}
		})
	}
}

// padded gives names two entries, "" for a missing second.
func padded(names []string) []string { return append(slices.Clone(names), "", "")[:2] }
