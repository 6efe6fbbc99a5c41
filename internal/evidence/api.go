// Package evidence holds the steps about the instance's evidence: "Preserve evidence" (isolation) keeps the
// instance and its volumes from being terminated or replaced and takes it out of its load balancers; "Restore
// evidence settings" (release) puts every one of those settings back as the incident record says they were.
// Each part reads the current state first and changes only what differs, so a second run makes no change.
package evidence

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// EC2API is the part of the EC2 client both steps use.
type EC2API interface {
	DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	ModifyInstanceAttribute(ctx context.Context, in *ec2.ModifyInstanceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
}

// describeAutoScalingInstances is the read both steps make of the instance's Auto Scaling membership.
type describeAutoScalingInstances interface {
	DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
}

// describeTargetHealth is the read both steps make of a target group's registrations.
type describeTargetHealth interface {
	DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, opts ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
}

// ec2Error classifies an EC2 error of a call about the instance.
func ec2Error(op, instanceID string, err error) error {
	switch steperr.Code(err) {
	case "InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed":
		return &steperr.InstanceNotFound{InstanceID: instanceID}
	case "IncorrectInstanceState":
		// EC2 refuses attribute changes once the instance is shutting down or terminated: nothing is left to
		// preserve, and no retry changes it.
		return &steperr.InstanceNotIsolatable{InstanceID: instanceID, Reason: op + ": the instance is terminated or shutting down (" + steperr.Code(err) + ")"}
	}
	return steperr.FromAWS(op, err)
}

// terminationProtection reads DisableApiTermination.
func terminationProtection(ctx context.Context, api EC2API, id string) (bool, error) {
	out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameDisableApiTermination,
	})
	if err != nil {
		return false, ec2Error("describe termination protection of "+id, id, err)
	}
	return out.DisableApiTermination != nil && aws.ToBool(out.DisableApiTermination.Value), nil
}

func shutdownBehavior(ctx context.Context, api EC2API, id string) (string, error) {
	out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior,
	})
	if err != nil {
		return "", ec2Error("describe shutdown behaviour of "+id, id, err)
	}
	if out.InstanceInitiatedShutdownBehavior == nil {
		return "", nil
	}
	return aws.ToString(out.InstanceInitiatedShutdownBehavior.Value), nil
}

// ebsMapping is one EBS volume attached to the instance, as EC2 reports it now.
type ebsMapping struct {
	device, volume      string
	deleteOnTermination bool
}

// blockDevices lists the instance's EBS volumes (instance-store devices have no Ebs and are left out).
func blockDevices(ctx context.Context, api EC2API, id string) ([]ebsMapping, error) {
	out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameBlockDeviceMapping,
	})
	if err != nil {
		return nil, ec2Error("describe block device mappings of "+id, id, err)
	}
	var ms []ebsMapping
	for _, m := range out.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		ms = append(ms, ebsMapping{device: aws.ToString(m.DeviceName), volume: aws.ToString(m.Ebs.VolumeId),
			deleteOnTermination: aws.ToBool(m.Ebs.DeleteOnTermination)})
	}
	return ms, nil
}

// setDeleteOnTermination sets delete-on-termination of several devices in one call.
func setDeleteOnTermination(ctx context.Context, api EC2API, id string, devices []string, value bool) error {
	in := &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id)}
	for _, d := range devices {
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, types.InstanceBlockDeviceMappingSpecification{
			DeviceName: aws.String(d),
			Ebs:        &types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(value)},
		})
	}
	if _, err := api.ModifyInstanceAttribute(ctx, in); err != nil {
		return ec2Error(fmt.Sprintf("set delete-on-termination %t on %v of %s", value, devices, id), id, err)
	}
	return nil
}

// membership is the instance's Auto Scaling membership now, or nil when it is in no group.
func membership(ctx context.Context, api describeAutoScalingInstances, id string) (*astypes.AutoScalingInstanceDetails, error) {
	out, err := api.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return nil, steperr.FromAWS("describe Auto Scaling membership of "+id, err)
	}
	for _, m := range out.AutoScalingInstances {
		if aws.ToString(m.InstanceId) == id {
			return &m, nil
		}
	}
	return nil, nil
}

// registration is the instance's registration on a port of a target group now.
type registration struct {
	// groupGone: the target group no longer exists.
	groupGone bool
	// registered: the target is registered (in any state but draining, which is a deregistration under way).
	registered bool
	state      elbtypes.TargetHealthStateEnum
}

// registrationOf lists the group's registered targets (without naming ours: for a target it does not have,
// DescribeTargetHealth would answer an "unused" entry, or an error for a stopped instance) and finds ours.
func registrationOf(ctx context.Context, api describeTargetHealth, arn, id string, port int32) (registration, error) {
	out, err := api.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	if steperr.Code(err) == "TargetGroupNotFound" {
		return registration{groupGone: true}, nil
	}
	if err != nil {
		return registration{}, steperr.FromAWS("describe targets of "+arn, err)
	}
	i := slices.IndexFunc(out.TargetHealthDescriptions, func(d elbtypes.TargetHealthDescription) bool {
		return d.Target != nil && aws.ToString(d.Target.Id) == id && aws.ToInt32(d.Target.Port) == port
	})
	if i < 0 {
		return registration{}, nil
	}
	r := registration{registered: true}
	if h := out.TargetHealthDescriptions[i].TargetHealth; h != nil {
		r.state = h.State
		if h.State == elbtypes.TargetHealthStateEnumUnused && h.Reason == elbtypes.TargetHealthReasonEnumNotRegistered {
			r.registered = false
		}
	}
	if r.state == elbtypes.TargetHealthStateEnumDraining {
		r.registered = false
	}
	return r, nil
}
