package secgroup_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The fuzz targets run a step on any JSON payload, decoded as the Lambda runtime decodes it. The payload comes
// from the state machine, so one that does not decode is a definition bug the runtime reports; anything that
// decodes gets a result or a steperr error, and the step touches only what its input names.

// FuzzEnsure: an isolation group it returns has no rule; it creates groups only in the input's VPCs and changes
// the rules of its own groups only.
func FuzzEnsure(f *testing.F) {
	for _, seed := range []string{
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","vpcIds":["vpc-0a1","vpc-0b2"]}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","vpcIds":["vpc-0a1","vpc-0a1"]}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","vpcIds":["vpc-0ff"]}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","vpcIds":["vpc-0A1"]}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","vpcIds":[]}`,
		`{"instanceId":"","vpcIds":["vpc-0a1"]}`, `{}`, `null`, `{"vpcIds":"vpc-0a1"}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","vpcIds":["vpc-0a1","vpc-0b2"],"record":{"instanceId":"i-000000000000002b0","isolationGroups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0a2"}]}}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","vpcIds":["vpc-0a1"],"record":{"instanceId":"i-0000000000000001a","isolationGroups":[]}}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","vpcIds":["vpc-0b2"],"record":{"instanceId":"i-000000000000002b0","isolationGroups":[{"vpcId":"vpc-0b2","isolationGroupId":"web"}]}}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	srv := simtest.Start(f, scenario())
	handlers := map[bool]lambda.Handler{
		false: lambda.NewHandler(newEnsure(nil, srv, "ensure", secgroup.ModeDirect).Handle),
		true:  lambda.NewHandler(newEnsure(nil, srv, "ensure", secgroup.ModeUntrackFirst).Handle),
	}
	reader := client(nil, srv, "reader")
	ours := []string{groupName, groupName + secgroup.UntrackSuffix}

	f.Fuzz(func(t *testing.T, payload []byte, untrack bool) {
		var in workflow.EnsureGroupsInput
		if json.Unmarshal(payload, &in) != nil {
			return
		}
		srv.ResetCalls()
		out, err := handlers[untrack].Invoke(context.Background(), payload)
		if err != nil && !isStepError(err) {
			t.Fatalf("error of type %T (not a steperr type): %v", err, err)
		}
		var invalid *steperr.InvalidInput
		if errors.As(err, &invalid) && len(srv.Calls()) > 0 {
			t.Fatalf("%d AWS calls before refusing the input: %v", len(srv.Calls()), err)
		}
		for _, call := range srv.Calls() {
			switch {
			case call.Action == "CreateSecurityGroup" && !slices.Contains(in.VpcIDs, call.Params.Get("VpcId")):
				t.Fatalf("created a group in %s, not in the input's VPCs %v", call.Params.Get("VpcId"), in.VpcIDs)
			case call.Action == "CreateSecurityGroup" && !slices.Contains(ours, call.Params.Get("GroupName")):
				t.Fatalf("created a group named %q", call.Params.Get("GroupName"))
			case call.Mutating && call.Params.Get("GroupId") != "":
				g, err := reader.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{call.Params.Get("GroupId")}})
				if err != nil || len(g.SecurityGroups) != 1 || !slices.Contains(ours, aws.ToString(g.SecurityGroups[0].GroupName)) {
					t.Fatalf("%s on %s, which is not one of its groups (%v)", call.Action, call.Params.Get("GroupId"), err)
				}
			}
		}
		if err != nil {
			return
		}
		var res workflow.EnsureGroupsOutput
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		// Groups the record says Validate found usable are taken as they are (Validate checked them).
		trusted := map[string]string{}
		if in.Record != nil {
			for _, g := range in.Record.IsolationGroups {
				trusted[g.VpcID] = g.IsolationGroupID
			}
		}
		var vpcs []string
		for _, g := range res.Groups {
			vpcs = append(vpcs, g.VpcID)
			if id, ok := trusted[g.VpcID]; ok && id != "" {
				if g.IsolationGroupID != id {
					t.Fatalf("%s: returned %s, not the group %s the record names", g.VpcID, g.IsolationGroupID, id)
				}
				continue
			}
			d, err := reader.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{g.IsolationGroupID}})
			if err != nil || len(d.SecurityGroups) != 1 {
				t.Fatalf("describe %s: %v", g.IsolationGroupID, err)
			}
			sg := d.SecurityGroups[0]
			if aws.ToString(sg.VpcId) != g.VpcID || aws.ToString(sg.GroupName) != groupName || len(sg.IpPermissions)+len(sg.IpPermissionsEgress) > 0 {
				t.Fatalf("isolation group %s: %s in %s with %d ingress and %d egress rules", g.IsolationGroupID,
					aws.ToString(sg.GroupName), aws.ToString(sg.VpcId), len(sg.IpPermissions), len(sg.IpPermissionsEgress))
			}
		}
		want := slices.Compact(slices.Sorted(slices.Values(in.VpcIDs)))
		if slices.Sort(vpcs); !slices.Equal(vpcs, want) {
			t.Fatalf("groups for %v, want one per input VPC %v", vpcs, want)
		}
	})
}

// FuzzApply: it changes only the ENIs of the instance the input names (or that the instance's record names: Apply
// trusts Validate's description rather than describing first), and only to a group of the input.
func FuzzApply(f *testing.F) {
	for _, seed := range []string{
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","groups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0a2","untrackGroupId":"sg-0a1"},{"vpcId":"vpc-0b2","isolationGroupId":"sg-0b1","untrackGroupId":"sg-0b1"}]}`,
		`{"instanceId":"i-0000000000000003a","executionName":"exec-1","groups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0a2"}]}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","groups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0b1"},{"vpcId":"vpc-0b2","isolationGroupId":"sg-0a1"}]}`,
		`{"instanceId":"i-000000000000002b0","groups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0a2"},{"vpcId":"vpc-0a1","isolationGroupId":"sg-0a1"}]}`,
		`{"instanceId":"i-0000000000000001a","groups":[]}`, `{}`, `null`, `{"groups":{}}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","record":{"instanceId":"i-000000000000002b0","networkInterfaces":[{"networkInterfaceId":"eni-02a","vpcId":"vpc-0a1","groups":["sg-0a1"]}],"isolationGroups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0a2","untrackGroupId":"sg-0a1"},{"vpcId":"vpc-0b2","isolationGroupId":"sg-0b1","untrackGroupId":"sg-0b1"}],"groupsReady":true},"ensured":null}`,
		`{"instanceId":"i-000000000000002b0","executionName":"exec-1","record":{"instanceId":"i-000000000000002b0","networkInterfaces":[{"networkInterfaceId":"eni-03a","vpcId":"vpc-0a1","groups":[]}]},"ensured":{"groups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0a2"}]}}`,
		`{"instanceId":"i-000000000000002b0","record":{"instanceId":"i-0000000000000001a","networkInterfaces":[{"networkInterfaceId":"eni-01a","vpcId":"vpc-0a1"}]},"ensured":{"groups":[{"vpcId":"vpc-0a1","isolationGroupId":"sg-0a2"}]}}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	sc := scenario()
	srv := simtest.Start(f, sc)
	handlers := map[bool]lambda.Handler{
		false: lambda.NewHandler(newApply(nil, srv, "apply", secgroup.ModeDirect).Handle),
		true:  lambda.NewHandler(newApply(nil, srv, "apply", secgroup.ModeUntrackFirst).Handle),
	}
	owner := map[string]string{}
	for _, in := range sc.Instances {
		for _, n := range in.NetworkInterfaces {
			owner[n.ID] = in.ID
		}
	}

	f.Fuzz(func(t *testing.T, payload []byte, untrack bool) {
		var in workflow.ApplyGroupsInput
		if json.Unmarshal(payload, &in) != nil {
			return
		}
		srv.ResetCalls()
		_, err := handlers[untrack].Invoke(context.Background(), payload)
		if err != nil && !isStepError(err) {
			t.Fatalf("error of type %T (not a steperr type): %v", err, err)
		}
		var invalid *steperr.InvalidInput
		if m := simtest.Mutating(srv); errors.As(err, &invalid) && len(m) > 0 {
			t.Fatalf("mutating calls %v before refusing the input: %v", m, err)
		}
		var allowed []string
		groups := slices.Clone(in.Groups)
		named := map[string]bool{} // ENIs the input's record names, as Validate described them
		if in.Ensured != nil {
			groups = append(groups, in.Ensured.Groups...)
		}
		if in.Record != nil {
			groups = append(groups, in.Record.IsolationGroups...)
			if in.Record.InstanceID == in.InstanceID {
				for _, n := range in.Record.NetworkInterfaces {
					named[n.ID] = true
				}
			}
		}
		for _, g := range groups {
			allowed = append(allowed, g.IsolationGroupID, g.UntrackGroupID)
		}
		for _, call := range srv.Calls() {
			if call.Action != "ModifyNetworkInterfaceAttribute" {
				continue
			}
			eni := call.Params.Get("NetworkInterfaceId")
			if owner[eni] != in.InstanceID && !named[eni] {
				t.Fatalf("modified %s of %s, but the input names %q and its record does not name %s", eni, owner[eni], in.InstanceID, eni)
			}
			groups := 0
			for k, v := range call.Params {
				if strings.HasPrefix(k, "SecurityGroupId.") {
					groups++
					if !slices.Contains(allowed, v[0]) {
						t.Fatalf("put %s on %s, not a group of the input %v", v[0], eni, allowed)
					}
				}
			}
			if groups != 1 {
				t.Fatalf("%s put %d groups on %s, want exactly one: %v", call.Action, groups, eni, call.Params)
			}
		}
	})
}

// isStepError: err is one of the named types of internal/steperr, as a handler's top-level error must be.
func isStepError(err error) bool {
	t := reflect.TypeOf(err)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == reflect.TypeOf(steperr.InvalidInput{}).PkgPath()
}
