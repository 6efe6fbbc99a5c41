package validate_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const groupName = "ec2-isolation-quarantine"

var settings = validate.Settings{TagKey: "Isolate", TagValue: "true",
	Groups: secgroup.Settings{GroupName: groupName, Mode: secgroup.ModeDirect}}

// associationOf reads the instance's profile association back through the SDK (its id is the simulator's).
func associationOf(t *testing.T, client *ec2.Client, id string) *workflow.ProfileAssociation {
	t.Helper()
	out, err := client.DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}},
	})
	if err != nil {
		t.Fatalf("describe associations: %v", err)
	}
	for _, a := range out.IamInstanceProfileAssociations {
		if a.State == types.IamInstanceProfileAssociationStateAssociated || a.State == types.IamInstanceProfileAssociationStateAssociating {
			return &workflow.ProfileAssociation{AssociationID: aws.ToString(a.AssociationId),
				ProfileARN: aws.ToString(a.IamInstanceProfile.Arn), State: string(a.State)}
		}
	}
	return nil
}

func TestRecordsInstance(t *testing.T) {
	const (
		vpcA, vpcB = "vpc-0aaa0000000000001", "vpc-0bbb0000000000002"
		subA1      = "subnet-0aaa000000000001"
		subA2      = "subnet-0aaa000000000002"
		subB1      = "subnet-0bbb000000000001"
	)
	tests := []struct {
		name     string
		instance sim.Instance
		want     workflow.Record // the association is read back from the simulator
	}{
		{
			name: "one ENI, profile, defaults",
			instance: sim.Instance{
				ID: "i-0123456789abcdef0", SubnetID: subA1, Profile: "web-server",
				NetworkInterfaces: []sim.NetworkInterface{{ID: "eni-00000000000000001", SubnetID: subA1, Groups: []string{"sg-0000000000000000b", "sg-0000000000000000a"}}},
				Volumes:           []sim.Volume{{ID: "vol-00000000000000001", DeviceName: "/dev/xvda", DeleteOnTermination: true}},
			},
			want: workflow.Record{
				InstanceID: "i-0123456789abcdef0", State: "running", VpcIDs: []string{vpcA},
				NetworkInterfaces: []workflow.NetworkInterface{
					{ID: "eni-00000000000000001", VpcID: vpcA, SubnetID: subA1, DeviceIndex: 0, Groups: []string{"sg-0000000000000000a", "sg-0000000000000000b"}},
				},
				ShutdownBehavior: "stop",
				Volumes:          []workflow.Volume{{VolumeID: "vol-00000000000000001", DeviceName: "/dev/xvda", DeleteOnTermination: true}},
			},
		},
		{
			name: "three ENIs in one VPC, protected, terminate on shutdown, no profile",
			instance: sim.Instance{
				ID: "i-0223456789abcdef0", DisableAPITermination: true, ShutdownBehavior: "terminate", State: "stopped",
				NetworkInterfaces: []sim.NetworkInterface{
					{ID: "eni-00000000000000013", SubnetID: subA2, DeviceIndex: 2, Groups: []string{"sg-0000000000000000c"}},
					{ID: "eni-00000000000000011", SubnetID: subA1, DeviceIndex: 0, Groups: []string{"sg-0000000000000000a"}},
					{ID: "eni-00000000000000012", SubnetID: subA2, DeviceIndex: 1, Groups: []string{"sg-0000000000000000c", "sg-0000000000000000b"}},
				},
				Volumes: []sim.Volume{
					{ID: "vol-00000000000000011", DeviceName: "/dev/xvda", DeleteOnTermination: true},
					{ID: "vol-00000000000000012", DeviceName: "/dev/sdf"},
				},
			},
			want: workflow.Record{
				InstanceID: "i-0223456789abcdef0", State: "stopped", VpcIDs: []string{vpcA},
				NetworkInterfaces: []workflow.NetworkInterface{
					{ID: "eni-00000000000000011", VpcID: vpcA, SubnetID: subA1, DeviceIndex: 0, Groups: []string{"sg-0000000000000000a"}},
					{ID: "eni-00000000000000012", VpcID: vpcA, SubnetID: subA2, DeviceIndex: 1, Groups: []string{"sg-0000000000000000b", "sg-0000000000000000c"}},
					{ID: "eni-00000000000000013", VpcID: vpcA, SubnetID: subA2, DeviceIndex: 2, Groups: []string{"sg-0000000000000000c"}},
				},
				DisableAPITermination: true,
				ShutdownBehavior:      "terminate",
				Volumes: []workflow.Volume{
					{VolumeID: "vol-00000000000000012", DeviceName: "/dev/sdf"},
					{VolumeID: "vol-00000000000000011", DeviceName: "/dev/xvda", DeleteOnTermination: true},
				},
			},
		},
		{
			name: "two VPCs (multi-VPC ENI attachment), association still associating, no volume",
			instance: sim.Instance{
				ID: "i-0323456789abcdef0", Profile: "web-server", AssociationState: "associating",
				NetworkInterfaces: []sim.NetworkInterface{
					{ID: "eni-00000000000000022", SubnetID: subB1, DeviceIndex: 1, Groups: []string{"sg-0000000000000000d"}},
					{ID: "eni-00000000000000021", SubnetID: subA1, DeviceIndex: 0, Groups: []string{"sg-0000000000000000a"}},
					{ID: "eni-00000000000000023", SubnetID: subA2, DeviceIndex: 2, Groups: []string{"sg-0000000000000000a"}},
				},
			},
			want: workflow.Record{
				InstanceID: "i-0323456789abcdef0", State: "running", VpcIDs: []string{vpcA, vpcB},
				NetworkInterfaces: []workflow.NetworkInterface{
					{ID: "eni-00000000000000021", VpcID: vpcA, SubnetID: subA1, DeviceIndex: 0, Groups: []string{"sg-0000000000000000a"}},
					{ID: "eni-00000000000000022", VpcID: vpcB, SubnetID: subB1, DeviceIndex: 1, Groups: []string{"sg-0000000000000000d"}},
					{ID: "eni-00000000000000023", VpcID: vpcA, SubnetID: subA2, DeviceIndex: 2, Groups: []string{"sg-0000000000000000a"}},
				},
				ShutdownBehavior: "stop",
				Volumes:          []workflow.Volume{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := network()
			sc.Behaviour.AssociationSettle = time.Hour // "associating" stays so while the test runs
			sc.Instances = []sim.Instance{tt.instance}
			srv, client := start(t, sc)
			h := validate.New(client, settings, slog.New(slog.DiscardHandler))

			got, err := h.Handle(context.Background(), workflow.ValidateInput{Event: tagEvent(tt.instance.ID), ExecutionName: "exec-1"})
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			want := tt.want
			want.InstanceARN = "arn:aws:ec2:us-east-1:123456789012:instance/" + tt.instance.ID
			want.Account, want.Region, want.AvailabilityZone = account, region, "us-east-1a"
			want.Reason = "tag Isolate=true"
			want.Tags = map[string]string{"Isolate": "true"}
			if tt.instance.Profile != "" {
				want.ProfileAssociation = associationOf(t, client, tt.instance.ID)
				if want.ProfileAssociation == nil || want.ProfileAssociation.ProfileARN != "arn:aws:iam::123456789012:instance-profile/web-server" {
					t.Fatalf("simulator association = %+v", want.ProfileAssociation)
				}
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(workflow.Record{}, "RecordedAt", "Description")); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
			// The description is the instance as EC2 described it: the incident record keeps it (issue 16).
			var desc struct {
				InstanceId        string
				NetworkInterfaces []struct{ NetworkInterfaceId string }
			}
			if err := json.Unmarshal(got.Description, &desc); err != nil || desc.InstanceId != tt.instance.ID ||
				len(desc.NetworkInterfaces) != len(tt.instance.NetworkInterfaces) {
				t.Errorf("description = %+v (%v), want instance %s with %d ENIs", desc, err, tt.instance.ID, len(tt.instance.NetworkInterfaces))
			}
			if got.RecordedAt.IsZero() {
				t.Error("RecordedAt is zero")
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("mutating calls: %v", m)
			}
		})
	}
}
