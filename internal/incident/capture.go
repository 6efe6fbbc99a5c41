package incident

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/targets"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// EC2API is the part of the EC2 client the record uses.
type EC2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// AutoScalingAPI is the part of the Auto Scaling client the record uses.
type AutoScalingAPI interface {
	DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
}

// ELBAPI is the part of the Elastic Load Balancing v2 client the record uses.
type ELBAPI = targets.API

// capture reads what Validate's record does not hold and a release restores: the Auto Scaling membership, the
// target group registrations, and the full description. The three reads run at once.
func (r *Recorder) capture(ctx context.Context, rec workflow.Record) (workflow.PreIsolationState, error) {
	st := workflow.PreIsolationState{Record: rec, TargetGroups: []workflow.TargetRegistration{}}
	var (
		wg                     sync.WaitGroup
		asgErr, tgErr, descErr error
	)
	wg.Go(func() { st.AutoScaling, asgErr = r.autoScaling(ctx, rec.InstanceID) })
	wg.Go(func() { st.TargetGroups, tgErr = r.targetGroups(ctx, rec) })
	wg.Go(func() { st.Instance, descErr = r.description(ctx, rec.InstanceID) })
	wg.Wait()
	for _, err := range []error{descErr, asgErr, tgErr} {
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

func (r *Recorder) autoScaling(ctx context.Context, id string) (*workflow.AutoScalingMembership, error) {
	out, err := r.asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return nil, steperr.FromAWS("describe auto scaling membership of "+id, err)
	}
	for _, i := range out.AutoScalingInstances {
		if aws.ToString(i.InstanceId) == id {
			return &workflow.AutoScalingMembership{
				GroupName:            aws.ToString(i.AutoScalingGroupName),
				LifecycleState:       aws.ToString(i.LifecycleState),
				ProtectedFromScaleIn: aws.ToBool(i.ProtectedFromScaleIn),
			}, nil
		}
	}
	return nil, nil
}

// targetGroups finds the instance's registrations (internal/targets: the lookup "Preserve evidence" and the
// release use too).
func (r *Recorder) targetGroups(ctx context.Context, rec workflow.Record) ([]workflow.TargetRegistration, error) {
	return targets.Find(ctx, r.elb, rec.InstanceID, rec.VpcIDs)
}

// description is the instance as DescribeInstances gives it, in the SDK's field names.
func (r *Recorder) description(ctx context.Context, id string) (json.RawMessage, error) {
	i, err := describeInstance(ctx, r.ec2, id)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(i)
	if err != nil {
		return nil, &steperr.AWSError{Op: "encode the description of " + id, Err: err}
	}
	return b, nil
}

// instanceDescriber is what describeInstance calls.
type instanceDescriber interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// describeInstance describes one instance; an unknown one is InstanceNotFound.
func describeInstance(ctx context.Context, api instanceDescriber, id string) (*types.Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	switch code := steperr.Code(err); {
	case err == nil:
	case code == "InvalidInstanceID.NotFound", code == "InvalidInstanceID.Malformed":
		return nil, &steperr.InstanceNotFound{InstanceID: id}
	default:
		return nil, steperr.FromAWS("describe instance "+id, err)
	}
	for _, res := range out.Reservations {
		for _, i := range res.Instances {
			if aws.ToString(i.InstanceId) == id {
				return &i, nil
			}
		}
	}
	return nil, &steperr.InstanceNotFound{InstanceID: id}
}
