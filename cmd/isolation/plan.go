package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/ec2-isolation/ec2-isolation/internal/credentials"
	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
	"github.com/ec2-isolation/ec2-isolation/internal/targets"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// plan is every change `isolation run` would make, grouped by resource (issue 15, item 1): what "Validate and
// record" read, and the instance's Auto Scaling group and target groups, read as "Preserve evidence" reads them.
type plan struct {
	rec          workflow.Record
	autoScaling  string // the group's name, "" for none
	targetGroups []workflow.TargetRegistration
	// readErr says what could not be read (the plan then says "unknown" for it rather than "none").
	readErr []string
}

// readPlan reads what the plan needs beyond the record; it changes nothing.
func readPlan(ctx context.Context, acc account, rec workflow.Record) plan {
	p := plan{rec: rec}
	out, err := autoscaling.NewFromConfig(acc.cfg).DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{rec.InstanceID}})
	switch {
	case err != nil:
		p.readErr = append(p.readErr, "Auto Scaling group unknown ("+oneLine(err.Error(), 120)+")")
	case len(out.AutoScalingInstances) > 0:
		p.autoScaling = aws.ToString(out.AutoScalingInstances[0].AutoScalingGroupName)
	}
	regs, err := targets.Find(ctx, elb.NewFromConfig(acc.cfg), rec.InstanceID, rec.VpcIDs)
	if err != nil {
		p.readErr = append(p.readErr, "target groups unknown ("+oneLine(err.Error(), 120)+")")
	}
	p.targetGroups = regs
	return p
}

func printPlan(w io.Writer, acc account, p plan) {
	rec, n := p.rec, acc.names
	env := n.Env()
	ev, _ := evidence.SettingsFromEnv(func(k string) string { return env[k] })
	revoke, _ := credentials.SettingsFromEnv(func(k string) string { return env[k] })

	fmt.Fprintf(w, "Plan: isolate %s (%s) in account %s (%s), as %s\n", rec.InstanceID, rec.State, acc.id.Account, acc.cfg.Region, acc.id.ARN)
	if ep := aws.ToString(acc.cfg.BaseEndpoint); ep != "" {
		fmt.Fprintf(w, "  endpoint: %s\n", ep)
	}
	fmt.Fprintf(w, "  settings (from %s): group %q, profile %q, topic %s, bucket %s, connection tracking %s\n",
		acc.namesFrom, n.GroupName, n.ProfileName, n.TopicARN, n.IncidentBucket, n.Tracking)

	fmt.Fprintf(w, "\n  instance %s:\n", rec.InstanceID)
	if cur, ok := rec.Tags[n.TagKey]; ok && cur == n.TagValue {
		fmt.Fprintf(w, "    tag: %s=%s already set\n", n.TagKey, n.TagValue)
	} else {
		now := "none"
		if ok {
			now = fmt.Sprintf("%s=%s", n.TagKey, cur)
		}
		fmt.Fprintf(w, "    tag: %s -> %s=%s, set first (a deployed stack's rule starts its own execution too: both do only what is missing)\n", now, n.TagKey, n.TagValue)
	}
	profile := "none"
	if rec.ProfileAssociation != nil {
		profile = rec.ProfileAssociation.ProfileARN
	}
	fmt.Fprintf(w, "    instance profile: %s -> %q\n", profile, n.ProfileName)
	switch {
	case !ev.TerminationProtection:
		fmt.Fprintln(w, "    termination protection: left as it is (EnableTerminationProtection=false)")
	case rec.InstanceLifecycle == "spot":
		fmt.Fprintln(w, "    termination protection: none possible (a Spot Instance): skipped")
	default:
		fmt.Fprintf(w, "    termination protection: %s -> on\n", onOff(rec.DisableAPITermination))
	}
	if ev.StopOnShutdown {
		fmt.Fprintf(w, "    shutdown behaviour: %s -> stop\n", orDash(rec.ShutdownBehavior))
	} else {
		fmt.Fprintln(w, "    shutdown behaviour: left as it is (StopOnShutdown=false)")
	}

	fmt.Fprintln(w, "\n  network interfaces (each on its own VPC's isolation group, no rule in or out):")
	for _, e := range rec.NetworkInterfaces {
		fmt.Fprintf(w, "    %s in %s: %s -> only %q of %s\n", e.ID, e.VpcID, orNone(e.Groups), n.GroupName, e.VpcID)
	}
	fmt.Fprintf(w, "    isolation group %q in %s: used if it exists, else created (its default egress rule revoked)\n", n.GroupName, strings.Join(rec.VpcIDs, ", "))

	fmt.Fprintf(w, "\n  %s:\n", count(len(rec.Volumes), "volume", "volumes"))
	for _, v := range rec.Volumes {
		dot := "left as it is (KeepVolumes=false)"
		if ev.KeepVolumes {
			dot = onOff(v.DeleteOnTermination) + " -> off"
		}
		fmt.Fprintf(w, "    %s (%s): delete on termination %s; snapshotted\n", v.VolumeID, v.DeviceName, dot)
	}
	if len(rec.Volumes) > 0 {
		fmt.Fprintln(w, "    snapshots: one crash-consistent multi-volume set, tagged with the instance and the execution")
	}

	fmt.Fprintln(w, "\n  load balancing and Auto Scaling:")
	switch {
	case p.autoScaling == "":
		fmt.Fprintln(w, "    Auto Scaling group: none")
	case !ev.DetachAutoScaling:
		fmt.Fprintf(w, "    Auto Scaling group %s: stays attached (DetachFromAutoScaling=false)\n", p.autoScaling)
	default:
		fmt.Fprintf(w, "    Auto Scaling group %s: %s detached, desired capacity kept (the group launches a replacement)\n", p.autoScaling, rec.InstanceID)
	}
	if len(p.targetGroups) == 0 {
		fmt.Fprintln(w, "    target groups: none")
	}
	for _, t := range p.targetGroups {
		what := "deregistered"
		if !ev.DeregisterTargets {
			what = "stays registered (DeregisterFromTargetGroups=false)"
		}
		fmt.Fprintf(w, "    target group %s port %d: %s\n", t.TargetGroupARN, t.Port, what)
	}
	for _, e := range p.readErr {
		fmt.Fprintf(w, "    %s\n", e)
	}

	fmt.Fprintln(w, "\n  IAM:")
	switch {
	case rec.ProfileAssociation == nil:
		fmt.Fprintln(w, "    credentials: no instance profile, nothing to revoke")
	case !revoke.Revoke:
		fmt.Fprintln(w, "    credentials: not revoked (RevokeCredentials=false)")
	default:
		fmt.Fprintf(w, "    role of %s: inline policy %s added, denying every request made with this instance's credentials (roles matching RevocableRoles %q only)\n",
			profile, credentials.PolicyName(rec.InstanceID), revoke.RevocableRoles)
	}

	fmt.Fprintln(w, "\n  S3 and SNS:")
	fmt.Fprintf(w, "    s3://%s/%s: the incident record written (the pre-isolation state before any IAM change, then every change, the snapshots, the outcome)\n",
		n.IncidentBucket, workflow.IncidentKey(acc.id.Account, acc.cfg.Region, rec.InstanceID))
	fmt.Fprintf(w, "    notification published to %s\n", n.TopicARN)
}
