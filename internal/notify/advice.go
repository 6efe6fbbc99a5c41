package notify

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The first states of the two workflows: they change nothing.
const stateValidate = "Validate and record"

// Errors that no redrive fixes: the execution's input (the event) or the instance decided, and a redrive reuses
// both. (ConfigError is not one: a redrive after fixing the configuration succeeds.)
var inputErrors = map[string]bool{
	"InvalidEvent": true, "Superseded": true, "InstanceNotFound": true, "InstanceNotIsolatable": true,
	"NotIsolated": true, "RecordMissing": true,
}

// terminatedCause: the AWS answers for an instance that no longer exists or is going away.
var terminatedCause = regexp.MustCompile(`(?i)\b(terminated|shutting-down|InvalidInstanceID\.NotFound|instance i-[0-9a-f]+ not found)\b`)

// advice is what the notification tells a reader to do instead of the default redrive.
type advice struct {
	// noRedrive: a redrive would fail the same way; lines say what to do instead.
	noRedrive bool
	// lines are the sentences, most important first (plain text; values are made safe by the caller's v).
	lines []string
}

// adviseFor reads the failures: a refusal of the input, a superseded tag, an instance terminated mid-run, a
// missing pre-isolation state, a release waiting on an isolation. v renders one value (plain or a code span).
func adviseFor(in workflow.NotifyInput, v func(string) string) advice {
	var a advice
	if in.Outcome != workflow.OutcomeFailed {
		return a
	}
	key := "the isolation tag"
	if in.Record != nil && in.Record.Reason != "" {
		key = strings.TrimPrefix(in.Record.Reason, "tag ")
	}
	for _, f := range in.Failures {
		cause := causeText(f.Cause)
		first := f.State == stateValidate || f.State == stateRead
		switch {
		case f.Error == "Superseded":
			a.noRedrive = true
			if isRelease(in) {
				a.lines = append(a.lines, "Superseded: the instance no longer carries the release tag (the current tag decides): nothing was changed. "+
					"It stays isolated. To release it, set the tag to the release value again: a new release starts.")
			} else {
				a.lines = append(a.lines, "Superseded: the instance no longer carries "+v(key)+" (the current tag decides, and it was removed or "+
					"changed since the event): nothing was changed. To isolate it, set the tag again (a new execution starts), "+
					"or run: isolation run --instance "+v(instanceID(in)))
			}
		case f.Error == "InvalidEvent" && first:
			a.noRedrive = true
			a.lines = append(a.lines, "The event was refused, nothing was changed: a redrive reuses the same event and would be refused again.")
			if acct, stack := eventAccount(in), stackAccount(in); acct != "" && stack != "" && acct != stack {
				a.lines = append(a.lines, fmt.Sprintf("Account mismatch: the event is of account %s, but this stack acts in account %s only. "+
					"Isolate an instance of account %s with the stack deployed there.", v(acct), v(stack), v(acct)))
			} else if strings.Contains(cause, "account mismatch") {
				a.lines = append(a.lines, "Account mismatch: "+v(cause))
			}
			a.lines = append(a.lines, "To isolate the instance, tag it again (a new event), or run isolation run --instance <id> from a shell of the right account.")
		case (f.Error == "InstanceNotFound" || f.Error == "InstanceNotIsolatable" || terminatedCause.MatchString(cause)) && !first:
			a.noRedrive = true
			a.lines = append(a.lines, fmt.Sprintf("The instance was TERMINATED (or is terminating) during the run (%q failed: %s): "+
				"there is nothing left to contain. The snapshots, if taken, and the incident record are the evidence. A redrive cannot help.",
				v(f.State), v(cause)))
		case f.Error == "InstanceNotFound" || f.Error == "InstanceNotIsolatable":
			a.noRedrive = true
			switch {
			case strings.Contains(cause, "terminated") || strings.Contains(cause, "shutting-down"):
				a.lines = append(a.lines, "The instance is terminated (or terminating): there is nothing to contain, nothing was changed.")
			case f.Error == "InstanceNotFound":
				a.lines = append(a.lines, "No such instance in this stack's account and region: nothing was changed, and a redrive would not find it either. "+
					"Check the instance id, the account and the region of the event.")
			default:
				a.lines = append(a.lines, "The instance cannot be acted on ("+v(cause)+"): nothing was changed, and a redrive would refuse it again.")
			}
		case f.Error == "RecordMissing" && isRelease(in):
			a.noRedrive = true
			a.lines = append(a.lines, "The pre-isolation state of this incident is unknown ("+v(cause)+"). Restore the instance BY HAND: "+
				"its security groups, instance profile, termination protection, shutdown behaviour and Auto Scaling membership. "+
				"What is known: every version of the incident record, and each isolation execution's history (the output of "+
				"\"Validate and record\" is the instance as that execution found it).")
		case f.Error == "IsolationInProgress" && f.State == "Record release":
			a.noRedrive = true
			a.lines = append(a.lines, "An isolation of the instance ran while this release restored it ("+v(cause)+"): the instance may be "+
				"isolated again, so the incident stays open. A redrive would not restore again: once that isolation has ended, "+
				"set the release tag again (a new release waits for it and restores).")
		case f.Error == "IsolationInProgress":
			a.lines = append(a.lines, "An isolation of the instance was still running (or never recorded its outcome) while this release "+
				"waited for it. Once it has ended, redrive this execution or set the release tag again.")
		case inputErrors[f.Error] && first:
			a.noRedrive = true
		}
	}
	return a
}

// eventAccount is the account of the execution's event.
func eventAccount(in workflow.NotifyInput) string {
	if in.Event == nil {
		return ""
	}
	return in.Event.Account
}

// stackAccount is the account the state machine runs in (from its execution ARN).
func stackAccount(in workflow.NotifyInput) string {
	m := executionARNPattern.FindStringSubmatch(in.ExecutionARN)
	if m == nil {
		return ""
	}
	parts := strings.Split(in.ExecutionARN, ":")
	return parts[4]
}

// notContained: the final read-back failed the execution because the instance is still open.
func notContained(in workflow.NotifyInput) bool {
	if isRelease(in) || in.Outcome != workflow.OutcomeFailed {
		return false
	}
	for _, f := range in.Failures {
		if f.Error == "NotContained" {
			return true
		}
	}
	return false
}

// refusedAtStart: every failure is the first state refusing its input: nothing was changed.
func refusedAtStart(in workflow.NotifyInput) bool {
	if in.Outcome != workflow.OutcomeFailed || len(in.Failures) == 0 {
		return false
	}
	for _, f := range in.Failures {
		if (f.State != stateValidate && f.State != stateRead) || !inputErrors[f.Error] {
			return false
		}
	}
	return true
}

// readBackLines is what the final read-back saw: each ENI and its groups now, each isolation group's rules, the
// profile associations, and what was open and contained again. Nil without a read-back.
func readBackLines(in workflow.NotifyInput, max int, v func(string) string) []string {
	r := in.Verify
	if r == nil {
		return nil
	}
	var out []string
	p := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	verdict := "CONTAINED"
	if !r.Contained {
		verdict = "NOT CONTAINED"
	}
	readBacks := fmt.Sprintf("%d read-backs", r.Rounds)
	if r.Rounds == 1 {
		readBacks = "1 read-back"
	}
	p("  Read back at the end (%s): %s", readBacks, verdict)
	for i, n := range r.NetworkInterfaces {
		if i == max {
			p("    … and %d more network interfaces", len(r.NetworkInterfaces)-max)
			break
		}
		var gs []string
		for _, g := range n.Groups {
			gs = append(gs, v(g))
		}
		state := "only its VPC's isolation group"
		if len(n.Groups) != 1 || n.Groups[0] != n.IsolationGroupID {
			state = "NOT only the isolation group " + v(n.IsolationGroupID)
		}
		p("    %s in %s carries %s: %s", v(n.ID), v(n.VpcID), strings.Join(gs, ", "), state)
	}
	for _, g := range r.Groups {
		rules := "no rule"
		if g.Ingress+g.Egress > 0 {
			rules = fmt.Sprintf("%d inbound and %d outbound rule(s): OPEN", g.Ingress, g.Egress)
		}
		p("    isolation group %s of %s: %s", v(g.GroupID), v(g.VpcID), rules)
	}
	if len(r.Associations) == 0 {
		p("    instance profile: none")
	}
	for _, a := range r.Associations {
		p("    instance profile %s: %s", v(a.ProfileARN), associationState(a.State))
	}
	for _, n := range r.Added {
		p("    attached since the start: %s in %s (its groups before: %s), contained", v(n.ID), v(n.VpcID), strings.Join(n.Groups, ", "))
	}
	if len(r.Open) > 0 {
		p("    Was still open at the first read-back and contained again:")
		for _, o := range r.Open {
			p("      - %s", v(o))
		}
	}
	if r.Superseded != "" {
		p("    The tag changed during the run: %s", v(r.Superseded))
	}
	return out
}

// associationState says whether an association gives the instance the profile's credentials: only associated
// (or associating, about to) does; disassociating is on its way out.
func associationState(state string) string {
	switch state {
	case "associated":
		return "attached (associated)"
	case "associating":
		return "attaching (associating)"
	case "disassociating":
		return "NOT attached (disassociating)"
	case "disassociated":
		return "NOT attached (disassociated)"
	}
	return "state " + state
}

// foreignLines names, per VPC, a group that has the isolation group's name but is not ec2-isolation's.
func foreignLines(in workflow.NotifyInput, v func(string) string) []string {
	var groups []workflow.VpcGroups
	if in.Groups != nil {
		groups = in.Groups.Groups
	} else if in.Record != nil {
		groups = in.Record.IsolationGroups
	}
	var out []string
	for _, g := range groups {
		if g.ForeignGroupID == "" {
			continue
		}
		used := "no group of ours could be used there"
		if g.IsolationGroupID != "" {
			used = "ec2-isolation's own group " + v(g.IsolationGroupID) + " (a derived name, tagged as managed) was used instead"
		}
		out = append(out, fmt.Sprintf("  Foreign group: %s in %s has the isolation group's name but is not ec2-isolation's; it was left alone, and %s.",
			v(g.ForeignGroupID), v(g.VpcID), used))
	}
	return out
}

// spotLines explains evidence settings a Spot Instance cannot have.
func spotLines(in workflow.NotifyInput) []string {
	if in.Record == nil || in.Record.InstanceLifecycle != "spot" || isRelease(in) {
		return nil
	}
	return []string{"  Spot Instance: EC2 refuses termination protection for Spot Instances; it was skipped (see the evidence section) and everything else was done."}
}

// missingLines warn that the incident holds no genuine pre-isolation state.
func missingLines(in workflow.NotifyInput, v func(string) string) []string {
	lines := notOwnedLines(in, v)
	if in.Incident == nil || in.Incident.PreIsolation.Missing == "" || isRelease(in) {
		return lines
	}
	return append(lines,
		"WARNING: the pre-isolation state is unknown: "+v(in.Incident.PreIsolation.Missing)+".",
		"A release will be refused until an execution that read the instance before its isolation records it; otherwise restore it by hand.",
	)
}

// notOwnedLines name the ENIs left open because an AWS service manages them (issue 13 item 4).
func notOwnedLines(in workflow.NotifyInput, v func(string) string) []string {
	var list []workflow.NotOwnedInterface
	switch {
	case in.Verify != nil && len(in.Verify.NotOwned) > 0:
		list = in.Verify.NotOwned
	case in.Apply != nil:
		list = in.Apply.NotOwned
	}
	var lines []string
	for _, n := range list {
		lines = append(lines, fmt.Sprintf("STILL OPEN: network interface %s (%s, groups %s) is %s; contain its workload at its service (stop the ECS task, delete the Pod) or stop the instance.",
			v(n.ID), v(n.VpcID), v(strings.Join(n.Groups, ", ")), v(n.Reason)))
	}
	return lines
}

// wrapText wraps a sentence at about 110 columns for the plain-text email, each line starting with indent.
func wrapText(s, indent string) string {
	var b strings.Builder
	line := indent
	for _, w := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(w) > 110 {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	b.WriteString(line)
	return b.String()
}
