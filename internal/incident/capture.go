package incident

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/targets"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// AutoScalingAPI is the part of the Auto Scaling client the record uses.
type AutoScalingAPI interface {
	DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
}

// ELBAPI is the part of the Elastic Load Balancing v2 client the record uses.
type ELBAPI = targets.API

// capture reads what Validate's record does not hold and a release restores: the Auto Scaling membership and the
// target group registrations, at once. The full description is Validate's (issue 16): read before any change,
// while this step runs beside network containment, and one DescribeInstances fewer per isolation. A record
// without one (an execution started by an earlier version, redriven) is recorded without it.
func (r *Recorder) capture(ctx context.Context, rec workflow.Record) (workflow.PreIsolationState, error) {
	st := workflow.PreIsolationState{Record: rec, TargetGroups: []workflow.TargetRegistration{}, Instance: rec.Description}
	// Kept once, as the state's Instance, not twice in the incident record.
	st.Record.Description = nil
	var (
		wg            sync.WaitGroup
		asgErr, tgErr error
	)
	wg.Go(func() { st.AutoScaling, asgErr = r.autoScaling(ctx, rec.InstanceID) })
	wg.Go(func() { st.TargetGroups, tgErr = r.targetGroups(ctx, rec) })
	wg.Wait()
	for _, err := range []error{asgErr, tgErr} {
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
