package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/moto"
	"github.com/ec2-isolation/ec2-isolation/internal/status"
)

// isolation status against moto, configured as an engineer's shell would be (the stack gives the names): the
// seeded instance carries Isolate=true and is open (exit 1, its ENIs named); after `isolation run` it is in its
// declared state, with its incident, execution and snapshots (exit 0); a group put back on an ENI by hand takes it
// out again (exit 1).
func TestStatusOnMoto(t *testing.T) {
	s, c := onMoto(t, moto.SeedOptions{Stack: true})
	code, out, errOut := cli(t, "", "status", "--json")
	var rep status.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFailed {
		t.Fatalf("before: exit %d (%v), want 1\nstdout: %s\nstderr: %s", code, err, out, errOut)
	}
	if len(rep.Instances) != 1 || rep.Instances[0].ID != s.InstanceID || rep.Instances[0].InState || len(rep.Instances[0].Open) == 0 {
		t.Fatalf("before: %+v, want the seeded instance, open", rep.Instances)
	}
	if code, out, errOut := cli(t, "", "run", "--instance", s.InstanceID, "--yes", "--json"); code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cli(t, "", "status", "--instance", s.InstanceID)
	if code != exitOK || !strings.Contains(out, "isolated, in its declared state") || !strings.Contains(out, "incident: opened") ||
		!strings.Contains(out, "SUCCEEDED") || !strings.Contains(out, "snapshots: snap-") {
		t.Fatalf("after run: exit %d, want 0 with the incident, its execution and snapshots\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	out0, err := c.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{s.InstanceID}})
	if err != nil {
		t.Fatal(err)
	}
	eni := aws.ToString(out0.Reservations[0].Instances[0].NetworkInterfaces[0].NetworkInterfaceId)
	if _, err := c.EC2.ModifyNetworkInterfaceAttribute(context.Background(), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eni), Groups: s.Groups[:1]}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli(t, "", "status")
	if code != exitFailed || !strings.Contains(out, "NOT in its declared state") || !strings.Contains(out, eni+" carries") {
		t.Errorf("after a hand change: exit %d, want 1 naming %s\n%s", code, eni, out)
	}
}
