package sim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"
)

// Ids of the base scenario.
const (
	vpcA, vpcB       = "vpc-0aaaaaaaaaaaaaaa1", "vpc-0bbbbbbbbbbbbbbb2"
	subA, subB       = "subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"
	sgWeb, sgSSH     = "sg-0aaaaaaaaaaaaaaa1", "sg-0aaaaaaaaaaaaaaa2"
	sgOther          = "sg-0bbbbbbbbbbbbbbb1"
	instWeb, instDB  = "i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"
	instClassic      = "i-0ccccccccccccccc3"
	eniWeb0, eniWeb1 = "eni-0aaaaaaaaaaaaaaa1", "eni-0aaaaaaaaaaaaaaa2"
	eniDB0           = "eni-0aaaaaaaaaaaaaaa3"
	volRoot, volData = "vol-0aaaaaaaaaaaaaaa1", "vol-0aaaaaaaaaaaaaaa2"
)

// baseScenario: instWeb has two ENIs in two VPCs (multi-VPC attachment) and two volumes; instDB one ENI.
func baseScenario() Scenario {
	return Scenario{
		VPCs: []VPC{{ID: vpcA, CIDR: "10.0.0.0/16", IPv6CIDR: "2600:1f18:1:100::/56"}, {ID: vpcB, CIDR: "10.1.0.0/16"}},
		Subnets: []Subnet{
			{ID: subA, VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.1.0/24"},
			{ID: subB, VpcID: vpcB, AvailabilityZone: "us-east-1a", CIDR: "10.1.1.0/24"},
		},
		SecurityGroups: []SecurityGroup{
			{ID: sgWeb, VpcID: vpcA, Name: "web", Description: "web",
				Ingress: []Rule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDR: "0.0.0.0/0"}}},
			{ID: sgSSH, VpcID: vpcA, Name: "ssh", Description: "ssh",
				Ingress: []Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "203.0.113.0/24"}}},
			{ID: sgOther, VpcID: vpcB, Name: "backend", Description: "backend"},
		},
		InstanceProfiles: []InstanceProfile{{Name: "web-profile", Role: "web-role"}, {Name: "isolation", Role: "deny-all"}},
		Instances: []Instance{
			{ID: instWeb, SubnetID: subA, Profile: "web-profile", Tags: map[string]string{"Name": "web-1"},
				NetworkInterfaces: []NetworkInterface{
					{ID: eniWeb0, SubnetID: subA, DeviceIndex: 0, Groups: []string{sgWeb, sgSSH}},
					{ID: eniWeb1, SubnetID: subB, DeviceIndex: 1, Groups: []string{sgOther}},
				},
				Volumes: []Volume{
					{ID: volRoot, DeviceName: "/dev/xvda", SizeGiB: 8, DeleteOnTermination: true, Tags: map[string]string{"Name": "root"}},
					{ID: volData, DeviceName: "/dev/xvdf", SizeGiB: 100},
				}},
			{ID: instDB, SubnetID: subA, NetworkInterfaces: []NetworkInterface{{ID: eniDB0, SubnetID: subA, Groups: []string{sgSSH}}},
				Volumes: []Volume{{ID: "vol-0aaaaaaaaaaaaaaa3", DeviceName: "/dev/xvda", DeleteOnTermination: true}}},
			{ID: instClassic},
		},
		Topics: []Topic{{Name: "isolation"}},
	}
}

func start(t *testing.T, sc Scenario, opts ...Option) (*Server, *ec2.Client, *sns.Client) {
	t.Helper()
	s, err := Start(sc, opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	cfg := s.AWSConfig("AKIDTEST")
	return s, ec2.NewFromConfig(cfg), sns.NewFromConfig(cfg)
}

// apiErr returns the AWS error code and HTTP status the SDK surfaced.
func apiErr(t *testing.T, err error) (string, int) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an AWS error, got success")
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	status := 0
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return ae.ErrorCode(), status
}

func wantErr(t *testing.T, err error, code string, status int) {
	t.Helper()
	gotCode, gotStatus := apiErr(t, err)
	if gotCode != code || gotStatus != status {
		t.Fatalf("error = %s (HTTP %d), want %s (HTTP %d): %v", gotCode, gotStatus, code, status, err)
	}
}

func eniGroups(t *testing.T, c *ec2.Client, eni string) []string {
	t.Helper()
	out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil {
		t.Fatalf("DescribeNetworkInterfaces: %v", err)
	}
	if len(out.NetworkInterfaces) != 1 {
		t.Fatalf("DescribeNetworkInterfaces(%s): %d interfaces", eni, len(out.NetworkInterfaces))
	}
	var ids []string
	for _, g := range out.NetworkInterfaces[0].Groups {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	return ids
}

func TestDescribeInstancesShape(t *testing.T) {
	s, c, _ := start(t, baseScenario())
	ctx := context.Background()
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instWeb}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("reservations: %+v", out.Reservations)
	}
	in := out.Reservations[0].Instances[0]
	type eniView struct {
		ID, Vpc, Subnet string
		Device          int32
		Groups          []string
	}
	var enis []eniView
	for _, n := range in.NetworkInterfaces {
		v := eniView{aws.ToString(n.NetworkInterfaceId), aws.ToString(n.VpcId), aws.ToString(n.SubnetId), aws.ToInt32(n.Attachment.DeviceIndex), nil}
		for _, g := range n.Groups {
			v.Groups = append(v.Groups, aws.ToString(g.GroupId))
		}
		enis = append(enis, v)
	}
	want := []eniView{{eniWeb0, vpcA, subA, 0, []string{sgWeb, sgSSH}}, {eniWeb1, vpcB, subB, 1, []string{sgOther}}}
	if diff := cmp.Diff(want, enis); diff != "" {
		t.Errorf("ENIs (-want +got):\n%s", diff)
	}
	if in.State.Name != ec2types.InstanceStateNameRunning || aws.ToString(in.VpcId) != vpcA || aws.ToString(in.SubnetId) != subA {
		t.Errorf("state %s vpc %s subnet %s", in.State.Name, aws.ToString(in.VpcId), aws.ToString(in.SubnetId))
	}
	if in.IamInstanceProfile == nil || aws.ToString(in.IamInstanceProfile.Arn) != "arn:aws:iam::123456789012:instance-profile/web-profile" {
		t.Errorf("profile %+v", in.IamInstanceProfile)
	}
	var devs []string
	for _, b := range in.BlockDeviceMappings {
		devs = append(devs, aws.ToString(b.DeviceName)+"="+aws.ToString(b.Ebs.VolumeId))
	}
	if diff := cmp.Diff([]string{"/dev/xvda=" + volRoot, "/dev/xvdf=" + volData}, devs); diff != "" {
		t.Errorf("block devices (-want +got):\n%s", diff)
	}
	if len(in.Tags) != 1 || aws.ToString(in.Tags[0].Key) != "Name" || aws.ToString(in.Tags[0].Value) != "web-1" {
		t.Errorf("tags %+v", in.Tags)
	}
	calls := s.Calls()
	if len(calls) != 1 || calls[0].Service != "ec2" || calls[0].Action != "DescribeInstances" || calls[0].Caller != "AKIDTEST" ||
		calls[0].Mutating || calls[0].HTTPStatus != http.StatusOK || calls[0].Params.Get("InstanceId.1") != instWeb {
		t.Errorf("calls %+v", calls)
	}
}

func TestDescribeInstancesErrors(t *testing.T) {
	_, c, _ := start(t, baseScenario())
	ctx := context.Background()
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"foo"}})
	wantErr(t, err, "InvalidInstanceID.Malformed", 400)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantErr(t, err, "InvalidInstanceID.NotFound", 400)
}

func TestModifyNetworkInterfaceReplacesGroups(t *testing.T) {
	_, c, _ := start(t, baseScenario())
	ctx := context.Background()
	_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eniWeb0), Groups: []string{sgSSH}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{sgSSH}, eniGroups(t, c, eniWeb0)); diff != "" {
		t.Errorf("groups after replace (-want +got):\n%s", diff)
	}
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eniWeb0), Groups: []string{sgOther}})
	wantErr(t, err, "InvalidGroup.NotFound", 400)
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), Groups: []string{sgSSH}})
	wantErr(t, err, "InvalidNetworkInterfaceID.NotFound", 400)
	if diff := cmp.Diff([]string{sgSSH}, eniGroups(t, c, eniWeb0)); diff != "" {
		t.Errorf("groups after refused calls (-want +got):\n%s", diff)
	}
}

func TestSNSPublish(t *testing.T) {
	s, _, n := start(t, baseScenario())
	ctx := context.Background()
	arn := "arn:aws:sns:us-east-1:123456789012:isolation"
	out, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String(`{"default":"x","email":"y"}`),
		MessageStructure: aws.String("json"), Subject: aws.String("Isolated")})
	if err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].MessageID != aws.ToString(out.MessageId) || msgs[0].Caller != "AKIDTEST" {
		t.Fatalf("messages %+v", msgs)
	}
	_, err = n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String(`{"email":"y"}`), MessageStructure: aws.String("json")})
	wantErr(t, err, "InvalidParameter", 400)
	_, err = n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn + "-nope"), Message: aws.String("x")})
	wantErr(t, err, "NotFound", 404)
	_ = time.Second
}
