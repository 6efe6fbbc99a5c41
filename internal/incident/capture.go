package incident

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
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
type ELBAPI interface {
	DescribeTargetGroups(ctx context.Context, in *elbv2.DescribeTargetGroupsInput, opts ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, opts ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
}

// healthConcurrency bounds the DescribeTargetHealth calls in flight (one per target group of the VPCs).
const healthConcurrency = 8

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

// targetGroups finds the instance's registrations: every instance-type target group in one of its VPCs
// (DescribeTargetGroups cannot filter by VPC or target), then each group's targets. A registration that is
// draining is leaving the group already and is not recorded.
func (r *Recorder) targetGroups(ctx context.Context, rec workflow.Record) ([]workflow.TargetRegistration, error) {
	var groups []string
	p := elbv2.NewDescribeTargetGroupsPaginator(r.elb, &elbv2.DescribeTargetGroupsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, steperr.FromAWS("describe target groups", err)
		}
		for _, g := range out.TargetGroups {
			if g.TargetType == elbtypes.TargetTypeEnumInstance && slices.Contains(rec.VpcIDs, aws.ToString(g.VpcId)) {
				groups = append(groups, aws.ToString(g.TargetGroupArn))
			}
		}
	}

	var (
		mu    sync.Mutex
		regs  = []workflow.TargetRegistration{}
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, healthConcurrency)
	)
	for _, arn := range groups {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := r.elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
			mu.Lock()
			defer mu.Unlock()
			if steperr.Code(err) == "TargetGroupNotFound" {
				return // deleted since it was listed: the instance is not in it
			}
			if err != nil {
				if first == nil {
					first = steperr.FromAWS("describe targets of "+arn, err)
				}
				return
			}
			for _, d := range out.TargetHealthDescriptions {
				if d.Target == nil || aws.ToString(d.Target.Id) != rec.InstanceID {
					continue
				}
				if d.TargetHealth != nil && (d.TargetHealth.State == elbtypes.TargetHealthStateEnumDraining ||
					d.TargetHealth.State == elbtypes.TargetHealthStateEnumUnhealthyDraining) {
					continue
				}
				regs = append(regs, workflow.TargetRegistration{
					TargetGroupARN: arn, Port: aws.ToInt32(d.Target.Port), AvailabilityZone: aws.ToString(d.Target.AvailabilityZone),
				})
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	slices.SortFunc(regs, func(a, b workflow.TargetRegistration) int {
		return cmp.Or(cmp.Compare(a.TargetGroupARN, b.TargetGroupARN), cmp.Compare(a.Port, b.Port))
	})
	return regs, nil
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
