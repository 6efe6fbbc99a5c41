package sim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"
)

// The evidence settings preserve-evidence changes and the release restores: several devices in one call, all
// or nothing, and every read path (DescribeInstances, DescribeInstanceAttribute) sees the same values.
func TestModifyBlockDevicesDeleteOnTermination(t *testing.T) {
	s, c, _ := start(t, baseScenario())
	ctx := context.Background()
	spec := func(dev string, del bool) ec2types.InstanceBlockDeviceMappingSpecification {
		return ec2types.InstanceBlockDeviceMappingSpecification{DeviceName: aws.String(dev),
			Ebs: &ec2types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(del)}}
	}
	read := func() (map[string]bool, map[string]bool) {
		t.Helper()
		fromInstance := map[string]bool{}
		for _, b := range describeOne(t, c, instWeb).BlockDeviceMappings {
			fromInstance[aws.ToString(b.DeviceName)] = aws.ToBool(b.Ebs.DeleteOnTermination)
		}
		attr, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instWeb),
			Attribute: ec2types.InstanceAttributeNameBlockDeviceMapping})
		if err != nil {
			t.Fatal(err)
		}
		fromAttr := map[string]bool{}
		for _, b := range attr.BlockDeviceMappings {
			fromAttr[aws.ToString(b.DeviceName)] = aws.ToBool(b.Ebs.DeleteOnTermination)
		}
		return fromInstance, fromAttr
	}
	tests := []struct {
		name    string
		devices []ec2types.InstanceBlockDeviceMappingSpecification
		code    string
		want    map[string]bool
	}{
		{"both in one call", []ec2types.InstanceBlockDeviceMappingSpecification{spec("/dev/xvda", false), spec("/dev/xvdf", true)}, "",
			map[string]bool{"/dev/xvda": false, "/dev/xvdf": true}},
		{"unknown device refuses the whole call", []ec2types.InstanceBlockDeviceMappingSpecification{spec("/dev/xvda", true), spec("/dev/sdz", true)},
			"InvalidInstanceAttributeValue", map[string]bool{"/dev/xvda": false, "/dev/xvdf": true}},
		{"restore", []ec2types.InstanceBlockDeviceMappingSpecification{spec("/dev/xvda", true), spec("/dev/xvdf", false)}, "",
			map[string]bool{"/dev/xvda": true, "/dev/xvdf": false}},
	}
	for _, tc := range tests {
		_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instWeb), BlockDeviceMappings: tc.devices})
		if tc.code != "" {
			wantErr(t, err, tc.code, 400)
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fromInstance, fromAttr := read()
		if diff := cmp.Diff(tc.want, fromInstance); diff != "" {
			t.Errorf("%s: DescribeInstances (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.want, fromAttr); diff != "" {
			t.Errorf("%s: DescribeInstanceAttribute (-want +got):\n%s", tc.name, diff)
		}
	}
	// DryRun validates and changes nothing.
	s.ResetCalls()
	_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instWeb), DryRun: aws.Bool(true),
		DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	wantErr(t, err, "DryRunOperation", 412)
	term, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instWeb),
		Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
	if err != nil || aws.ToBool(term.DisableApiTermination.Value) {
		t.Errorf("termination protection after DryRun: %+v %v", term, err)
	}
}

// A Spot Instance: DescribeInstances says so, and EC2 refuses any change of its termination protection
// (UnsupportedOperation) while the other attributes change as for any instance.
func TestSpotInstanceRefusesTerminationProtection(t *testing.T) {
	sc := baseScenario()
	for i := range sc.Instances {
		if sc.Instances[i].ID == instWeb {
			sc.Instances[i].InstanceLifecycle = "spot"
		}
	}
	_, c, _ := start(t, sc)
	ctx := context.Background()
	if got := describeOne(t, c, instWeb).InstanceLifecycle; got != ec2types.InstanceLifecycleTypeSpot {
		t.Errorf("instanceLifecycle = %q, want spot", got)
	}
	for _, v := range []bool{true, false} {
		_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instWeb),
			DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(v)}})
		wantErr(t, err, "UnsupportedOperation", 400)
	}
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(instWeb),
		InstanceInitiatedShutdownBehavior: &ec2types.AttributeValue{Value: aws.String("stop")}}); err != nil {
		t.Errorf("shutdown behaviour of a Spot Instance: %v", err)
	}
	for _, other := range sc.Instances {
		if other.ID != instWeb {
			if got := describeOne(t, c, other.ID).InstanceLifecycle; got != "" {
				t.Errorf("%s: instanceLifecycle = %q, want empty (On-Demand)", other.ID, got)
			}
			break
		}
	}
}
