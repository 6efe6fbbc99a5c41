package evidence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence/parts"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// RestoreStep is the ASL state name of Restore.
const RestoreStep = "Restore evidence settings"

// RestoreAutoScalingAPI is the part of the Auto Scaling client Restore uses.
type RestoreAutoScalingAPI interface {
	describeAutoScalingInstances
	DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	AttachInstances(ctx context.Context, in *autoscaling.AttachInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.AttachInstancesOutput, error)
	SetInstanceProtection(ctx context.Context, in *autoscaling.SetInstanceProtectionInput, opts ...func(*autoscaling.Options)) (*autoscaling.SetInstanceProtectionOutput, error)
}

// RestoreTargetsAPI is the part of the Elastic Load Balancing v2 client Restore uses.
type RestoreTargetsAPI interface {
	describeTargetHealth
	RegisterTargets(ctx context.Context, in *elbv2.RegisterTargetsInput, opts ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error)
}

// Restore is the handler of "Restore evidence settings".
type Restore struct {
	ec2 EC2API
	asg RestoreAutoScalingAPI
	elb RestoreTargetsAPI
	log *slog.Logger
}

// NewRestore returns the handler. A nil logger logs to slog.Default().
func NewRestore(ec2 EC2API, asg RestoreAutoScalingAPI, elb RestoreTargetsAPI, log *slog.Logger) *Restore {
	if log == nil {
		log = slog.Default()
	}
	return &Restore{ec2: ec2, asg: asg, elb: elb, log: log}
}

// Handle puts back, all at once, what the incident's pre-isolation state records: termination protection,
// shutdown behaviour, each recorded volume's delete-on-termination, the Auto Scaling group (AttachInstances,
// which raises the group's desired capacity by one: the replacement launched at isolation stays, so the group
// ends one instance larger than before the incident; scale it in by hand if that is not wanted) and each target
// group registration. What no longer exists (the group, a target group, a volume detached since) is reported in
// Skipped, not as a failure. Each part does only what differs, so a second run changes nothing.
func (h *Restore) Handle(ctx context.Context, in workflow.ReleaseInput) (workflow.StepChanges, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", RestoreStep)
	if err := parts.CheckRelease(RestoreStep, in); err != nil {
		log.Error("refused input", "error", err)
		return workflow.StepChanges{Changes: []workflow.Change{}}, err
	}
	pre := in.Incident.PreIsolation
	if err := checkTargetGroups(RestoreStep, pre.TargetGroups); err != nil {
		log.Error("refused input", "error", err)
		return workflow.StepChanges{Changes: []workflow.Change{}}, err
	}
	id, rec := in.InstanceID, pre.Record
	ps := []parts.Part{
		{Name: "termination protection", Run: func(ctx context.Context, r *parts.Result) error {
			return h.terminationProtection(ctx, id, rec.DisableAPITermination, rec.InstanceLifecycle == spotLifecycle, r)
		}},
		{Name: "shutdown behaviour", Run: func(ctx context.Context, r *parts.Result) error {
			return h.shutdownBehavior(ctx, id, rec.ShutdownBehavior, r)
		}},
		{Name: "delete-on-termination", Run: func(ctx context.Context, r *parts.Result) error {
			return h.volumes(ctx, id, rec.Volumes, r)
		}},
	}
	if pre.AutoScaling != nil {
		ps = append(ps, parts.Part{Name: "Auto Scaling group " + pre.AutoScaling.GroupName, Run: func(ctx context.Context, r *parts.Result) error {
			return h.attach(ctx, id, *pre.AutoScaling, r)
		}})
	}
	for _, tg := range pre.TargetGroups {
		ps = append(ps, parts.Part{Name: fmt.Sprintf("target group %s port %d", tg.TargetGroupARN, tg.Port),
			Run: func(ctx context.Context, r *parts.Result) error { return h.register(ctx, id, tg, r) }})
	}

	out, errs := parts.Run(ctx, RestoreStep, ps)
	if err := parts.Error(RestoreStep, len(ps), errs); err != nil {
		log.Error("evidence settings not fully restored", "error", err, "changes", out.Changes, "skipped", out.Skipped)
		return out, err
	}
	log.Info("evidence settings restored", "changes", out.Changes, "skipped", out.Skipped)
	return out, nil
}

// terminationProtection never touches a Spot Instance's: EC2 refuses any change of it (it cannot have any).
func (h *Restore) terminationProtection(ctx context.Context, id string, want, spot bool, r *parts.Result) error {
	if spot {
		r.Skip(spotSkip, id)
		return nil
	}
	cur, err := terminationProtection(ctx, h.ec2, id)
	if err != nil || cur == want {
		return err
	}
	if _, err := h.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(id), DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(want)},
	}); err != nil {
		if spotRefusal(err) {
			r.Skip(spotSkip, id)
			return nil
		}
		return ec2Error(fmt.Sprintf("set termination protection of %s to %t", id, want), id, err)
	}
	r.Changed(id, "ModifyInstanceAttribute", fmt.Sprintf("termination protection (disableApiTermination) %t -> %t", cur, want))
	return nil
}

func (h *Restore) shutdownBehavior(ctx context.Context, id, want string, r *parts.Result) error {
	if want == "" {
		r.Skip("shutdown behaviour: the record does not say what it was")
		return nil
	}
	cur, err := shutdownBehavior(ctx, h.ec2, id)
	if err != nil || cur == want {
		return err
	}
	if err := setShutdownBehavior(ctx, h.ec2, id, want); err != nil {
		return err
	}
	r.Changed(id, "ModifyInstanceAttribute", fmt.Sprintf("shutdown behaviour (instanceInitiatedShutdownBehavior) %s -> %s", cur, want))
	return nil
}

// volumes sets delete-on-termination back, in one call, on every recorded volume still attached whose value
// differs. A volume is found by its id: its device name now may differ from the recorded one.
func (h *Restore) volumes(ctx context.Context, id string, recorded []workflow.Volume, r *parts.Result) error {
	if len(recorded) == 0 {
		return nil
	}
	ms, err := blockDevices(ctx, h.ec2, id)
	if err != nil {
		return err
	}
	byVolume := map[string]ebsMapping{}
	for _, m := range ms {
		byVolume[m.volume] = m
	}
	// One call per value: ModifyInstanceAttribute takes one attribute, but every device of a value at once.
	todo := map[bool][]ebsMapping{}
	for _, v := range recorded {
		m, ok := byVolume[v.VolumeID]
		switch {
		case !ok:
			r.Skip("volume %s (%s): no longer attached to %s", v.VolumeID, v.DeviceName, id)
		case m.deleteOnTermination != v.DeleteOnTermination:
			todo[v.DeleteOnTermination] = append(todo[v.DeleteOnTermination], m)
		}
	}
	var errs []error
	for _, value := range []bool{false, true} {
		if len(todo[value]) == 0 {
			continue
		}
		var devices []string
		for _, m := range todo[value] {
			devices = append(devices, m.device)
		}
		if err := setDeleteOnTermination(ctx, h.ec2, id, devices, value); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, m := range todo[value] {
			r.Changed(m.volume, "ModifyInstanceAttribute", fmt.Sprintf("delete-on-termination %t -> %t (%s of %s)", !value, value, m.device, id))
		}
	}
	return errors.Join(errs...)
}

// attach puts the instance back into its recorded Auto Scaling group, with its recorded scale-in protection.
func (h *Restore) attach(ctx context.Context, id string, rec workflow.AutoScalingMembership, r *parts.Result) error {
	m, err := membership(ctx, h.asg, id)
	if err != nil {
		return err
	}
	if m != nil {
		group := aws.ToString(m.AutoScalingGroupName)
		if group != rec.GroupName {
			r.Skip("Auto Scaling: %s is now in group %s; not moved back to %s", id, group, rec.GroupName)
			return nil
		}
		if rec.LifecycleState != "" && rec.LifecycleState != "InService" && aws.ToString(m.LifecycleState) == "InService" {
			r.Skip("Auto Scaling: %s was %s in %s before isolation; it is InService now", id, rec.LifecycleState, group)
		}
		return h.protect(ctx, id, group, aws.ToString(m.LifecycleState), aws.ToBool(m.ProtectedFromScaleIn), rec.ProtectedFromScaleIn, r)
	}

	out, err := h.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{rec.GroupName}})
	if err != nil {
		return steperr.FromAWS("describe Auto Scaling group "+rec.GroupName, err)
	}
	if len(out.AutoScalingGroups) == 0 {
		r.Skip("Auto Scaling: group %s no longer exists; %s not re-attached", rec.GroupName, id)
		return nil
	}
	g := out.AutoScalingGroups[0]
	desired, maxSize := aws.ToInt32(g.DesiredCapacity), aws.ToInt32(g.MaxSize)
	op := "re-attach " + id + " to Auto Scaling group " + rec.GroupName
	if desired+1 > maxSize {
		return &steperr.AWSError{Op: op, Err: fmt.Errorf(
			"the group is at its maximum size (desired capacity %d, max size %d) and attaching raises the desired capacity by one: raise the max size, or scale in, then run the release again", desired, maxSize)}
	}
	if _, err := h.asg.AttachInstances(ctx, &autoscaling.AttachInstancesInput{
		AutoScalingGroupName: aws.String(rec.GroupName), InstanceIds: []string{id},
	}); err != nil {
		if steperr.Code(err) == "ValidationError" && strings.Contains(strings.ToLower(err.Error()), "max") {
			return &steperr.AWSError{Op: op, Err: fmt.Errorf("the group is at its maximum size (max size %d): %w", maxSize, err)}
		}
		return steperr.FromAWS(op, err)
	}
	r.Changed(rec.GroupName, "AttachInstances", fmt.Sprintf("attached %s; desired capacity %d -> %d (AttachInstances raises it by one)", id, desired, desired+1))
	// The group gives the attached instance its own NewInstancesProtectedFromScaleIn.
	return h.protect(ctx, id, rec.GroupName, "", aws.ToBool(g.NewInstancesProtectedFromScaleIn), rec.ProtectedFromScaleIn, r)
}

// protect sets the instance's scale-in protection to the recorded value when it differs.
func (h *Restore) protect(ctx context.Context, id, group, state string, cur, want bool, r *parts.Result) error {
	if cur == want {
		return nil
	}
	if _, err := h.asg.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{
		AutoScalingGroupName: aws.String(group), InstanceIds: []string{id}, ProtectedFromScaleIn: aws.Bool(want),
	}); err != nil {
		op := fmt.Sprintf("set scale-in protection of %s in %s to %t", id, group, want)
		if steperr.Code(err) == "ValidationError" && state != "InService" {
			// Just attached (Pending): the retry finds it in the group and sets it then.
			return &steperr.Transient{Op: op, Err: err}
		}
		return steperr.FromAWS(op, err)
	}
	r.Changed(group, "SetInstanceProtection", fmt.Sprintf("scale-in protection of %s %t -> %t", id, cur, want))
	return nil
}

// register puts the instance's registration on the recorded port back into the target group.
func (h *Restore) register(ctx context.Context, id string, tg workflow.TargetRegistration, r *parts.Result) error {
	reg, err := registrationOf(ctx, h.elb, tg.TargetGroupARN, id, tg.Port)
	switch {
	case err != nil:
		return err
	case reg.groupGone:
		r.Skip("target group %s: no longer exists; %s port %d not registered", tg.TargetGroupARN, id, tg.Port)
		return nil
	case reg.registered:
		return nil
	}
	// A target of an instance target group takes no Availability Zone (the recorded one is for IP targets).
	if _, err := h.elb.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{
		TargetGroupArn: aws.String(tg.TargetGroupARN),
		Targets:        []elbtypes.TargetDescription{{Id: aws.String(id), Port: aws.Int32(tg.Port)}},
	}); err != nil {
		if steperr.Code(err) == "TargetGroupNotFound" {
			r.Skip("target group %s: no longer exists; %s port %d not registered", tg.TargetGroupARN, id, tg.Port)
			return nil
		}
		return steperr.FromAWS(fmt.Sprintf("register %s:%d with %s", id, tg.Port, tg.TargetGroupARN), err)
	}
	r.Changed(tg.TargetGroupARN, "RegisterTargets", fmt.Sprintf("registered %s port %d", id, tg.Port))
	return nil
}
