package incident

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// collectChanges gathers the changes of every step output the state holds, in time order.
func collectChanges(in workflow.NotifyInput) []workflow.Change {
	var out []workflow.Change
	add := func(c []workflow.Change) { out = append(out, c...) }
	if in.Disassociate != nil {
		add(in.Disassociate.Changes)
	}
	if in.Attach != nil {
		add(in.Attach.Changes)
	}
	if in.Groups != nil {
		add(in.Groups.Changes)
	}
	if in.Apply != nil {
		add(in.Apply.Changes)
	}
	if in.Snapshot != nil {
		add(in.Snapshot.Changes)
	}
	if in.Revoke != nil {
		add(in.Revoke.Changes)
	}
	if in.Preserve != nil {
		add(in.Preserve.Changes)
	}
	if in.RestoreGroups != nil {
		add(in.RestoreGroups.Changes)
	}
	if in.RestoreProfile != nil {
		add(in.RestoreProfile.Changes)
	}
	if in.LiftRevocation != nil {
		add(in.LiftRevocation.Changes)
	}
	if in.RestoreEvidence != nil {
		add(in.RestoreEvidence.Changes)
	}
	slices.SortStableFunc(out, compareChanges)
	return out
}

func compareChanges(a, b workflow.Change) int {
	return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Step, b.Step), cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.Action, b.Action))
}

// changeKey identifies a change across runs: a redrive reports again what an earlier run did.
type changeKey struct {
	step, resource, action string
	at                     int64
}

func keyOf(c workflow.Change) changeKey {
	return changeKey{c.Step, c.Resource, c.Action, c.At.UnixNano()}
}

// mergeChanges adds the changes the incident does not hold yet.
func mergeChanges(inc *workflow.Incident, changes []workflow.Change) bool {
	have := map[changeKey]bool{}
	for _, c := range inc.Changes {
		have[keyOf(c)] = true
	}
	added := false
	for _, c := range changes {
		if k := keyOf(c); !have[k] {
			have[k] = true
			inc.Changes = append(inc.Changes, c)
			added = true
		}
	}
	if added {
		slices.SortStableFunc(inc.Changes, compareChanges)
	}
	return added
}

// mergeSnapshots adds new snapshots and updates the state of known ones.
func mergeSnapshots(inc *workflow.Incident, snaps []workflow.Snapshot) bool {
	changed := false
	for _, s := range snaps {
		i := slices.IndexFunc(inc.Snapshots, func(x workflow.Snapshot) bool { return x.SnapshotID == s.SnapshotID })
		switch {
		case i < 0:
			inc.Snapshots = append(inc.Snapshots, s)
			changed = true
		case inc.Snapshots[i] != s:
			inc.Snapshots[i] = s
			changed = true
		}
	}
	return changed
}

// mergeExecution adds or updates the execution's entry: outcome, failures (all attempts'), finish time. An entry
// that already says all this is left alone, so a repeated run writes nothing.
func mergeExecution(inc *workflow.Incident, in workflow.NotifyInput, wf, outcome string, changes []workflow.Change, now time.Time) bool {
	i := slices.IndexFunc(inc.Executions, func(e workflow.ExecutionEntry) bool {
		return e.ExecutionName == in.ExecutionName && e.Workflow == wf
	})
	changed := false
	if i < 0 {
		// No earlier state of this execution wrote to the record (a release's first write is its last): it
		// started no later than its first change.
		started := now
		if len(changes) > 0 && changes[0].At.Before(started) && !changes[0].At.IsZero() {
			started = changes[0].At
		}
		inc.Executions = append(inc.Executions, workflow.ExecutionEntry{Workflow: wf, ExecutionName: in.ExecutionName, StartedAt: started})
		i = len(inc.Executions) - 1
		changed = true
	}
	e := &inc.Executions[i]
	if e.ExecutionARN == "" && in.ExecutionARN != "" {
		e.ExecutionARN = in.ExecutionARN
		changed = true
	}
	if e.Outcome != outcome {
		e.Outcome = outcome
		changed = true
	}
	for _, f := range in.Failures {
		if !slices.Contains(e.Failures, f) {
			e.Failures = append(e.Failures, f)
			changed = true
		}
	}
	if changed || e.FinishedAt == nil {
		e.FinishedAt = &now
		changed = true
	}
	return changed
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }
