package status_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/reconcile/simrun"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/status"
)

func read(t *testing.T, h *simrun.Harness, only string) status.Report {
	t.Helper()
	cfg := h.Srv.AWSConfig("responder")
	rep, err := status.Read(context.Background(), ec2.NewFromConfig(cfg), s3.NewFromConfig(cfg), status.Settings{
		Verify: h.Settings.Verify, ReleaseValue: h.Settings.ReleaseValue, Bucket: h.Settings.Bucket,
		Account: h.Srv.AccountID(), Region: h.Srv.Region()}, only)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func byID(rep status.Report, id string) status.Instance {
	for _, in := range rep.Instances {
		if in.ID == id {
			return in
		}
	}
	return status.Instance{}
}

// The tagged instances of the reconciler's scenario: before anything ran, the three carrying Isolate=true are
// open (not in their declared state, what is open named) and the one carrying the release value is in its state;
// after a reconciler pass all four are, with their incident, executions, revocation and snapshots; a hand change
// takes one out of its state again, naming what is open; a release tag not acted on is not in its state either.
func TestStatusOfTheTaggedInstances(t *testing.T) {
	sc, err := sim.LoadScenario("../../cmd/isolation/scenarios/reconcile.json")
	if err != nil {
		t.Fatal(err)
	}
	h, err := simrun.Start(sc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()

	rep := read(t, h, "")
	if rep.OK() || rep.InState != 1 || rep.NotInState != 3 || len(rep.Instances) != 4 {
		t.Fatalf("before: %d in state, %d not, %d instances; want 1, 3, 4 (the untagged one left out)", rep.InState, rep.NotInState, len(rep.Instances))
	}
	web := byID(rep, "i-0a00000000000000a")
	if web.InState || web.Declared != "isolated" || len(web.Open) == 0 || !strings.Contains(web.Open[0], "eni-0a0000000000000a1 carries sg-0a1b2c3d4e5f00001") {
		t.Errorf("before: %+v, want not in state with its ENI named open", web)
	}

	if _, err := h.Pass(ctx, "2026-12-05T10:00:00Z"); err != nil {
		t.Fatal(err)
	}
	rep = read(t, h, "")
	if !rep.OK() || rep.InState != 4 {
		t.Fatalf("after the pass: %+v, want all 4 in state", rep)
	}
	web = byID(rep, "i-0a00000000000000a")
	if web.Incident == nil || web.Incident.ReleasedAt != nil || len(web.Incident.Executions) != 1 ||
		web.Incident.Executions[0].Outcome != "SUCCEEDED" || !strings.HasPrefix(web.Incident.Executions[0].Name, "reconcile-") {
		t.Errorf("incident %+v, want open, with the reconciler's execution SUCCEEDED", web.Incident)
	}
	if !strings.HasPrefix(web.Revocation, "in force on role web-app-role") || len(web.Snapshots) != 1 {
		t.Errorf("revocation %q, snapshots %v; want in force on web-app-role, one snapshot", web.Revocation, web.Snapshots)
	}

	hand := ec2.NewFromConfig(h.Srv.AWSConfig("hand"))
	if _, err := hand.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0b0000000000000b2"), Groups: []string{"sg-0a1b2c3d4e5f00003"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := hand.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"i-0a00000000000000a"},
		Tags: []ec2types.Tag{{Key: aws.String("Isolate"), Value: aws.String("release")}}}); err != nil {
		t.Fatal(err)
	}
	rep = read(t, h, "")
	lost, web := byID(rep, "i-0b00000000000000b"), byID(rep, "i-0a00000000000000a")
	if rep.OK() || rep.NotInState != 2 || lost.InState || !slices.ContainsFunc(lost.Open, func(o string) bool {
		return strings.Contains(o, "eni-0b0000000000000b2 carries sg-0a1b2c3d4e5f00003")
	}) {
		t.Errorf("after the hand change: %+v, want i-0b… not in state, its second ENI named", lost)
	}
	if web.InState || web.Declared != "released" || !strings.Contains(web.Why, "isolation artifacts remain") {
		t.Errorf("release tag not acted on: %+v, want not in its declared state (released)", web)
	}
	if one := read(t, h, "i-0e00000000000000e"); len(one.Instances) != 1 || !one.OK() || one.Instances[0].Declared != "" {
		t.Errorf("the untagged instance asked for: %+v, want reported, nothing declared, in state", one)
	}
}
