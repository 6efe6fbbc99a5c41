package secgroup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// depth is the number of sequential round trips of calls: a call's depth is 1 + the greatest depth of the calls
// that ended before it started (so calls in flight together share a depth). It is a count, not a time.
func depth(calls []sim.Call) (int, map[int][]string) {
	calls = slices.Clone(calls)
	slices.SortFunc(calls, func(a, b sim.Call) int { return a.Start.Compare(b.Start) })
	d := make([]int, len(calls))
	levels := map[int][]string{}
	max := 0
	for i, c := range calls {
		d[i] = 1
		for j := range i {
			if !calls[j].End.After(c.Start) {
				d[i] = maxInt(d[i], d[j]+1)
			}
		}
		levels[d[i]] = append(levels[d[i]], c.Action)
		max = maxInt(max, d[i])
	}
	for _, l := range levels {
		slices.Sort(l)
	}
	return max, levels
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// viaJSON passes v through JSON, as the state machine passes data between tasks.
func viaJSON[T any](t *testing.T, v any) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// contain runs the network containment path as the definition does: "Validate and record", then, unless the
// record says groupsReady ("Groups ready?"), "Ensure isolation security group", then "Apply isolation security
// group", each with the input its Parameters build. It returns whether Ensure ran.
func contain(t *testing.T, srv *sim.Server, instance string, mode secgroup.Mode) bool {
	t.Helper()
	ctx := context.Background()
	rec := viaJSON[workflow.Record](t, validated(t, srv, instance, mode))
	var ensured *workflow.EnsureGroupsOutput // null on the warm path
	if !rec.GroupsReady {
		in := viaJSON[workflow.EnsureGroupsInput](t, map[string]any{
			"instanceId": rec.InstanceID, "executionName": "exec-1", "vpcIds": rec.VpcIDs, "record": rec})
		out, err := newEnsure(t, srv, "ensure", mode).Handle(ctx, in)
		if err != nil {
			t.Fatalf("ensure: %v", err)
		}
		ensured = &out
	}
	in := viaJSON[workflow.ApplyGroupsInput](t, map[string]any{
		"instanceId": rec.InstanceID, "executionName": "exec-1", "record": rec, "ensured": ensured})
	if _, err := newApply(t, srv, "apply", mode).Handle(ctx, in); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return ensured != nil
}

// TestContainmentRoundTrips measures the sequential AWS round trips from the start of "Validate and record" until
// every ENI carries only its VPC's isolation group. Warm (the groups exist): the instance and the groups looked up
// at once, then every ENI modified at once: 2. Cold: + CreateSecurityGroup, + RevokeSecurityGroupEgress of the
// new group's default rule before any ENI gets it: 4. Untrack-first adds the allow-all round before the
// isolation group (and, cold, creates that group at once with the isolation group).
func TestContainmentRoundTrips(t *testing.T) {
	existing := func(mode secgroup.Mode) []sim.SecurityGroup {
		managed := map[string]string{secgroup.TagManaged: "true"}
		allowAll := []sim.Rule{{Protocol: "-1", CIDR: "0.0.0.0/0"}, {Protocol: "-1", IPv6CIDR: "::/0"}}
		gs := []sim.SecurityGroup{
			{ID: "sg-0e1", VpcID: vpcA, Name: groupName, Description: "q", Egress: []sim.Rule{}, Tags: managed},
			{ID: "sg-0e2", VpcID: vpcB, Name: groupName, Description: "q", Egress: []sim.Rule{}, Tags: managed},
		}
		if mode == secgroup.ModeUntrackFirst {
			gs = append(gs,
				sim.SecurityGroup{ID: "sg-0f1", VpcID: vpcA, Name: groupName + secgroup.UntrackSuffix, Description: "u", Ingress: allowAll, Egress: allowAll, Tags: managed},
				sim.SecurityGroup{ID: "sg-0f2", VpcID: vpcB, Name: groupName + secgroup.UntrackSuffix, Description: "u", Ingress: allowAll, Egress: allowAll, Tags: managed})
		}
		return gs
	}
	tests := []struct {
		mode       secgroup.Mode
		warm       bool
		instance   string
		wantDepth  int
		wantEnsure bool
	}{
		{secgroup.ModeDirect, true, twoVPCs, 2, false},
		{secgroup.ModeDirect, true, threeENIs, 2, false},
		{secgroup.ModeDirect, false, twoVPCs, 4, true},
		{secgroup.ModeDirect, false, threeENIs, 4, true},
		{secgroup.ModeUntrackFirst, true, twoVPCs, 3, false},
		{secgroup.ModeUntrackFirst, false, twoVPCs, 5, true},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/cold/%s", tt.mode, tt.instance)
		if tt.warm {
			name = fmt.Sprintf("%s/warm/%s", tt.mode, tt.instance)
		}
		// In a testing/synctest bubble, with the simulator in process: calls made at once start at the same
		// instant of the bubble's clock, and a call's answer comes only when that clock has moved on by the
		// latency, so the count is exact however busy the machine is (at 50 ms of wall-clock latency a goroutine
		// started late on a loaded 2-core machine once counted as a round trip of its own).
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := scenario()
				if tt.warm {
					sc.SecurityGroups = append(sc.SecurityGroups, existing(tt.mode)...)
				}
				sc.Faults.Latency.Default = 50 * time.Millisecond
				srv := simtest.Start(t, sc, sim.WithInProcess())

				if ran := contain(t, srv, tt.instance, tt.mode); ran != tt.wantEnsure {
					t.Errorf("Ensure ran: %v, want %v", ran, tt.wantEnsure)
				}
				calls := srv.Calls()
				got, levels := depth(calls)

				// Contained: every ENI on exactly its VPC's isolation group, read back.
				iso := newReader(t, srv).groupsNamed(groupName)
				want := map[string][]string{}
				for _, n := range scenarioENIs(sc, tt.instance) {
					if len(iso[n.VpcID]) != 1 {
						t.Fatalf("%d isolation groups in %s", len(iso[n.VpcID]), n.VpcID)
					}
					want[n.ID] = []string{*iso[n.VpcID][0].GroupId}
				}
				if diff := cmp.Diff(want, newReader(t, srv).eniGroups(tt.instance)); diff != "" {
					t.Errorf("ENI groups (-want +got):\n%s", diff)
				}
				var trace []string
				for l := 1; l <= got; l++ {
					trace = append(trace, fmt.Sprintf("%d: %s", l, strings.Join(levels[l], ", ")))
				}
				t.Logf("%d sequential round trips, %d calls:\n%s", got, len(calls), strings.Join(trace, "\n"))
				if got != tt.wantDepth {
					t.Errorf("%d sequential round trips to containment, want %d:\n%s", got, tt.wantDepth, strings.Join(trace, "\n"))
				}
			})
		})
	}
}
