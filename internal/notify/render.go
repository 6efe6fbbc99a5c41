package notify

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Limits that keep a message readable and well under SNS's 256 KB.
const (
	maxItems     = 50   // ENIs, snapshots… listed per section in the email
	maxChatItems = 15   // … and in chat
	maxValue     = 200  // one identifier or name
	maxCause     = 4000 // an error's cause in the email
	maxChatCause = 500  // … and in chat
)

// message is what Handle publishes.
type message struct {
	subject string
	// body is the MessageStructure json document: one body per protocol.
	body string
}

// chatbotNotification is an AWS Chatbot (Amazon Q Developer in chat applications) custom notification, as
// documented in https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html: version "1.0" and
// source "custom" are required, content.description is what the channel shows.
type chatbotNotification struct {
	Version  string          `json:"version"`
	Source   string          `json:"source"`
	ID       string          `json:"id,omitempty"`
	Content  chatbotContent  `json:"content"`
	Metadata chatbotMetadata `json:"metadata"`
}

type chatbotContent struct {
	TextType    string   `json:"textType"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	NextSteps   []string `json:"nextSteps,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
}

type chatbotMetadata struct {
	// ThreadID groups an instance's notifications (isolation, failure, redrive) in one chat thread.
	ThreadID          string            `json:"threadId,omitempty"`
	Summary           string            `json:"summary,omitempty"`
	EventType         string            `json:"eventType,omitempty"`
	RelatedResources  []string          `json:"relatedResources,omitempty"`
	AdditionalContext map[string]string `json:"additionalContext,omitempty"`
}

var (
	instanceIDPattern   = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	executionARNPattern = regexp.MustCompile(`^arn:(aws[a-z-]*):states:([a-z0-9-]+):[0-9]{12}:execution:[A-Za-z0-9_.-]{1,80}:[A-Za-z0-9_.-]{1,80}$`)
)

// unknownInstance stands for an instance id that does not look like one in titles and subjects.
const unknownInstance = "an instance"

// render builds the subject and the per-protocol bodies of the notification.
func render(in workflow.NotifyInput) (message, error) {
	id := instanceID(in)
	shownID := unknownInstance // an id that is not an instance id is shown only inside code spans
	if instanceIDPattern.MatchString(id) {
		shownID = id
	}
	var subj string
	switch {
	case isRelease(in) && in.Outcome == workflow.OutcomeSucceeded:
		subj = "EC2 release SUCCEEDED: " + shownID + " is released"
	case isRelease(in):
		subj = fmt.Sprintf("EC2 release FAILED for %s at %s", shownID, in.Failures[0].State)
	case isEvidence(in):
		subj = fmt.Sprintf("EC2 evidence settings FAILED for %s at %s (containment not affected)", shownID, in.Failures[0].State)
	case in.Outcome == workflow.OutcomeSucceeded:
		subj = "EC2 isolation SUCCEEDED: " + shownID + " is isolated"
	case notContained(in):
		subj = fmt.Sprintf("EC2 isolation FAILED: %s is NOT contained", shownID)
	default:
		subj = fmt.Sprintf("EC2 isolation FAILED for %s at %s", shownID, in.Failures[0].State)
	}
	chat, err := json.Marshal(chatbot(in, shownID))
	if err != nil {
		return message{}, err
	}
	body, err := json.Marshal(map[string]string{
		"default": string(chat),
		"https":   string(chat),
		"email":   email(in),
	})
	if err != nil {
		return message{}, err
	}
	return message{subject: subject(subj), body: string(body)}, nil
}

// redrive says how to redrive the execution: the CLI command and, in the aws partition, the console page.
func redrive(in workflow.NotifyInput) (cli, console string) {
	if in.RerunCommand != "" {
		return in.RerunCommand, ""
	}
	m := executionARNPattern.FindStringSubmatch(in.ExecutionARN)
	if m == nil {
		name := plain(in.ExecutionName, maxValue)
		if name == "" {
			name = "this execution"
		}
		return fmt.Sprintf("aws stepfunctions redrive-execution --execution-arn <ARN of %s>", name), ""
	}
	cli = "aws stepfunctions redrive-execution --execution-arn " + in.ExecutionARN
	if m[1] == "aws" {
		console = fmt.Sprintf("https://%s.console.aws.amazon.com/states/home?region=%s#/v2/executions/details/%s", m[2], m[2], in.ExecutionARN)
	}
	return cli, console
}

// email is the plain-text summary for email subscriptions.
func email(in workflow.NotifyInput) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	v := func(s string) string { return plain(s, maxValue) }
	id := v(instanceID(in))

	var states []string
	for _, f := range in.Failures {
		states = append(states, fmt.Sprintf("%q", v(f.State)))
	}
	switch {
	case isRelease(in) && in.Outcome == workflow.OutcomeSucceeded:
		p("EC2 instance %s has been RELEASED from isolation: its pre-isolation state is restored.", id)
	case isRelease(in):
		p("Release of EC2 instance %s FAILED at %s.", id, strings.Join(states, " and "))
		p("")
		if refused(in) {
			p("The release was refused: nothing was changed.")
		} else {
			p("WARNING: the instance may still be isolated, or only partly restored (see what did succeed).")
		}
	case isEvidence(in):
		p("The evidence settings of EC2 instance %s, queued by isolation execution %s, FAILED at %s.", id, v(in.ExecutionName), strings.Join(states, " and "))
		p("")
		p("Containment is not affected. Termination protection, shutdown behaviour stop or delete-on-termination off may not be in effect: redrive this evidence execution once the cause is fixed.")
	case in.Outcome == workflow.OutcomeSucceeded:
		p("EC2 instance %s has been ISOLATED.", id)
	default:
		p("Isolation of EC2 instance %s FAILED at %s.", id, strings.Join(states, " and "))
		switch {
		case notContained(in):
			p("")
			p("WARNING: the instance is NOT contained: the final read-back still found it open after containing it again.")
			p("See WHAT FAILED for what is open; contain it by hand (e.g. a network ACL, or stop the instance).")
		case refusedAtStart(in):
			p("")
			p("The isolation was refused: nothing was changed.")
		case in.Apply == nil && (in.Verify == nil || !in.Verify.Contained):
			p("")
			p("WARNING: network containment was NOT confirmed. The instance may still be reachable.")
		}
	}
	adv := adviseFor(in, v)
	if len(adv.lines) > 0 {
		p("")
		p("WHAT TO DO")
		for _, l := range adv.lines {
			p("%s", wrapText(l, "  "))
		}
	}
	if m := missingLines(in, v); len(m) > 0 {
		p("")
		for _, l := range m {
			p("%s", wrapText(l, ""))
		}
	}
	p("")
	p("Execution:  %s", v(in.ExecutionName))
	if in.ExecutionARN != "" {
		p("            %s", v(in.ExecutionARN))
	}
	if r := in.Record; r != nil {
		p("Instance:   %s (%s)", v(r.InstanceID), v(r.InstanceARN))
		p("Account:    %s, region %s, zone %s", v(r.Account), v(r.Region), v(r.AvailabilityZone))
		p("Reason:     %s", v(r.Reason))
		if rc := r.Reconcile; rc != nil {
			p("Started by: the reconciler, not the tag event: %s", v(rc.Reason))
			for _, o := range rc.Open {
				p("            open: %s", v(o))
			}
		}
	}

	if in.Outcome == workflow.OutcomeFailed {
		p("")
		p("WHAT FAILED")
		for _, f := range in.Failures {
			p("  State: %s", v(f.State))
			p("  Error: %s", v(f.Error))
			p("  Cause:")
			p("%s", block(causeText(f.Cause), "    ", maxCause))
		}
	}

	p("")
	if in.Outcome == workflow.OutcomeSucceeded {
		p("WHAT WAS DONE")
	} else {
		p("WHAT DID SUCCEED")
	}
	done := doneLines(in, maxItems, v)
	if len(done) == 0 {
		p("  Nothing: the execution failed before changing anything.")
	}
	for _, l := range done {
		p("%s", l)
	}
	if in.Apply != nil && !isRelease(in) {
		p("")
		p("Note: connections the instance's previous security groups tracked are not cut by a group change,")
		if untrackFirst(in) {
			p("except that the allow-all group applied first turned them untracked so that the isolation group")
			p("drops them. ICMP, and flows through a Network or Gateway Load Balancer, a NAT gateway or a transit")
			p("gateway, stay tracked.")
		} else {
			p("e.g. an open SSH session or a reverse shell (see the stack parameter ConnectionTracking=untrack-first).")
		}
	}

	if in.Outcome == workflow.OutcomeFailed && !refused(in) && !adv.noRedrive {
		cli, console := redrive(in)
		p("")
		p("HOW TO RESUME")
		switch {
		case in.RerunCommand != "":
			p("This execution ran on a responder's machine: there is no Step Functions execution to redrive. Fix the")
			p("cause, then run the command again; every step is idempotent and does only what is missing.")
			p("  %s", cli)
		case console != "":
			p("Fix the cause, then redrive the execution. It restarts at the failed state; every step is idempotent")
			p("and does only what is missing.")
			p("  %s", cli)
			p("or in the Step Functions console: %s -> Redrive", console)
		default:
			p("Fix the cause, then redrive the execution. It restarts at the failed state; every step is idempotent")
			p("and does only what is missing.")
			p("  %s", cli)
			p("or in the Step Functions console: the execution -> Redrive")
		}
	}

	switch {
	case isRelease(in) && in.Incident != nil:
		p("")
		p("PRE-ISOLATION STATE (what this release restores)")
		rec, _ := json.MarshalIndent(in.Incident.PreIsolation.Record, "  ", "  ")
		p("  %s", truncate(string(rec), 20000))
	case !isRelease(in) && in.Incident != nil && in.Incident.Key != "":
		p("")
		p("PRE-ISOLATION STATE (what a release restores: the incident's)")
		if in.Incident.PreIsolation.Missing != "" {
			p("  unknown: %s", v(in.Incident.PreIsolation.Missing))
		} else {
			rec, _ := json.MarshalIndent(in.Incident.PreIsolation.Record, "  ", "  ")
			p("  %s", truncate(string(rec), 20000))
		}
	case !isRelease(in) && in.Record != nil:
		p("")
		p("THE INSTANCE AS \"Validate and record\" FOUND IT")
		rec, _ := json.MarshalIndent(in.Record, "  ", "  ")
		p("  %s", truncate(string(rec), 20000))
	}
	return b.String()
}

// refused: the release stopped at "Read incident record" (never isolated, already released, record missing),
// before any change. A redrive would refuse again: the notification says what to do instead.
func refused(in workflow.NotifyInput) bool {
	if !isRelease(in) || in.Outcome != workflow.OutcomeFailed {
		return false
	}
	for _, f := range in.Failures {
		if f.State != stateRead {
			return false
		}
	}
	return true
}

// stateRead is the release's first state, which changes nothing.
const stateRead = "Read incident record"

func untrackFirst(in workflow.NotifyInput) bool {
	if in.Groups == nil {
		return false
	}
	for _, g := range in.Groups.Groups {
		if g.UntrackGroupID != "" {
			return true
		}
	}
	return false
}

// doneLines lists what the execution's steps did, one section per step that produced an output. v renders
// one value (plain text for the email, a code span for chat); at most max items per section.
func doneLines(in workflow.NotifyInput, max int, v func(string) string) []string {
	var out []string
	p := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	list := func(ids []string) string {
		if len(ids) == 0 {
			return "(none)"
		}
		var s []string
		for _, id := range ids {
			s = append(s, v(id))
		}
		return strings.Join(s, ", ")
	}
	more := func(n int) {
		if n > max {
			p("    … and %d more", n-max)
		}
	}

	if r := in.Incident; r != nil && r.Key != "" {
		note := ""
		switch {
		case isRelease(in):
			note = fmt.Sprintf(", incident opened %s", r.OpenedAt.UTC().Format(time.RFC3339))
		case r.Opened:
			note = ", incident opened by this execution"
		default:
			note = fmt.Sprintf(", joined the incident opened %s", r.OpenedAt.UTC().Format(time.RFC3339))
		}
		version := ""
		if r.VersionID != "" {
			version = " version " + v(r.VersionID)
		}
		p("  Incident record: %s%s%s", v("s3://"+r.Bucket+"/"+r.Key), version, note)
	}
	out = append(out, readBackLines(in, max, v)...)
	if a := in.Apply; a != nil {
		p("  Network containment (Apply isolation security group):")
		for i, n := range a.NetworkInterfaces {
			if i == max {
				break
			}
			if !n.Changed {
				// What a redrive or a second execution found: its record's groups are not what the ENI carried.
				p("    %s in %s: already on %s, not changed", v(n.ID), v(n.VpcID), list(n.After))
				continue
			}
			p("    %s in %s: %s -> %s", v(n.ID), v(n.VpcID), list(n.Before), list(n.After))
		}
		more(len(a.NetworkInterfaces))
	}
	out = append(out, foreignLines(in, v)...)
	out = append(out, spotLines(in)...)
	if g := in.Groups; g != nil {
		p("  Isolation security groups (Ensure isolation security group):")
		for i, vg := range g.Groups {
			if i == max {
				break
			}
			how := "existing"
			if vg.Created {
				how = "created by this execution"
			}
			line := fmt.Sprintf("    %s: %s (%s)", v(vg.VpcID), v(vg.IsolationGroupID), how)
			if vg.UntrackGroupID != "" {
				line += ", allow-all group " + v(vg.UntrackGroupID) + " applied first"
			}
			p("%s", line)
		}
		more(len(g.Groups))
	}
	if d := in.Disassociate; d != nil {
		if len(d.Disassociated) == 0 {
			p("  Instance profile: none was associated, nothing removed.")
		}
		for _, a := range d.Disassociated {
			p("  Instance profile removed: %s (association %s)", v(a.ProfileARN), v(a.AssociationID))
		}
	}
	if a := in.Attach; a != nil {
		note := ""
		if !a.Changed {
			note = ", already attached"
		}
		p("  Isolation instance profile attached: %s (association %s%s)", v(a.ProfileARN), v(a.AssociationID), note)
	}
	revocation := func(title string, r *workflow.RevokeOutput, done, already string) {
		if r == nil {
			return
		}
		p("  %s:", title)
		for _, role := range r.Roles {
			how := done
			if !role.Changed {
				how = already
			}
			p("    role %s: inline policy %s %s", v(role.RoleName), v(role.PolicyName), how)
			for _, ch := range r.Changes {
				if ch.Resource == role.RoleName && !ch.At.IsZero() {
					// Issue 13: IAM is eventually consistent; say when, not that it is in force.
					p("      requested at %s: IAM applies it everywhere within seconds to minutes", ch.At.UTC().Format(time.RFC3339))
				}
			}
			if role.Until != nil && role.DeniedBefore != nil {
				// Issue 13: credentials copied before the release stay valid for hours; the policy outlives the release.
				p("      it still denies the instance's credentials issued before %s (any copied before the release), "+
					"and stays until %s, when none of them can still be valid (the longest a temporary credential lives: 36 hours); "+
					"then `isolation cleanup` or the reconciler deletes it, or: aws iam delete-role-policy --role-name %s --policy-name %s",
					role.DeniedBefore.UTC().Format(time.RFC3339Nano), role.Until.UTC().Format(time.RFC3339), v(role.RoleName), v(role.PolicyName))
			}
		}
		for _, s := range r.Skipped {
			p("    skipped: %s", v(s))
		}
		if len(r.Roles) == 0 && len(r.Skipped) == 0 {
			p("    nothing to do")
		}
	}
	changes := func(title string, c *workflow.StepChanges) {
		if c == nil {
			return
		}
		p("  %s:", title)
		for i, ch := range c.Changes {
			if i == max {
				break
			}
			line := fmt.Sprintf("    %s %s", v(ch.Action), v(ch.Resource))
			if ch.Detail != "" {
				line += ": " + v(ch.Detail)
			}
			p("%s", line)
		}
		more(len(c.Changes))
		for _, s := range c.Skipped {
			p("    skipped: %s", v(s))
		}
		if len(c.Changes) == 0 && len(c.Skipped) == 0 {
			p("    nothing to change: already as wanted")
		}
	}
	revocation("Credentials revoked (Revoke credentials)", in.Revoke, "denies the instance's credentials", "already in place")
	changes("Evidence preserved (Preserve evidence)", in.Preserve)
	changes("Security groups restored (Restore security groups)", in.RestoreGroups)
	changes("Instance profile restored (Restore instance profile)", in.RestoreProfile)
	revocation("Credential revocation lifted (Lift credential revocation)", in.LiftRevocation, "replaced: fresh credentials work", "already replaced")
	changes("Evidence settings restored (Restore evidence settings)", in.RestoreEvidence)
	if s := in.Snapshot; s != nil {
		note := ""
		if !s.Created && len(s.Snapshots) > 0 {
			// Not created now, yet there: an earlier run of this execution made them (an instance without EBS
			// volumes has none, and no earlier run either).
			note = " (created by an earlier run of this execution)"
		}
		p("  Snapshots%s:", note)
		for i, sn := range s.Snapshots {
			if i == max {
				break
			}
			state := ""
			if sn.State != "" {
				state = " (" + v(sn.State) + ")"
			}
			p("    %s of %s%s", v(sn.SnapshotID), v(sn.VolumeID), state)
		}
		if len(s.Snapshots) == 0 {
			p("    (none: the instance has no EBS volume)")
		}
		more(len(s.Snapshots))
	}
	return out
}

// chatbot is the custom notification for chat channels.
func chatbot(in workflow.NotifyInput, shownID string) chatbotNotification {
	c := func(s string) string { return code(s, maxValue) }
	id := instanceID(in)
	var d []string
	p := func(format string, a ...any) { d = append(d, fmt.Sprintf(format, a...)) }

	n := chatbotNotification{Version: "1.0", Source: "custom"}
	n.ID = plain(fmt.Sprintf("%s:%s:%d", in.ExecutionName, in.Outcome, in.RedriveCount), maxValue)
	n.Content.TextType = "client-markdown"
	n.Metadata = chatbotMetadata{
		ThreadID: "ec2-isolation-" + shownID,
		AdditionalContext: map[string]string{
			"instanceId":    plain(id, maxValue),
			"executionName": plain(in.ExecutionName, maxValue),
			"outcome":       in.Outcome,
		},
	}
	if shownID == unknownInstance {
		n.Metadata.ThreadID = "ec2-isolation"
	}
	if in.Record != nil && in.Record.InstanceARN != "" {
		n.Metadata.RelatedResources = append(n.Metadata.RelatedResources, plain(in.Record.InstanceARN, maxValue))
	} else if in.Incident != nil && in.Incident.PreIsolation.Record.InstanceARN != "" {
		n.Metadata.RelatedResources = append(n.Metadata.RelatedResources, plain(in.Incident.PreIsolation.Record.InstanceARN, maxValue))
	}
	if executionARNPattern.MatchString(in.ExecutionARN) {
		n.Metadata.RelatedResources = append(n.Metadata.RelatedResources, in.ExecutionARN)
	}

	switch {
	case isRelease(in) && in.Outcome == workflow.OutcomeSucceeded:
		n.Content.Title = ":unlock: " + chatText("EC2 instance "+shownID+" released", 250)
		n.Metadata.EventType = "EC2ReleaseSucceeded"
		n.Metadata.Summary = chatText("EC2 instance "+shownID+" released from isolation", 250)
		p("*Instance* %s released from isolation by execution %s: its pre-isolation state is restored.", c(id), c(in.ExecutionName))
	case isRelease(in):
		f := in.Failures[0]
		n.Content.Title = ":rotating_light: " + chatText("EC2 release FAILED for "+shownID+" at "+f.State, 250)
		n.Metadata.EventType = "EC2ReleaseFailed"
		n.Metadata.Summary = chatText("EC2 release failed for "+shownID+" at "+f.State, 250)
		p("*Release of* %s *failed* (execution %s).", c(id), c(in.ExecutionName))
		if refused(in) {
			p("The release was refused: nothing was changed.")
		} else {
			p(":warning: *The instance may still be isolated, or only partly restored.*")
		}
		for _, f := range in.Failures {
			p("*Failed state:* %s *error:* %s", c(f.State), c(f.Error))
			p("*Cause:* %s", code(causeText(f.Cause), maxChatCause))
		}
		if !refused(in) && !adviseFor(in, c).noRedrive {
			cli, console := redrive(in)
			n.Content.NextSteps = append(n.Content.NextSteps, resumeStep(in, cli))
			if console != "" {
				n.Content.NextSteps = append(n.Content.NextSteps, "Or in the Step Functions console: "+console)
			}
		}
	case isEvidence(in):
		f := in.Failures[0]
		n.Content.Title = ":warning: " + chatText("EC2 evidence settings FAILED for "+shownID+" at "+f.State, 250)
		n.Metadata.EventType = "EC2EvidenceFailed"
		n.Metadata.Summary = chatText("EC2 evidence settings failed for "+shownID+" (containment not affected)", 250)
		p("*Evidence settings of* %s *failed* (queued by isolation %s); containment is not affected.", c(id), c(in.ExecutionName))
		for _, f := range in.Failures {
			p("*Failed state:* %s *error:* %s", c(f.State), c(f.Error))
			p("*Cause:* %s", code(causeText(f.Cause), maxChatCause))
		}
		cli, console := redrive(in)
		n.Content.NextSteps = append(n.Content.NextSteps, resumeStep(in, cli))
		if console != "" {
			n.Content.NextSteps = append(n.Content.NextSteps, "Or in the Step Functions console: "+console)
		}
	case in.Outcome == workflow.OutcomeSucceeded:
		n.Content.Title = ":white_check_mark: " + chatText("EC2 instance "+shownID+" isolated", 250)
		n.Metadata.EventType = "EC2IsolationSucceeded"
		n.Metadata.Summary = chatText("EC2 instance "+shownID+" isolated", 250)
		p("*Instance* %s isolated by execution %s.", c(id), c(in.ExecutionName))
	default:
		f := in.Failures[0]
		n.Content.Title = ":rotating_light: " + chatText("EC2 isolation FAILED for "+shownID+" at "+f.State, 250)
		n.Metadata.EventType = "EC2IsolationFailed"
		n.Metadata.Summary = chatText("EC2 isolation failed for "+shownID+" at "+f.State, 250)
		p("*Isolation of* %s *failed* (execution %s).", c(id), c(in.ExecutionName))
		switch {
		case notContained(in):
			n.Content.Title = ":rotating_light: " + chatText("EC2 isolation FAILED: "+shownID+" is NOT contained", 250)
			p(":warning: *The instance is NOT contained*: the final read-back still found it open after containing it again.")
		case refusedAtStart(in):
			p("The isolation was refused: nothing was changed.")
		case in.Apply == nil && (in.Verify == nil || !in.Verify.Contained):
			p(":warning: *Network containment was NOT confirmed*: the instance may still be reachable.")
		}
		for _, f := range in.Failures {
			p("*Failed state:* %s *error:* %s", c(f.State), c(f.Error))
			p("*Cause:* %s", code(causeText(f.Cause), maxChatCause))
		}
		if !adviseFor(in, c).noRedrive {
			cli, console := redrive(in)
			n.Content.NextSteps = append(n.Content.NextSteps, resumeStep(in, cli))
			if console != "" {
				n.Content.NextSteps = append(n.Content.NextSteps, "Or in the Step Functions console: "+console)
			}
		}
	}
	adv := adviseFor(in, c)
	n.Content.NextSteps = append(adv.lines, n.Content.NextSteps...)
	for _, l := range missingLines(in, c) {
		p(":warning: %s", l)
	}
	if in.Record != nil {
		p("*Reason:* %s", c(in.Record.Reason))
		if rc := in.Record.Reconcile; rc != nil {
			p("*Started by the reconciler:* %s", c(rc.Reason))
		}
	}
	if done := doneLines(in, maxChatItems, c); len(done) > 0 {
		if in.Outcome == workflow.OutcomeSucceeded {
			p("*Done:*")
		} else {
			p("*What did succeed:*")
		}
		for _, l := range done {
			// Sections as they are, their items as bullets.
			if item, ok := strings.CutPrefix(l, "    "); ok {
				l = "    • " + strings.Replace(item, " -> ", " → ", 1)
			}
			p("%s", strings.TrimPrefix(l, "  "))
		}
	}
	switch {
	case in.Outcome != workflow.OutcomeSucceeded:
	case isRelease(in):
		n.Content.NextSteps = append(n.Content.NextSteps,
			"The snapshots and the incident record (both executions) are kept.")
	default:
		n.Content.NextSteps = append(n.Content.NextSteps,
			"Investigate from the snapshots; the full pre-isolation record is in the incident record, the email notification and the execution's history.")
	}
	n.Content.Description = strings.Join(d, "\n")
	n.Content.Keywords = []string{"ec2-isolation", in.Outcome}
	if shownID != unknownInstance {
		n.Content.Keywords = append(n.Content.Keywords, shownID)
	}
	return n
}

// resumeStep is the chat's next step after a failure: redrive, or for a local run, run the command again.
func resumeStep(in workflow.NotifyInput, cli string) string {
	if in.RerunCommand != "" {
		return "Fix the cause, then run the command again (it ran on a responder's machine; every step is idempotent): " + code(cli, 400)
	}
	return "Fix the cause, then redrive the execution (it restarts at the failed state; every step is idempotent): " + code(cli, 400)
}
