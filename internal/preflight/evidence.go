package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/targets"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The checks of issue 15, item 2: the incident bucket, and the steps beyond the network and the profile (the
// evidence settings, Auto Scaling, load balancing, the credential revocation, the record, and the release's own
// calls). Reads are made for real (they change nothing); writes with DryRun where EC2 has it, else by the IAM
// policy simulator.

// S3API is the part of the S3 client the bucket check uses.
type S3API interface {
	HeadBucket(ctx context.Context, in *s3.HeadBucketInput, opts ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	GetBucketVersioning(ctx context.Context, in *s3.GetBucketVersioningInput, opts ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error)
}

// AutoScalingAPI is the part of the Auto Scaling client the checks use.
type AutoScalingAPI interface {
	DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
}

// bucket checks that the incident bucket exists, can be reached, and keeps versions: the record is written before
// any IAM change, and a run whose record cannot be written fails after the network was cut.
func (p *prober) bucket(ctx context.Context) {
	b := p.in.Names.IncidentBucket
	name := "incident bucket"
	switch {
	case b == "":
		p.add(Check{Name: name, Status: Fail, Detail: "no incident bucket: pass --incident-bucket, or deploy the stack (output " + OutputBucket + ")"})
		return
	case p.c.S3 == nil:
		p.add(Check{Name: name, Status: Unverified, Detail: "no S3 client"})
		return
	}
	name += " " + b
	_, err := p.c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)})
	switch code := steperr.Code(err); {
	case code == "NotFound" || code == "NoSuchBucket":
		p.add(Check{Name: name, Status: Fail, Detail: "does not exist: deploy the stack, or pass the right --incident-bucket"})
		return
	case err != nil && isDeniedOrForbidden(err):
		p.add(Check{Name: name, Status: Fail, Detail: "exists but the caller may not use it (HeadBucket answered 403: another account's bucket, or s3:ListBucket is missing)", Missing: "s3:ListBucket"})
		return
	case err != nil:
		p.add(fromErr(name, err))
		return
	}
	out, err := p.c.S3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b)})
	switch {
	case err != nil && isDeniedOrForbidden(err):
		p.add(Check{Name: name, Status: Unverified, Detail: "exists; preflight may not read its versioning (the isolation does not need to)", Missing: "s3:GetBucketVersioning"})
	case err != nil:
		p.add(fromErr(name, err))
	case out.Status != s3types.BucketVersioningStatusEnabled:
		status := string(out.Status)
		if status == "" {
			status = "never enabled"
		}
		p.add(Check{Name: name, Status: Fail, Detail: "exists but versioning is " + status + ": the record keeps every version of an incident (enable versioning, or use the stack's bucket)"})
	default:
		p.add(Check{Name: name, Status: Pass, Detail: "exists, versioned"})
	}
	p.simulate(ctx, "write the incident record", "arn:"+p.partition()+":s3:::"+b+"/"+workflow.IncidentKey(p.in.Identity.Account, p.rep.Region, orAny(p.in.InstanceID)),
		"s3:GetObject", "s3:PutObject")
}

// evidence checks "Preserve evidence" (and the release's "Restore evidence settings", the same calls): the
// instance attributes with DryRun, the Auto Scaling and target group membership read for real, their changes with
// the policy simulator.
func (p *prober) evidence(ctx context.Context, rec *workflow.Record) {
	id := aws.String(rec.InstanceID)
	if rec.InstanceLifecycle == "spot" {
		p.add(Check{Name: "termination protection", Status: Skipped, Detail: "a Spot Instance cannot have it: the workflow skips it"})
	} else {
		p.add(dryRun("termination protection", "may be turned on", func() error {
			_, err := p.c.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{DryRun: aws.Bool(true), InstanceId: id,
				DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}})
			return err
		}))
	}
	p.add(dryRun("shutdown behaviour", "may be set to stop", func() error {
		_, err := p.c.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{DryRun: aws.Bool(true), InstanceId: id,
			InstanceInitiatedShutdownBehavior: &types.AttributeValue{Value: aws.String("stop")}})
		return err
	}))
	if len(rec.Volumes) == 0 {
		p.add(Check{Name: "delete-on-termination", Status: Skipped, Detail: "the instance has no EBS volume"})
	} else {
		var m []types.InstanceBlockDeviceMappingSpecification
		for _, v := range rec.Volumes {
			m = append(m, types.InstanceBlockDeviceMappingSpecification{DeviceName: aws.String(v.DeviceName),
				Ebs: &types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(false)}})
		}
		p.add(dryRun("delete-on-termination", "may be turned off for "+Count(len(rec.Volumes), "volume"), func() error {
			_, err := p.c.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{DryRun: aws.Bool(true), InstanceId: id, BlockDeviceMappings: m})
			return err
		}))
	}
	p.autoScaling(ctx, rec)
	p.targetGroups(ctx, rec)
}

func (p *prober) autoScaling(ctx context.Context, rec *workflow.Record) {
	name := "Auto Scaling group"
	if p.c.AutoScaling == nil {
		p.add(Check{Name: name, Status: Unverified, Detail: "no Auto Scaling client"})
		return
	}
	out, err := p.c.AutoScaling.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{rec.InstanceID}})
	if err != nil {
		p.add(fromErr(name, err))
		return
	}
	if len(out.AutoScalingInstances) == 0 {
		p.add(Check{Name: name, Status: Pass, Detail: "the instance is in none: nothing to detach (autoscaling:DescribeAutoScalingInstances allowed)"})
		return
	}
	group := aws.ToString(out.AutoScalingInstances[0].AutoScalingGroupName)
	arn := fmt.Sprintf("arn:%s:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s", p.partition(), p.rep.Region, p.in.Identity.Account, group)
	p.simulate(ctx, "detach from Auto Scaling group "+group, arn, "autoscaling:DetachInstances")
	p.simulate(ctx, "release: re-attach to "+group, arn, "autoscaling:AttachInstances", "autoscaling:SetInstanceProtection")
}

func (p *prober) targetGroups(ctx context.Context, rec *workflow.Record) {
	name := "target groups"
	if p.c.ELB == nil {
		p.add(Check{Name: name, Status: Unverified, Detail: "no Elastic Load Balancing client"})
		return
	}
	regs, err := targets.Find(ctx, p.c.ELB, rec.InstanceID, rec.VpcIDs)
	if err != nil {
		p.add(fromErr(name, err))
		return
	}
	if len(regs) == 0 {
		p.add(Check{Name: name, Status: Pass, Detail: "the instance is registered in none: nothing to deregister"})
		return
	}
	arns := map[string]bool{}
	for _, r := range regs {
		if !arns[r.TargetGroupARN] {
			arns[r.TargetGroupARN] = true
			short := r.TargetGroupARN[strings.LastIndex(r.TargetGroupARN, ":")+1:]
			p.simulate(ctx, "deregister from "+short, r.TargetGroupARN, "elasticloadbalancing:DeregisterTargets")
			p.simulate(ctx, "release: re-register with "+short, r.TargetGroupARN, "elasticloadbalancing:RegisterTargets")
		}
	}
}

// revocation checks "Revoke credentials" and the release's "Lift credential revocation": the inline policy on the
// instance profile's role.
func (p *prober) revocation(ctx context.Context, rec *workflow.Record) {
	a := rec.ProfileAssociation
	if a == nil || isProfileNamed(a.ProfileARN, p.in.Names.ProfileName) {
		p.add(Check{Name: "revoke credentials", Status: Skipped, Detail: "the instance has no instance profile of its own"})
		return
	}
	name := a.ProfileARN[strings.LastIndex(a.ProfileARN, "/")+1:]
	role := ""
	if p.c.IAM != nil {
		if out, err := p.c.IAM.GetInstanceProfile(ctx, iamProfileInput(name), noRetry); err == nil && len(out.InstanceProfile.Roles) > 0 {
			role = aws.ToString(out.InstanceProfile.Roles[0].Arn)
		}
	}
	if role == "" {
		p.add(Check{Name: "revoke credentials", Status: Unverified, Detail: "the role of " + a.ProfileARN + " cannot be read (iam:GetInstanceProfile)"})
		return
	}
	p.simulate(ctx, "revoke credentials", role, "iam:GetRolePolicy", "iam:PutRolePolicy")
	p.simulate(ctx, "release: lift the revocation and pass the original role", role, "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PassRole")
}

func (p *prober) partition() string {
	if p.in.Identity.Partition != "" {
		return p.in.Identity.Partition
	}
	return "aws"
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// isDeniedOrForbidden: a refusal, or S3's bare 403 (HeadBucket has no body to carry a code).
func isDeniedOrForbidden(err error) bool {
	return isDenied(err) || steperr.Code(err) == "Forbidden" || steperr.Code(err) == "403"
}
