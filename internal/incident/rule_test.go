package incident_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Observations of the rule tests: a genuine one read at t, and one read after the network containment (the
// ENI already on the isolation group: an artifact, as Validate marks it).
func genuineAt(at time.Time) workflow.Record {
	rec := preRecord()
	rec.RecordedAt = at
	return rec
}

func isolatedAt(at time.Time) workflow.Record {
	rec := preRecord()
	rec.RecordedAt = at
	rec.NetworkInterfaces[0].Groups = []string{isoA}
	rec.Artifacts = []string{"eni-0aaa0000000000001 carries the isolation group " + isoA}
	return rec
}

func open(rec workflow.Record, execution string) workflow.OpenIncidentInput {
	return workflow.OpenIncidentInput{Record: rec, ExecutionName: execution,
		ExecutionARN: "arn:aws:states:us-east-1:123456789012:execution:isolation:" + execution}
}

var (
	tA = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tB = tA.Add(3 * time.Second)
)

// preGroups is the pre-isolation groups of the record's ENIs.
func preGroups(t *testing.T, pre workflow.PreIsolationState) map[string][]string {
	t.Helper()
	m := map[string][]string{}
	for _, n := range pre.Record.NetworkInterfaces {
		m[n.ID] = n.Groups
	}
	return m
}

var originalGroups = map[string][]string{
	"eni-0aaa0000000000001": {"sg-0000000000000000a", "sg-0000000000000000b"},
	"eni-0bbb0000000000001": {"sg-0000000000000000d"},
}

// TestEarliestGenuineObservationWins (issue 12, case 1): in whatever order the executions of one incident write,
// the incident ends holding the earliest genuine observation; an observation showing isolation artifacts is only
// a placeholder, marked missing, and a release of it is refused until a genuine one arrives.
func TestEarliestGenuineObservationWins(t *testing.T) {
	type step struct {
		execution string
		rec       workflow.Record
		outcome   bool // written by "Record outcome" (which opens the incident itself) rather than by the open phase
	}
	tests := []struct {
		name        string
		steps       []step
		wantFrom    time.Time // RecordedAt of the observation kept
		wantMissing bool
	}{
		{"A's write fails, B opens with isolation groups, A's late write replaces them",
			[]step{{"B", isolatedAt(tB), false}, {"A", genuineAt(tA), false}}, tA, false},
		{"A opens, B's placeholder never replaces it",
			[]step{{"A", genuineAt(tA), false}, {"B", isolatedAt(tB), false}}, tA, false},
		{"a later genuine observation never replaces an earlier one",
			[]step{{"A", genuineAt(tA), false}, {"B", genuineAt(tB), false}}, tA, false},
		{"an earlier genuine observation replaces a later one",
			[]step{{"B", genuineAt(tB), false}, {"A", genuineAt(tA), false}}, tA, false},
		{"only placeholders: the incident says the state is missing",
			[]step{{"B", isolatedAt(tB), false}, {"C", isolatedAt(tB.Add(time.Second)), false}}, tB, true},
		{"A failed at Record pre-isolation state, B opened, A's Record outcome replaces",
			[]step{{"B", isolatedAt(tB), false}, {"A", genuineAt(tA), true}}, tA, false},
		{"Record outcome opens with a placeholder, A's open replaces it",
			[]step{{"B", isolatedAt(tB), true}, {"A", genuineAt(tA), false}}, tA, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, fleet())
			r := newRecorder(srv)
			for _, s := range tt.steps {
				if s.outcome {
					in := isolationState(workflow.IncidentRef{}, s.execution)
					in.Incident, in.Record = nil, &s.rec
					if _, err := r.Close(ctx, incident.PhaseOutcome, in); err != nil {
						t.Fatalf("Record outcome of %s: %v", s.execution, err)
					}
					continue
				}
				if _, err := r.Open(ctx, open(s.rec, s.execution)); err != nil {
					t.Fatalf("Record pre-isolation state of %s: %v", s.execution, err)
				}
			}
			f, _ := readRecord(t, srv)
			if len(f.Incidents) != 1 {
				t.Fatalf("%d incidents, want 1", len(f.Incidents))
			}
			pre := f.Incidents[0].PreIsolation
			if !pre.Record.RecordedAt.Equal(tt.wantFrom) {
				t.Errorf("pre-isolation state read at %s, want the observation of %s", pre.Record.RecordedAt, tt.wantFrom)
			}
			if (pre.Missing != "") != tt.wantMissing {
				t.Errorf("missing = %q, want missing %v", pre.Missing, tt.wantMissing)
			}
			if !tt.wantMissing {
				if diff := cmp.Diff(originalGroups, preGroups(t, pre)); diff != "" {
					t.Errorf("pre-isolation groups (-original +recorded):\n%s", diff)
				}
			} else {
				if !strings.Contains(pre.Missing, "isolation artifacts") || !strings.Contains(pre.Missing, isoA) {
					t.Errorf("missing = %q, want it to name the artifacts", pre.Missing)
				}
				// The placeholder keeps what is known, never the artifacts themselves.
				for id, gs := range preGroups(t, pre) {
					if slices.Contains(gs, isoA) {
						t.Errorf("the placeholder records %s on the isolation group %s", id, isoA)
					}
				}
			}
			if pre.AutoScaling == nil || len(pre.TargetGroups) != 3 {
				t.Errorf("the captured Auto Scaling membership and target groups were lost: %+v %+v", pre.AutoScaling, pre.TargetGroups)
			}
			var names []string
			for _, e := range f.Incidents[0].Executions {
				names = append(names, e.ExecutionName)
			}
			for _, s := range tt.steps {
				if !slices.Contains(names, s.execution) {
					t.Errorf("execution %s not on record: %v", s.execution, names)
				}
			}
		})
	}
}

// TestRacingOpenersAgree: executions opening the incident at once (conditional writes, lost races read again)
// end with the earliest genuine observation, whichever wrote first.
func TestRacingOpenersAgree(t *testing.T) {
	for seed := range 5 {
		t.Run(fmt.Sprint("round ", seed), func(t *testing.T) {
			srv := start(t, fleet())
			r := newRecorder(srv)
			ins := []workflow.OpenIncidentInput{
				open(isolatedAt(tB), "B"), open(genuineAt(tA.Add(time.Second)), "A2"), open(genuineAt(tA), "A"), open(isolatedAt(tB.Add(time.Second)), "C"),
			}
			var wg sync.WaitGroup
			errs := make([]error, len(ins))
			for i, in := range ins {
				wg.Go(func() { _, errs[i] = r.Open(ctx, in) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			f, _ := readRecord(t, srv)
			if len(f.Incidents) != 1 || len(f.Incidents[0].Executions) != 4 {
				t.Fatalf("record %+v, want one incident with 4 executions", f)
			}
			if pre := f.Incidents[0].PreIsolation; !pre.Record.RecordedAt.Equal(tA) || pre.Missing != "" {
				t.Errorf("pre-isolation state read at %s (missing %q), want A's genuine observation of %s", pre.Record.RecordedAt, pre.Missing, tA)
			}
		})
	}
}

// An execution of an incident already released (redriven long after) never replaces the next incident's state.
func TestObservationOfAClosedIncidentIsNotAdopted(t *testing.T) {
	srv := start(t, fleet())
	r := newRecorder(srv)
	ref, err := r.Open(ctx, open(genuineAt(tA), "A"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Close(ctx, incident.PhaseOutcome, isolationState(ref, "A")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Close(ctx, incident.PhaseRelease, workflow.NotifyInput{Workflow: workflow.WorkflowRelease, Outcome: workflow.OutcomeSucceeded,
		ExecutionName: "rel-1", Incident: &workflow.IncidentRef{Bucket: bucket, Key: key}}); err != nil {
		t.Fatal(err)
	}
	later := isolatedAt(time.Now().Add(time.Hour))
	if _, err := r.Open(ctx, open(later, "C")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(ctx, open(genuineAt(tA), "A")); err != nil { // A redriven
		t.Fatal(err)
	}
	f, _ := readRecord(t, srv)
	if len(f.Incidents) != 2 || !f.Incidents[1].PreIsolation.Record.RecordedAt.Equal(later.RecordedAt) {
		t.Errorf("second incident's state read at %s, want C's (%s): A's observation belongs to the first incident",
			f.Incidents[1].PreIsolation.Record.RecordedAt, later.RecordedAt)
	}
}

// TestReleaseWaitsAndRefuses (issue 12, cases 1 and 7): "Read incident record" waits for a running isolation
// (IsolationInProgress, which the release retries), refuses a release the instance's tag no longer asks for
// (Superseded), and refuses an incident without a genuine pre-isolation state naming why; never a mutating call.
func TestReleaseWaitsAndRefuses(t *testing.T) {
	tests := []struct {
		name   string
		tag    string
		setup  func(t *testing.T, r *incident.Recorder)
		want   string
		saying string
	}{
		{"isolation still running", "release", func(t *testing.T, r *incident.Recorder) {
			if _, err := r.Open(ctx, open(genuineAt(tA), "A")); err != nil {
				t.Fatal(err)
			}
		}, "IsolationInProgress", "isolation execution A is still running"},
		{"the tag says isolate again", "true", func(t *testing.T, r *incident.Recorder) {
			ref, err := r.Open(ctx, open(genuineAt(tA), "A"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Close(ctx, incident.PhaseOutcome, isolationState(ref, "A")); err != nil {
				t.Fatal(err)
			}
		}, "Superseded", `now carries Isolate="true", not Isolate="release"`},
		{"only a placeholder", "release", func(t *testing.T, r *incident.Recorder) {
			in := isolationState(workflow.IncidentRef{}, "B")
			rec := isolatedAt(tB)
			in.Incident, in.Record = nil, &rec
			if _, err := r.Close(ctx, incident.PhaseOutcome, in); err != nil {
				t.Fatal(err)
			}
		}, "RecordMissing", "restore it by hand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := withInstance(network(), []string{isoA}, []string{"sg-0000000000000000d"})
			sc.Instances[0].Tags["Isolate"] = tt.tag
			srv := start(t, sc)
			tt.setup(t, newRecorder(srv))
			srv.ResetCalls()
			_, err := newReader(srv).Handle(ctx, workflow.ValidateInput{Event: releaseEvent(instanceID), ExecutionName: "rel-1"})
			var (
				inProgress *steperr.IsolationInProgress
				superseded *steperr.Superseded
				missing    *steperr.RecordMissing
			)
			got := map[bool]string{true: tt.want}[tt.want == "IsolationInProgress" && errors.As(err, &inProgress) ||
				tt.want == "Superseded" && errors.As(err, &superseded) || tt.want == "RecordMissing" && errors.As(err, &missing)]
			if got != tt.want {
				t.Fatalf("err = %T %v, want %s", err, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.saying) {
				t.Errorf("err = %q, want it to say %q", err, tt.saying)
			}
			if m := mutating(srv); len(m) != 0 {
				t.Errorf("mutating calls %v", m)
			}
		})
	}
}

// TestOutcomeCompletesThePreIsolationState (issue 12, case 9): "Record outcome" adds what the execution saw
// before changing it and the incident lacks: an ENI attached mid-incident (the read-back's Added, or Apply's
// ENI outside the record whose groups before were no isolation artifact), and the Auto Scaling membership and
// target registrations "Preserve evidence" observed (the record step read them after the detach).
func TestOutcomeCompletesThePreIsolationState(t *testing.T) {
	sc := fleet()
	sc.AutoScaling = nil
	sc.TargetGroups = nil // as the record step saw the instance: already detached and deregistered
	srv := start(t, sc)
	r := newRecorder(srv)
	ref, err := r.Open(ctx, open(genuineAt(tA), "A"))
	if err != nil {
		t.Fatal(err)
	}
	if ref.PreIsolation.AutoScaling != nil || len(ref.PreIsolation.TargetGroups) != 0 {
		t.Fatalf("setup: the record step saw %+v", ref.PreIsolation)
	}
	tg := workflow.TargetRegistration{TargetGroupARN: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef", Port: 80}
	in := isolationState(ref, "A")
	in.Apply = &workflow.ApplyGroupsOutput{NetworkInterfaces: []workflow.AppliedInterface{
		{ID: "eni-0aaa0000000000001", VpcID: vpcA, Before: []string{"sg-0000000000000000a", "sg-0000000000000000b"}, After: []string{isoA}, Changed: true},
		{ID: "eni-0ccc0000000000003", VpcID: vpcB, Before: []string{"sg-0000000000000000d"}, After: []string{"sg-000000000000000e0"}, Changed: true},
		{ID: "eni-0ddd0000000000004", VpcID: vpcA, Before: []string{"sg-0000000000000000a", isoA}, After: []string{isoA}, Changed: true}, // already half isolated: not recorded
	}}
	in.Verify = &workflow.VerifyOutput{Contained: true, Added: []workflow.NetworkInterface{
		{ID: "eni-0eee0000000000005", VpcID: "vpc-0ccc0000000000003", SubnetID: "subnet-0ccc000000000001", DeviceIndex: 3, Groups: []string{"sg-0000000000000000f"}},
	}}
	in.Preserve = &workflow.StepChanges{Observed: &workflow.EvidenceObserved{
		AutoScaling:  &workflow.AutoScalingMembership{GroupName: "web-asg", LifecycleState: "InService", ProtectedFromScaleIn: true},
		TargetGroups: []workflow.TargetRegistration{tg},
	}}
	for range 2 { // twice = once
		if _, err := r.Close(ctx, incident.PhaseOutcome, in); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := readRecord(t, srv)
	pre := f.Incidents[0].PreIsolation
	want := map[string][]string{
		"eni-0aaa0000000000001": {"sg-0000000000000000a", "sg-0000000000000000b"},
		"eni-0bbb0000000000001": {"sg-0000000000000000d"},
		"eni-0ccc0000000000003": {"sg-0000000000000000d"},
		"eni-0eee0000000000005": {"sg-0000000000000000f"},
	}
	if diff := cmp.Diff(want, preGroups(t, pre)); diff != "" {
		t.Errorf("pre-isolation ENIs (-want +got):\n%s", diff)
	}
	if !slices.Equal(pre.Record.VpcIDs, []string{vpcA, vpcB, "vpc-0ccc0000000000003"}) {
		t.Errorf("pre-isolation VPCs %v", pre.Record.VpcIDs)
	}
	if pre.AutoScaling == nil || pre.AutoScaling.GroupName != "web-asg" || !pre.AutoScaling.ProtectedFromScaleIn {
		t.Errorf("pre-isolation Auto Scaling %+v, want web-asg as Preserve evidence observed it", pre.AutoScaling)
	}
	if !slices.Equal(pre.TargetGroups, []workflow.TargetRegistration{tg}) {
		t.Errorf("pre-isolation target groups %+v, want %+v", pre.TargetGroups, tg)
	}
}
