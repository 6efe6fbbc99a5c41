package incident

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The rule of the pre-isolation state (issue 12, case 1). The pre-isolation state is an observation made before
// any change: Validate's record, read at RecordedAt. An observation that already shows an isolation artifact
// (Record.Artifacts; for records of earlier versions, an ENI on a managed isolation group) is not one: an
// incident opened with it holds it only as a placeholder, with PreIsolationState.Missing saying why. When
// several executions race to open or join the incident, the earliest genuine observation wins: a genuine
// observation replaces a placeholder, an earlier genuine one replaces a later one, a later one never replaces an
// earlier one. The store's conditional writes make the decision on the record as it is when written.

// genuine: the record is an observation of the instance before any isolation change.
func genuine(rec workflow.Record) bool { return rec.Genuine() && !LooksIsolated(rec) }

// artifactsOf names what makes rec not genuine.
func artifactsOf(rec workflow.Record) []string {
	if len(rec.Artifacts) > 0 {
		return rec.Artifacts
	}
	if LooksIsolated(rec) {
		return []string{"an ENI carries the isolation group"}
	}
	return nil
}

// missingReason is PreIsolationState.Missing for an incident whose only observation is rec (empty when rec is
// genuine).
func missingReason(rec workflow.Record) string {
	a := artifactsOf(rec)
	if len(a) == 0 {
		return ""
	}
	return fmt.Sprintf("every observation of this incident already showed isolation artifacts (%s, read at %s): the instance's state before isolation is unknown",
		strings.Join(a, "; "), rec.RecordedAt.UTC().Format(time.RFC3339))
}

// placeholder is what an incident keeps of an observation that is not genuine: what it knows without the
// isolation's own artifacts (the managed groups on each ENI, the isolation profile), so that no version of the
// record ever holds an artifact as the pre-isolation state. Missing says the state is unknown.
func placeholder(rec workflow.Record) workflow.Record {
	managed := map[string]bool{}
	for _, id := range rec.ManagedGroups {
		managed[id] = true
	}
	for _, g := range rec.IsolationGroups {
		managed[g.IsolationGroupID], managed[g.UntrackGroupID] = true, true
	}
	out := rec
	out.NetworkInterfaces = make([]workflow.NetworkInterface, 0, len(rec.NetworkInterfaces))
	for _, n := range rec.NetworkInterfaces {
		n.Groups = slices.DeleteFunc(slices.Clone(n.Groups), func(g string) bool { return managed[g] })
		out.NetworkInterfaces = append(out.NetworkInterfaces, n)
	}
	if a := rec.ProfileAssociation; a != nil && slices.ContainsFunc(rec.Artifacts, func(s string) bool { return strings.Contains(s, a.ProfileARN) }) {
		out.ProfileAssociation = nil
	}
	return out
}

// preferred reports whether the observation next should become the incident's pre-isolation state instead of
// cur. notBefore is when the incident before this one was released (zero for the first): an observation older
// than that describes the instance of an earlier incident.
func preferred(cur workflow.PreIsolationState, next workflow.Record, notBefore time.Time) bool {
	switch {
	case !genuine(next):
		return false
	case !notBefore.IsZero() && !next.RecordedAt.After(notBefore):
		return false
	case cur.Missing != "" || !genuine(cur.Record):
		return true
	}
	return !next.RecordedAt.IsZero() && next.RecordedAt.Before(cur.Record.RecordedAt)
}

// releasedBefore is when the incident before f.Incidents[idx] was released (zero when there is none).
func releasedBefore(f *workflow.IncidentFile, idx int) time.Time {
	if idx > 0 && f.Incidents[idx-1].ReleasedAt != nil {
		return *f.Incidents[idx-1].ReleasedAt
	}
	return time.Time{}
}

// adopt makes rec the incident's pre-isolation state when the rule prefers it; it keeps what the earlier
// observation captured beside it (Auto Scaling membership, target groups, description), read by then. It
// reports whether it changed the incident.
func adopt(f *workflow.IncidentFile, idx int, rec workflow.Record) bool {
	inc := &f.Incidents[idx]
	if inc.ReleasedAt != nil || !preferred(inc.PreIsolation, rec, releasedBefore(f, idx)) {
		return false
	}
	inc.PreIsolation.Record = rec
	inc.PreIsolation.Missing = ""
	return true
}

// managedGroups are the group ids that are isolation artifacts on an ENI, as far as the execution's state
// knows them.
func managedGroups(in workflow.NotifyInput) map[string]bool {
	m := map[string]bool{}
	add := func(ids ...string) {
		for _, id := range ids {
			if id != "" {
				m[id] = true
			}
		}
	}
	addVpc := func(gs []workflow.VpcGroups) {
		for _, g := range gs {
			add(g.IsolationGroupID, g.UntrackGroupID)
		}
	}
	if in.Record != nil {
		add(in.Record.ManagedGroups...)
		addVpc(in.Record.IsolationGroups)
	}
	if in.Incident != nil {
		add(in.Incident.PreIsolation.Record.ManagedGroups...)
		addVpc(in.Incident.PreIsolation.Record.IsolationGroups)
	}
	if in.Groups != nil {
		addVpc(in.Groups.Groups)
	}
	if in.Apply != nil {
		for _, n := range in.Apply.NetworkInterfaces {
			add(n.After...)
		}
	}
	if in.Verify != nil {
		for _, n := range in.Verify.NetworkInterfaces {
			add(n.IsolationGroupID)
		}
		for _, g := range in.Verify.Groups {
			add(g.GroupID)
		}
	}
	return m
}

// completePreIsolation adds to the pre-isolation state what this execution observed before changing it and the
// incident's state lacks (issue 12, case 9): ENIs attached since Validate read the instance (the read-back's
// Added, and Apply's ENIs outside the record whose groups before were no isolation artifact), and the Auto
// Scaling membership and target registrations "Preserve evidence" saw (the record step reads them concurrently,
// possibly after the detach). It reports whether it changed the incident.
func completePreIsolation(inc *workflow.Incident, in workflow.NotifyInput) bool {
	if inc.ReleasedAt != nil {
		return false
	}
	pre := &inc.PreIsolation
	managed := managedGroups(in)
	changed := false
	addENI := func(n workflow.NetworkInterface) {
		if n.ID == "" || n.VpcID == "" || len(n.Groups) == 0 || slices.ContainsFunc(n.Groups, func(g string) bool { return managed[g] }) {
			return
		}
		if slices.ContainsFunc(pre.Record.NetworkInterfaces, func(x workflow.NetworkInterface) bool { return x.ID == n.ID }) {
			return
		}
		n.Groups = slices.Sorted(slices.Values(n.Groups))
		pre.Record.NetworkInterfaces = append(pre.Record.NetworkInterfaces, n)
		if !slices.Contains(pre.Record.VpcIDs, n.VpcID) {
			pre.Record.VpcIDs = append(pre.Record.VpcIDs, n.VpcID)
			slices.Sort(pre.Record.VpcIDs)
		}
		changed = true
	}
	if in.Verify != nil {
		for _, n := range in.Verify.Added {
			addENI(n)
		}
	}
	if in.Apply != nil {
		for _, n := range in.Apply.NetworkInterfaces {
			addENI(workflow.NetworkInterface{ID: n.ID, VpcID: n.VpcID, Groups: n.Before})
		}
	}
	if in.Preserve != nil && in.Preserve.Observed != nil {
		o := in.Preserve.Observed
		if pre.AutoScaling == nil && o.AutoScaling != nil {
			a := *o.AutoScaling
			pre.AutoScaling = &a
			changed = true
		}
		for _, tg := range o.TargetGroups {
			if !slices.ContainsFunc(pre.TargetGroups, func(x workflow.TargetRegistration) bool {
				return x.TargetGroupARN == tg.TargetGroupARN && x.Port == tg.Port
			}) {
				pre.TargetGroups = append(pre.TargetGroups, tg)
				changed = true
			}
		}
	}
	return changed
}
