package runner_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
)

// Issue 13 item 4: an instance with a requester-managed ENI attached (an ECS awsvpc task's, which EC2 does not
// let the account change) is still isolated: every other ENI goes onto its isolation group, the execution
// succeeds, and the notification names the task's ENI as still open instead of failing the whole isolation.
func TestRequesterManagedENIIsNamedOpenNotFatal(t *testing.T) {
	const taskENI = "eni-0ec5000000000000a"
	sc := defaultScenario(t)
	inst := &sc.Instances[0]
	inst.NetworkInterfaces = append(inst.NetworkInterfaces, sim.NetworkInterface{ID: taskENI, SubnetID: inst.SubnetID,
		DeviceIndex: 3, Groups: []string{"sg-0a1b2c3d4e5f00001"}, RequesterManaged: true, RequesterID: "ecs.amazonaws.com"})
	srv := simtest.Start(t, sc)
	event := isolateEvent(t)
	srv.ApplyTagEvent(event)
	e := isolationRunner(t, srv, sc, asl.Options{}).Start(context.Background(), "isolate-1", event)
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("isolation: %s %s %s", e.Status, e.Error, e.Cause)
	}

	out, err := ec2.NewFromConfig(srv.AWSConfig("test")).DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{inst.ID}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range out.NetworkInterfaces {
		id := aws.ToString(n.NetworkInterfaceId)
		var names []string
		for _, g := range n.Groups {
			names = append(names, aws.ToString(g.GroupName))
		}
		switch {
		case id == taskENI && !slices.Equal(names, []string{"web"}):
			t.Errorf("the task's ENI is on %v: it cannot be changed, so it must be as it was", names)
		case id != taskENI && (len(names) != 1 || !strings.HasPrefix(names[0], "ec2-isolation")):
			t.Errorf("ENI %s is on %v, want only its isolation group", id, names)
		}
	}

	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d notifications, want 1", len(msgs))
	}
	var bodies map[string]string
	if err := json.Unmarshal([]byte(msgs[0].Message), &bodies); err != nil {
		t.Fatal(err)
	}
	for proto, body := range bodies {
		if !strings.Contains(body, "STILL OPEN: network interface") || !strings.Contains(body, taskENI) || !strings.Contains(body, "ecs.amazonaws.com") {
			t.Errorf("%s notification does not name %s as still open:\n%s", proto, taskENI, body)
		}
	}
}
