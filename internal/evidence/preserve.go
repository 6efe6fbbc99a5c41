package evidence

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence/parts"
	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/targets"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// PreserveStep is the ASL state name of Preserve.
const PreserveStep = "Preserve evidence"

// PreserveAutoScalingAPI is the part of the Auto Scaling client Preserve uses.
type PreserveAutoScalingAPI interface {
	describeAutoScalingInstances
	DetachInstances(ctx context.Context, in *autoscaling.DetachInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DetachInstancesOutput, error)
}

// PreserveTargetsAPI is the part of the Elastic Load Balancing v2 client Preserve uses.
type PreserveTargetsAPI interface {
	targets.API
	DeregisterTargets(ctx context.Context, in *elbv2.DeregisterTargetsInput, opts ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error)
}

// Preserve is the handler of "Preserve evidence".
type Preserve struct {
	ec2      EC2API
	asg      PreserveAutoScalingAPI
	elb      PreserveTargetsAPI
	settings Settings
	log      *slog.Logger
	// incidents, when set, is where a settings job looks for a release of its incident (WithIncidents).
	incidents *incidentStore
}

// NewPreserve returns the handler. A nil logger logs to slog.Default().
func NewPreserve(ec2 EC2API, asg PreserveAutoScalingAPI, elb PreserveTargetsAPI, s Settings, log *slog.Logger) *Preserve {
	if log == nil {
		log = slog.Default()
	}
	return &Preserve{ec2: ec2, asg: asg, elb: elb, settings: s, log: log}
}

// WithIncidents makes a settings job (stage "settings": the evidence state machine) read the incident record from
// bucket first: once the incident its isolation execution joined is released, it changes nothing and says so.
// The record is in S3, so the check takes nothing from the EC2 request buckets that containment needs.
func (h *Preserve) WithIncidents(s3c incident.S3API, bucket string) *Preserve {
	h.incidents = &incidentStore{s3: s3c, bucket: bucket}
	return h
}

// Handle runs every part the settings and the input's stage leave on, all at once (each reads, then changes only
// what is missing): termination protection on (never for a Spot Instance, which cannot have it: skipped, with
// the reason), shutdown behaviour stop, delete-on-termination off for every EBS volume (the "settings" stage),
// detached from its Auto Scaling group without decrementing the desired capacity, deregistered from every target
// group that has it (the "fleet" stage). A part that fails does not stop the others; the error names them all.
//
// The fleet stage runs in the isolation's evidence branch, beside the incident record (not after it): given
// Validate's record, it finds the target group registrations itself, and reports in Observed the Auto Scaling
// membership and registrations it saw before changing them, for the record to keep for the release. An older
// input's PreIsolation (the incident's state) is still honoured: its registrations are deregistered too. The
// settings stage runs later, in the evidence state machine (issue 16: containment first), and changes nothing
// once the incident is released.
func (h *Preserve) Handle(ctx context.Context, in workflow.EvidenceInput) (workflow.StepChanges, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", PreserveStep, "stage", in.Stage)
	if err := checkEvidenceInput(in); err != nil {
		log.Error("refused input", "error", err)
		return workflow.StepChanges{Changes: []workflow.Change{}}, err
	}
	if in.Stage == workflow.StageSettings {
		why, err := h.released(ctx, in)
		if err != nil {
			log.Error("could not tell whether the incident was released", "error", err)
			return workflow.StepChanges{Changes: []workflow.Change{}}, err
		}
		if why != "" {
			log.Info("released before its settings job ran: nothing changed", "reason", why)
			return workflow.StepChanges{Changes: []workflow.Change{}, Skipped: []string{why}}, nil
		}
	}
	id := in.InstanceID
	spot := in.PreIsolation.Record.InstanceLifecycle == spotLifecycle || (in.Record != nil && in.Record.InstanceLifecycle == spotLifecycle)
	// Each part writes only its own observation: no lock needed.
	var (
		observedASG  *workflow.AutoScalingMembership
		observedRegs []workflow.TargetRegistration
	)
	var ps []parts.Part
	off := func(what, env string) parts.Part {
		return parts.Part{Name: what, Run: func(_ context.Context, r *parts.Result) error {
			r.Skip("%s: turned off (%s=false)", what, env)
			return nil
		}}
	}
	add := func(on bool, what, env string, run func(context.Context, *parts.Result) error) {
		if on {
			ps = append(ps, parts.Part{Name: what, Run: run})
		} else {
			ps = append(ps, off(what, env))
		}
	}
	if in.Stage != workflow.StageFleet {
		// The first run trusts Validate's record (DescribeInstances has each mapping's delete-on-termination, and
		// DescribeInstanceAttribute blockDeviceMapping would be one more call); a rerun reads again.
		var rec *workflow.Record
		if in.Record != nil && !in.Again() {
			rec = in.Record
		}
		add(h.settings.TerminationProtection, "termination protection", EnvTerminationProtection,
			func(ctx context.Context, r *parts.Result) error {
				return h.terminationProtection(ctx, id, spot, rec, r)
			})
		add(h.settings.StopOnShutdown, "shutdown behaviour", EnvStopOnShutdown,
			func(ctx context.Context, r *parts.Result) error { return h.stopOnShutdown(ctx, id, rec, r) })
		add(h.settings.KeepVolumes, "delete-on-termination", EnvKeepVolumes,
			func(ctx context.Context, r *parts.Result) error { return h.keepVolumes(ctx, id, rec, r) })
	}
	if in.Stage != workflow.StageSettings {
		add(h.settings.DetachAutoScaling, "Auto Scaling", EnvDetachAutoScaling,
			func(ctx context.Context, r *parts.Result) (err error) {
				observedASG, err = h.detach(ctx, id, r)
				return err
			})
		switch {
		case !h.settings.DeregisterTargets:
			ps = append(ps, off("target groups", EnvDeregisterTargets))
		case in.Record != nil:
			vpcs, recorded := in.Record.VpcIDs, in.PreIsolation.TargetGroups
			ps = append(ps, parts.Part{Name: "target groups", Run: func(ctx context.Context, r *parts.Result) (err error) {
				observedRegs, err = h.deregisterAll(ctx, id, vpcs, recorded, r)
				return err
			}})
		default:
			// An older input: the incident's registrations, one part each.
			for _, tg := range in.PreIsolation.TargetGroups {
				ps = append(ps, parts.Part{Name: fmt.Sprintf("target group %s port %d", tg.TargetGroupARN, tg.Port),
					Run: func(ctx context.Context, r *parts.Result) error { return h.deregister(ctx, id, tg, r) }})
			}
		}
	}

	out, errs := parts.Run(ctx, PreserveStep, ps)
	if in.Stage == workflow.StageFleet {
		if on := h.settingsOn(); on != "" {
			out.Skipped = append(out.Skipped, on+": queued for the evidence state machine, which applies them once containment is done")
		}
	}
	if observedASG != nil || len(observedRegs) > 0 {
		out.Observed = &workflow.EvidenceObserved{AutoScaling: observedASG, TargetGroups: observedRegs}
	}
	if err := parts.Error(PreserveStep, len(ps), errs); err != nil {
		log.Error("evidence not fully preserved", "error", err, "changes", out.Changes, "skipped", out.Skipped, "observed", out.Observed)
		return out, err
	}
	log.Info("evidence preserved", "changes", out.Changes, "skipped", out.Skipped, "observed", out.Observed)
	return out, nil
}

// settingsOn names the instance settings the stack parameters leave on ("" for none).
func (h *Preserve) settingsOn() string {
	var on []string
	for _, s := range []struct {
		on   bool
		what string
	}{{h.settings.TerminationProtection, "termination protection"}, {h.settings.StopOnShutdown, "shutdown behaviour stop"},
		{h.settings.KeepVolumes, "delete-on-termination off"}} {
		if s.on {
			on = append(on, s.what)
		}
	}
	return strings.Join(on, ", ")
}

// spotLifecycle is DescribeInstances' InstanceLifecycle of a Spot Instance.
const spotLifecycle = "spot"

// spotRefusal is how EC2 refuses termination protection for a Spot Instance ("You can't enable termination
// protection for Spot Instances",
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_ChangingDisableAPITermination.html):
// UnsupportedOperation "Modifying 'disableApiTermination' is not supported for spot instances."
func spotRefusal(err error) bool {
	return steperr.Code(err) == "UnsupportedOperation" && strings.Contains(strings.ToLower(err.Error()), "spot")
}

const spotSkip = "termination protection: %s is a Spot Instance, which EC2 does not allow to have termination protection (the other evidence settings apply)"

func (h *Preserve) terminationProtection(ctx context.Context, id string, spot bool, rec *workflow.Record, r *parts.Result) error {
	if spot {
		r.Skip(spotSkip, id)
		return nil
	}
	var on bool
	if rec != nil {
		on = rec.DisableAPITermination
	} else {
		var err error
		if on, err = terminationProtection(ctx, h.ec2, id); err != nil {
			return err
		}
	}
	if on {
		return nil
	}
	if _, err := h.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(id), DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)},
	}); err != nil {
		if spotRefusal(err) {
			// The record did not say (an older input): EC2 does.
			r.Skip(spotSkip, id)
			return nil
		}
		return ec2Error("turn termination protection on for "+id, id, err)
	}
	r.Changed(id, "ModifyInstanceAttribute", "termination protection (disableApiTermination) false -> true")
	return nil
}

func (h *Preserve) stopOnShutdown(ctx context.Context, id string, rec *workflow.Record, r *parts.Result) error {
	var cur string
	if rec != nil && rec.ShutdownBehavior != "" {
		cur = rec.ShutdownBehavior
	} else {
		var err error
		if cur, err = shutdownBehavior(ctx, h.ec2, id); err != nil {
			return err
		}
	}
	if cur == string(types.ShutdownBehaviorStop) {
		return nil
	}
	if err := setShutdownBehavior(ctx, h.ec2, id, string(types.ShutdownBehaviorStop)); err != nil {
		return err
	}
	r.Changed(id, "ModifyInstanceAttribute", fmt.Sprintf("shutdown behaviour (instanceInitiatedShutdownBehavior) %s -> stop", cur))
	return nil
}

func setShutdownBehavior(ctx context.Context, api EC2API, id, value string) error {
	if _, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(id), InstanceInitiatedShutdownBehavior: &types.AttributeValue{Value: aws.String(value)},
	}); err != nil {
		return ec2Error(fmt.Sprintf("set shutdown behaviour of %s to %s", id, value), id, err)
	}
	return nil
}

// keepVolumes turns delete-on-termination off, in one call, on every EBS volume that has it on.
func (h *Preserve) keepVolumes(ctx context.Context, id string, rec *workflow.Record, r *parts.Result) error {
	var ms []ebsMapping
	if rec != nil {
		for _, v := range rec.Volumes {
			ms = append(ms, ebsMapping{device: v.DeviceName, volume: v.VolumeID, deleteOnTermination: v.DeleteOnTermination})
		}
	} else {
		var err error
		if ms, err = blockDevices(ctx, h.ec2, id); err != nil {
			return err
		}
	}
	var todo []ebsMapping
	var devices []string
	for _, m := range ms {
		if m.deleteOnTermination {
			todo = append(todo, m)
			devices = append(devices, m.device)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if err := setDeleteOnTermination(ctx, h.ec2, id, devices, false); err != nil {
		return err
	}
	for _, m := range todo {
		r.Changed(m.volume, "ModifyInstanceAttribute", fmt.Sprintf("delete-on-termination true -> false (%s of %s)", m.device, id))
	}
	return nil
}

// detach takes the instance out of its Auto Scaling group, keeping the desired capacity: the group launches a
// replacement (the service keeps its capacity) and no longer health-checks, replaces or scales in the instance.
//
// It returns the membership it saw before detaching (nil when in no group), for the incident record.
func (h *Preserve) detach(ctx context.Context, id string, r *parts.Result) (*workflow.AutoScalingMembership, error) {
	m, err := membership(ctx, h.asg, id)
	if err != nil || m == nil {
		return nil, err
	}
	group, state := aws.ToString(m.AutoScalingGroupName), aws.ToString(m.LifecycleState)
	seen := &workflow.AutoScalingMembership{GroupName: group, LifecycleState: state, ProtectedFromScaleIn: aws.ToBool(m.ProtectedFromScaleIn)}
	return seen, h.detachFrom(ctx, id, group, state, r)
}

func (h *Preserve) detachFrom(ctx context.Context, id, group, state string, r *parts.Result) error {
	switch {
	case state == "Detaching" || state == "Detached":
		return nil // under way (a concurrent run, or the first attempt of this one)
	case strings.Contains(state, "Terminat"):
		// Nothing can take it back: its volumes are kept if "delete-on-termination" succeeded.
		return &steperr.AWSError{Op: "detach " + id + " from Auto Scaling group " + group,
			Err: fmt.Errorf("the group is already terminating the instance (lifecycle state %s)", state)}
	case strings.HasPrefix(state, "Pending") || state == "EnteringStandby":
		// DetachInstances accepts only InService and Standby instances; these settle by themselves.
		return &steperr.Transient{Op: "detach " + id + " from Auto Scaling group " + group,
			Err: fmt.Errorf("lifecycle state is %s; it can be detached once InService", state)}
	case state != "InService" && state != "Standby":
		// A warm pool instance (Warmed:*) or a state this step does not know: no retry makes it detachable.
		return &steperr.AWSError{Op: "detach " + id + " from Auto Scaling group " + group,
			Err: fmt.Errorf("lifecycle state is %s: Auto Scaling detaches only InService or Standby instances", state)}
	}
	if _, err := h.asg.DetachInstances(ctx, &autoscaling.DetachInstancesInput{
		AutoScalingGroupName: aws.String(group), InstanceIds: []string{id}, ShouldDecrementDesiredCapacity: aws.Bool(false),
	}); err != nil {
		return steperr.FromAWS("detach "+id+" from Auto Scaling group "+group, err)
	}
	r.Changed(group, "DetachInstances", fmt.Sprintf("detached %s (was %s) without decrementing the desired capacity: the group launches a replacement", id, state))
	return nil
}

// deregisterAll finds the instance's registrations in the target groups of its VPCs and takes each out, with
// those an older input recorded; it returns the registrations it found (before changing them).
func (h *Preserve) deregisterAll(ctx context.Context, id string, vpcs []string, recorded []workflow.TargetRegistration, r *parts.Result) ([]workflow.TargetRegistration, error) {
	found, err := targets.Find(ctx, h.elb, id, vpcs)
	if err != nil {
		return nil, err
	}
	todo := slices.Clone(found)
	for _, tg := range recorded {
		if !slices.ContainsFunc(todo, func(f workflow.TargetRegistration) bool {
			return f.TargetGroupARN == tg.TargetGroupARN && f.Port == tg.Port
		}) {
			todo = append(todo, tg)
		}
	}
	var errs []error
	for _, tg := range todo {
		if err := h.deregister(ctx, id, tg, r); err != nil {
			errs = append(errs, fmt.Errorf("target group %s port %d: %w", tg.TargetGroupARN, tg.Port, err))
		}
	}
	if len(errs) > 0 {
		return found, parts.Error("deregister targets", len(todo), errs)
	}
	return found, nil
}

// deregister takes the instance's registration on the recorded port out of the target group, if it is still there.
func (h *Preserve) deregister(ctx context.Context, id string, tg workflow.TargetRegistration, r *parts.Result) error {
	reg, err := registrationOf(ctx, h.elb, tg.TargetGroupARN, id, tg.Port)
	switch {
	case err != nil:
		return err
	case reg.groupGone:
		r.Skip("target group %s: no longer exists", tg.TargetGroupARN)
		return nil
	case !reg.registered:
		return nil // never was, already deregistered, or draining (deregistration under way)
	}
	if _, err := h.elb.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{
		TargetGroupArn: aws.String(tg.TargetGroupARN),
		Targets:        []elbtypes.TargetDescription{{Id: aws.String(id), Port: aws.Int32(tg.Port)}},
	}); err != nil {
		if steperr.Code(err) == "TargetGroupNotFound" {
			r.Skip("target group %s: no longer exists", tg.TargetGroupARN)
			return nil
		}
		return steperr.FromAWS(fmt.Sprintf("deregister %s:%d from %s", id, tg.Port, tg.TargetGroupARN), err)
	}
	r.Changed(tg.TargetGroupARN, "DeregisterTargets", fmt.Sprintf("deregistered %s port %d (was %s)", id, tg.Port, reg.state))
	return nil
}

// A target group ARN: arn:PARTITION:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID.
var targetGroupARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$`)

func checkTargetGroups(step string, tgs []workflow.TargetRegistration) error {
	for _, tg := range tgs {
		switch {
		case !targetGroupARNPattern.MatchString(tg.TargetGroupARN):
			return &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf("%q is not a target group ARN", tg.TargetGroupARN)}
		case tg.Port < 1 || tg.Port > 65535:
			return &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf("port %d of target group %s is not a port", tg.Port, tg.TargetGroupARN)}
		}
	}
	return nil
}

func checkEvidenceInput(in workflow.EvidenceInput) error {
	if err := parts.CheckInstance(PreserveStep, in.InstanceID, in.ExecutionName); err != nil {
		return err
	}
	switch in.Stage {
	case workflow.StageAll, workflow.StageFleet, workflow.StageSettings:
	default:
		return &steperr.InvalidInput{Step: PreserveStep, Reason: fmt.Sprintf("stage %q is not one of \"\" (every part), %q, %q",
			in.Stage, workflow.StageFleet, workflow.StageSettings)}
	}
	if rec := in.PreIsolation.Record.InstanceID; rec != "" && rec != in.InstanceID {
		return &steperr.InvalidInput{Step: PreserveStep, Reason: fmt.Sprintf("the pre-isolation record is of instance %q, not %s", rec, in.InstanceID)}
	}
	if in.Record != nil && in.Record.InstanceID != in.InstanceID {
		return &steperr.InvalidInput{Step: PreserveStep, Reason: fmt.Sprintf("the record is of instance %q, not %s", in.Record.InstanceID, in.InstanceID)}
	}
	return checkTargetGroups(PreserveStep, in.PreIsolation.TargetGroups)
}
