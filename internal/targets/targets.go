// Package targets finds an instance's load balancer target group registrations (Elastic Load Balancing v2):
// what "Preserve evidence" deregisters and reports, and what a release registers again.
package targets

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// API is the part of the Elastic Load Balancing v2 client Find uses.
type API interface {
	DescribeTargetGroups(ctx context.Context, in *elbv2.DescribeTargetGroupsInput, opts ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, opts ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
}

// healthConcurrency bounds the DescribeTargetHealth calls in flight (one per target group of the VPCs).
const healthConcurrency = 8

// Find returns the instance's registrations, sorted by target group and port: every instance-type target group
// in one of vpcIDs (DescribeTargetGroups cannot filter by VPC or target), then each group's targets. A
// registration that is draining is leaving the group already and is left out; a group deleted since it was
// listed does not have the instance.
func Find(ctx context.Context, api API, instanceID string, vpcIDs []string) ([]workflow.TargetRegistration, error) {
	var groups []string
	p := elbv2.NewDescribeTargetGroupsPaginator(api, &elbv2.DescribeTargetGroupsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, steperr.FromAWS("describe target groups", err)
		}
		for _, g := range out.TargetGroups {
			if g.TargetType == elbtypes.TargetTypeEnumInstance && slices.Contains(vpcIDs, aws.ToString(g.VpcId)) {
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
			out, err := api.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
			mu.Lock()
			defer mu.Unlock()
			if steperr.Code(err) == "TargetGroupNotFound" {
				return
			}
			if err != nil {
				if first == nil {
					first = steperr.FromAWS("describe targets of "+arn, err)
				}
				return
			}
			for _, d := range out.TargetHealthDescriptions {
				if d.Target == nil || aws.ToString(d.Target.Id) != instanceID {
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
