package profile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

var ctx = context.Background()

func pending(err error) bool { return isA[*steperr.AssociationPending](err) }

// TestContainmentBranch runs "Disassociate profile" then "Attach isolation profile" as the state machine's
// branch does (retrying AssociationPending), and checks what EC2 then says about the instance.
func TestContainmentBranch(t *testing.T) {
	tests := []struct {
		name             string
		instance         sim.Instance
		faults           []sim.ErrorFault
		wantDisassociate []string // profile ARNs removed
	}{
		{name: "instance with a profile", instance: sim.Instance{Profile: "web-server"}, wantDisassociate: []string{webARN}},
		{name: "instance without a profile", instance: sim.Instance{}},
		{name: "association still associating", instance: sim.Instance{Profile: "web-server", AssociationState: "associating"},
			wantDisassociate: []string{webARN}},
		{name: "every first call throttled", instance: sim.Instance{Profile: "web-server"},
			faults:           []sim.ErrorFault{{Action: "*", Code: "RequestLimitExceeded", FirstCalls: 1}},
			wantDisassociate: []string{webARN}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scenario(tt.instance)
			sc.Faults.Errors = tt.faults
			e := start(t, sc)

			dis, _ := retried(t, pending, func() (workflow.DisassociateOutput, error) { return e.disassociate.Handle(ctx, input) })
			att, _ := retried(t, pending, func() (workflow.AttachOutput, error) { return e.attach.Handle(ctx, input) })

			var removed []string
			for _, a := range dis.Disassociated {
				removed = append(removed, a.ProfileARN)
			}
			if diff := cmp.Diff(tt.wantDisassociate, removed); diff != "" {
				t.Errorf("disassociated (-want +got):\n%s", diff)
			}
			// The steps read the state before acting: EC2 never refused one of their changes (IncorrectState)
			// while an association was settling.
			for _, c := range e.srv.Calls() {
				if c.Mutating && c.ErrorCode != "" && c.ErrorCode != "RequestLimitExceeded" {
					t.Errorf("%s failed with %s", c.Action, c.ErrorCode)
				}
			}
			if !att.Changed || att.ProfileARN != isolationARN || att.AssociationID == "" {
				t.Errorf("attach output = %+v, want a new association of %s", att, isolationARN)
			}
			want := []association{{isolationARN, "associated"}}
			if diff := cmp.Diff(want, e.settled(t)); diff != "" {
				t.Errorf("associations after the branch (-want +got):\n%s", diff)
			}
			if tt.faults != nil {
				throttled := 0
				for _, c := range e.srv.Calls() {
					if c.ErrorCode == "RequestLimitExceeded" {
						throttled++
					}
				}
				if throttled == 0 {
					t.Error("no call was throttled: the fault did not apply")
				}
			}

			// A redrive runs the branch again: it must find everything done and change nothing.
			e.srv.ResetCalls()
			dis2, err := e.disassociate.Handle(ctx, input)
			if err != nil || len(dis2.Disassociated) != 0 {
				t.Errorf("second disassociate = %+v, %v; want nothing removed", dis2, err)
			}
			att2, err := e.attach.Handle(ctx, input)
			if err != nil || att2.Changed || att2.AssociationID != att.AssociationID {
				t.Errorf("second attach = %+v, %v; want unchanged %s", att2, err, att.AssociationID)
			}
			if m := e.mutating(); len(m) > 0 {
				t.Errorf("second run made mutating calls: %v", m)
			}
		})
	}
}

func TestAttachReplacesAssociatedProfile(t *testing.T) {
	e := start(t, scenario(sim.Instance{Profile: "web-server"}))
	out, err := e.attach.Handle(ctx, input)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if !out.Changed || out.ProfileARN != isolationARN {
		t.Errorf("attach output = %+v", out)
	}
	if diff := cmp.Diff([]string{"ReplaceIamInstanceProfileAssociation"}, e.mutating()); diff != "" {
		t.Errorf("mutating calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]association{{isolationARN, "associated"}}, e.settled(t)); diff != "" {
		t.Errorf("associations (-want +got):\n%s", diff)
	}
}

// TestPendingUntilSettled holds an association in a changing state (no settle) to see the step wait, then lets
// it settle: no timing is involved.
func TestPendingUntilSettled(t *testing.T) {
	tests := []struct {
		name  string
		state string
		step  func(e env) error
	}{
		{"attach while disassociating", "disassociating", func(e env) error { _, err := e.attach.Handle(ctx, input); return err }},
		{"attach while associating", "associating", func(e env) error { _, err := e.attach.Handle(ctx, input); return err }},
		{"disassociate while associating", "associating", func(e env) error { _, err := e.disassociate.Handle(ctx, input); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scenario(sim.Instance{Profile: "web-server"})
			sc.Behaviour.AssociationSettle = time.Hour
			e := start(t, sc)
			var err error
			e.srv.Update(func(a *sim.Account) { err = a.SetAssociationState(instanceID, tt.state) })
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // as often as ASL retries: still pending, still no change
				err := tt.step(e)
				if !pending(err) || !strings.Contains(err.Error(), tt.state) {
					t.Fatalf("error = %T %v, want *steperr.AssociationPending saying %s", err, err, tt.state)
				}
			}
			if m := e.mutating(); len(m) > 0 {
				t.Errorf("mutating calls while pending: %v", m)
			}
			if diff := cmp.Diff([]association{{webARN, tt.state}}, e.current(t)); diff != "" {
				t.Errorf("associations (-want +got):\n%s", diff)
			}

			e.srv.Update(func(a *sim.Account) { a.Behaviour.AssociationSettle = 0 })
			if err := tt.step(e); err != nil {
				t.Fatalf("after settling: %v", err)
			}
		})
	}
}

func TestAttachAfterDisassociation(t *testing.T) {
	e := start(t, scenario(sim.Instance{Profile: "web-server"}))
	var err error
	e.srv.Update(func(a *sim.Account) { err = a.SetAssociationState(instanceID, "disassociating") })
	if err != nil {
		t.Fatal(err)
	}
	out, _ := retried(t, pending, func() (workflow.AttachOutput, error) { return e.attach.Handle(ctx, input) })
	if !out.Changed || out.ProfileARN != isolationARN {
		t.Errorf("attach output = %+v", out)
	}
	if diff := cmp.Diff([]association{{isolationARN, "associated"}}, e.settled(t)); diff != "" {
		t.Errorf("associations (-want +got):\n%s", diff)
	}
	for _, c := range e.srv.Calls() {
		if c.Action == "ReplaceIamInstanceProfileAssociation" {
			t.Error("replaced an association that was going away")
		}
	}
}

func TestDisassociateLeavesIsolationProfile(t *testing.T) {
	e := start(t, scenario(sim.Instance{Profile: "ec2-isolation"}))
	out, err := e.disassociate.Handle(ctx, input)
	if err != nil || len(out.Disassociated) != 0 {
		t.Fatalf("disassociate = %+v, %v", out, err)
	}
	if m := e.mutating(); len(m) > 0 {
		t.Errorf("mutating calls: %v", m)
	}
	if diff := cmp.Diff([]association{{isolationARN, "associated"}}, e.current(t)); diff != "" {
		t.Errorf("associations (-want +got):\n%s", diff)
	}
}

func TestProfileNotReady(t *testing.T) {
	t.Run("unknown isolation profile", func(t *testing.T) {
		e := start(t, scenario(sim.Instance{}))
		h := profile.NewAttach(e.client, profile.Settings{IsolationProfileName: "no-such-profile"}, nil)
		_, err := h.Handle(ctx, input)
		if !isA[*steperr.ProfileNotReady](err) {
			t.Fatalf("error = %T %v, want *steperr.ProfileNotReady", err, err)
		}
		if !strings.Contains(err.Error(), "no-such-profile") {
			t.Errorf("error %q does not name the profile", err)
		}
		if diff := cmp.Diff([]association{}, e.current(t)); diff != "" {
			t.Errorf("associations (-want +got):\n%s", diff)
		}
	})
	t.Run("profile visible after a delay", func(t *testing.T) {
		sc := scenario(sim.Instance{})
		sc.InstanceProfiles[1].VisibleAfter = time.Hour // not yet visible to EC2 ...
		e := start(t, sc)
		if _, err := e.attach.Handle(ctx, input); !isA[*steperr.ProfileNotReady](err) {
			t.Fatalf("error = %T %v, want *steperr.ProfileNotReady", err, err)
		}
		if diff := cmp.Diff([]association{}, e.current(t)); diff != "" {
			t.Errorf("associations while not visible (-want +got):\n%s", diff)
		}
		// ... until IAM has propagated it (here: the same profile, visible after 20 ms).
		const propagatedARN = "arn:aws:iam::123456789012:instance-profile/ec2-isolation"
		e.srv.Update(func(a *sim.Account) { a.AddInstanceProfile("ec2-isolation", "ec2-isolation", 20*time.Millisecond) })
		out, _ := retried(t, isA[*steperr.ProfileNotReady], func() (workflow.AttachOutput, error) { return e.attach.Handle(ctx, input) })
		if !out.Changed || out.ProfileARN != propagatedARN {
			t.Errorf("attach output = %+v", out)
		}
		if diff := cmp.Diff([]association{{propagatedARN, "associated"}}, e.settled(t)); diff != "" {
			t.Errorf("associations (-want +got):\n%s", diff)
		}
	})
	t.Run("profile visible after a delay, retried", func(t *testing.T) {
		sc := scenario(sim.Instance{})
		sc.InstanceProfiles[1].VisibleAfter = 50 * time.Millisecond
		e := start(t, sc)
		out, _ := retried(t, isA[*steperr.ProfileNotReady], func() (workflow.AttachOutput, error) { return e.attach.Handle(ctx, input) })
		if !out.Changed || out.ProfileARN != isolationARN {
			t.Errorf("attach output = %+v", out)
		}
		if diff := cmp.Diff([]association{{isolationARN, "associated"}}, e.settled(t)); diff != "" {
			t.Errorf("associations (-want +got):\n%s", diff)
		}
	})
}

func TestRefusesBadInputWithoutCalls(t *testing.T) {
	inputs := map[string]workflow.InstanceInput{
		"no instance":        {ExecutionName: "exec-1"},
		"no execution":       {InstanceID: instanceID},
		"malformed instance": {InstanceID: "i-XYZ", ExecutionName: "exec-1"},
	}
	e := start(t, scenario(sim.Instance{Profile: "web-server"}))
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			e.srv.ResetCalls()
			if _, err := e.disassociate.Handle(ctx, in); !isA[*steperr.InvalidInput](err) {
				t.Errorf("disassociate error = %T %v, want *steperr.InvalidInput", err, err)
			}
			if _, err := e.attach.Handle(ctx, in); !isA[*steperr.InvalidInput](err) {
				t.Errorf("attach error = %T %v, want *steperr.InvalidInput", err, err)
			}
			if n := len(e.srv.Calls()); n > 0 {
				t.Errorf("%d AWS calls", n)
			}
		})
	}
}

func TestSettingsFromEnv(t *testing.T) {
	tests := map[string]bool{
		"ec2-isolation": true, "Isolation+Profile=1,a.b@c_d": true,
		"": false, "arn:aws:iam::123456789012:instance-profile/x": false, "path/name": false,
		strings.Repeat("p", 129): false,
	}
	for value, ok := range tests {
		s, err := profile.SettingsFromEnv(func(k string) string {
			if k == "ISOLATION_PROFILE_NAME" {
				return value
			}
			return ""
		})
		switch {
		case ok && (err != nil || s.IsolationProfileName != value):
			t.Errorf("%q: SettingsFromEnv = %+v, %v", value, s, err)
		case !ok && !isA[*steperr.ConfigError](err):
			t.Errorf("%q: error = %T %v, want *steperr.ConfigError", value, err, err)
		}
	}
}

func TestTerminatedInstance(t *testing.T) {
	e := start(t, scenario(sim.Instance{}))
	var err error
	e.srv.Update(func(a *sim.Account) { err = a.TerminateInstance(instanceID) })
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.disassociate.Handle(ctx, input); err != nil || len(out.Disassociated) != 0 {
		t.Errorf("disassociate = %+v, %v; want nothing to do", out, err)
	}
	if _, err := e.attach.Handle(ctx, input); !isA[*steperr.InstanceNotIsolatable](err) {
		t.Errorf("attach error = %T %v, want *steperr.InstanceNotIsolatable", err, err)
	}
	if diff := cmp.Diff([]association{}, e.current(t)); diff != "" {
		t.Errorf("associations (-want +got):\n%s", diff)
	}
}

// TestDisassociateTrustsTheRecordOnItsFirstRun (issue 16): with Validate's record, the first run removes the
// association the record names without reading the instance's associations again; a retry reads them, and a
// record whose association is gone since is the goal reached.
func TestDisassociateTrustsTheRecordOnItsFirstRun(t *testing.T) {
	e := start(t, scenario(sim.Instance{Profile: "web-server"}))
	as, err := profile.Associations(ctx, e.client, instanceID)
	if err != nil || len(as) != 1 {
		t.Fatalf("associations %v: %v", as, err)
	}
	rec := &workflow.Record{InstanceID: instanceID, ProfileAssociation: &workflow.ProfileAssociation{
		AssociationID: aws.ToString(as[0].AssociationId), ProfileARN: webARN, State: "associated"}}
	reads := func() int {
		n := 0
		for _, c := range e.srv.Calls() {
			if c.Action == "DescribeIamInstanceProfileAssociations" && c.Caller == "disassociate-profile" {
				n++
			}
		}
		return n
	}

	in := input
	in.Record = rec
	e.srv.ResetCalls()
	out, err := e.disassociate.Handle(ctx, in)
	if err != nil || len(out.Disassociated) != 1 || out.Disassociated[0].ProfileARN != webARN {
		t.Fatalf("first run = %+v, %v", out, err)
	}
	if n := reads(); n != 0 {
		t.Errorf("first run read the associations %d times, want 0 (the record has it)", n)
	}
	if diff := cmp.Diff([]association{}, e.settled(t)); diff != "" {
		t.Errorf("associations after the first run (-want +got):\n%s", diff)
	}

	// The same record again, on a retry: EC2's associations are read; nothing is left to remove.
	in.Attempt = 1
	e.srv.ResetCalls()
	if out, err := e.disassociate.Handle(ctx, in); err != nil || len(out.Disassociated) != 0 {
		t.Errorf("retry = %+v, %v, want nothing to remove", out, err)
	}
	if n := reads(); n == 0 {
		t.Error("the retry trusted the record")
	}

	// A first run whose record names an association removed since: the goal is reached, no error, no change.
	in.Attempt = 0
	if out, err := e.disassociate.Handle(ctx, in); err != nil || len(out.Changes) != 0 {
		t.Errorf("stale record = %+v, %v, want no change and no error", out, err)
	}
}
