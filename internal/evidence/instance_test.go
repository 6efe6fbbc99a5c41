package evidence_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const modify = "ModifyInstanceAttribute"

func TestPreserveInstanceSettings(t *testing.T) {
	preserved := attrs{TerminationProtection: true, ShutdownBehavior: "stop",
		DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}}
	tests := []struct {
		name        string
		instance    func(*sim.Instance)
		settings    evidence.Settings
		want        attrs
		wantChanges []changeKey
		wantSkipped []string
	}{
		{name: "everything to preserve", settings: instanceOnly, want: preserved,
			wantChanges: []changeKey{{instanceID, modify}, {instanceID, modify}, {volRoot, modify}, {volData, modify}}},
		{name: "termination protection already on, shutdown already stop",
			instance: func(i *sim.Instance) { i.DisableAPITermination, i.ShutdownBehavior = true, "stop" },
			settings: instanceOnly, want: preserved,
			wantChanges: []changeKey{{volRoot, modify}, {volData, modify}}},
		{name: "termination protection turned off",
			settings: evidence.Settings{StopOnShutdown: true, KeepVolumes: true},
			want: attrs{ShutdownBehavior: "stop",
				DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}},
			wantChanges: []changeKey{{instanceID, modify}, {volRoot, modify}, {volData, modify}},
			wantSkipped: []string{evidence.EnvTerminationProtection + "=false"}},
		{name: "shutdown behaviour turned off",
			settings: evidence.Settings{TerminationProtection: true, KeepVolumes: true},
			want: attrs{TerminationProtection: true, ShutdownBehavior: "terminate",
				DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}},
			wantChanges: []changeKey{{instanceID, modify}, {volRoot, modify}, {volData, modify}},
			wantSkipped: []string{evidence.EnvStopOnShutdown + "=false"}},
		{name: "volumes turned off",
			settings: evidence.Settings{TerminationProtection: true, StopOnShutdown: true},
			want: attrs{TerminationProtection: true, ShutdownBehavior: "stop",
				DeleteOnTermination: map[string]bool{volRoot: true, volData: true, volScratch: false}},
			wantChanges: []changeKey{{instanceID, modify}, {instanceID, modify}},
			wantSkipped: []string{evidence.EnvKeepVolumes + "=false"}},
		{name: "everything turned off", settings: evidence.Settings{},
			want: recordedAttrs(record()), wantChanges: []changeKey{},
			wantSkipped: []string{evidence.EnvTerminationProtection, evidence.EnvStopOnShutdown, evidence.EnvKeepVolumes,
				evidence.EnvDetachAutoScaling, evidence.EnvDeregisterTargets}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := instanceScenario()
			if tt.instance != nil {
				tt.instance(&sc.Instances[0])
			}
			srv := simtest.Start(t, sc)
			h := preserve(srv, tt.settings)
			in := evidenceInput(workflow.PreIsolationState{Record: record()})

			out, err := h.Handle(ctx, in)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if diff := cmp.Diff(tt.want, readAttrs(t, newClients(srv, "test").ec2)); diff != "" {
				t.Errorf("instance settings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantChanges, changeKeys(out.Changes)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			checkChanges(t, evidence.PreserveStep, out.Changes)
			// Auto Scaling and target groups are off in these cases unless everything is.
			wantSkipped := tt.wantSkipped
			if len(wantSkipped) < 5 {
				wantSkipped = append(wantSkipped, evidence.EnvDetachAutoScaling+"=false", evidence.EnvDeregisterTargets+"=false")
			}
			if len(out.Skipped) != len(wantSkipped) || !containsAll(out.Skipped, wantSkipped...) {
				t.Errorf("skipped = %q, want %q", out.Skipped, wantSkipped)
			}
			// One call for the volumes, whatever their number.
			if calls, want := len(mutating(srv)), len(tt.wantChanges); calls > want || (want > 0 && calls == 0) {
				t.Errorf("mutating calls %v for changes %v", mutating(srv), tt.wantChanges)
			}

			srv.ResetCalls()
			again, err := h.Handle(ctx, in)
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("second run = %+v, %v; want no change", again, err)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("second run made mutating calls: %v", m)
			}
		})
	}
}

// TestPreserveThenRestore: the release puts back exactly the settings the record holds, whatever isolation
// changed, and volumes detached since are reported, not failed.
func TestPreserveThenRestore(t *testing.T) {
	tests := []struct {
		name     string
		instance func(*sim.Instance)
		record   func(*workflow.Record)
	}{
		{name: "defaults of a launched instance"},
		{name: "termination protection on and stop before isolation",
			instance: func(i *sim.Instance) { i.DisableAPITermination, i.ShutdownBehavior = true, "stop" },
			record:   func(r *workflow.Record) { r.DisableAPITermination, r.ShutdownBehavior = true, "stop" }},
		{name: "every volume kept before isolation",
			instance: func(i *sim.Instance) {
				for v := range i.Volumes {
					i.Volumes[v].DeleteOnTermination = false
				}
			},
			record: func(r *workflow.Record) {
				for v := range r.Volumes {
					r.Volumes[v].DeleteOnTermination = false
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := instanceScenario()
			if tt.instance != nil {
				tt.instance(&sc.Instances[0])
			}
			rec := record()
			if tt.record != nil {
				tt.record(&rec)
			}
			srv := simtest.Start(t, sc)
			read := func() attrs { return readAttrs(t, newClients(srv, "test").ec2) }
			if diff := cmp.Diff(recordedAttrs(rec), read()); diff != "" {
				t.Fatalf("the record does not describe the scenario (-record +instance):\n%s", diff)
			}
			pre := workflow.PreIsolationState{Record: rec}
			if _, err := preserve(srv, instanceOnly).Handle(ctx, evidenceInput(pre)); err != nil {
				t.Fatalf("preserve: %v", err)
			}
			out, err := restorer(srv).Handle(ctx, releaseInput(pre))
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			checkChanges(t, evidence.RestoreStep, out.Changes)
			if diff := cmp.Diff(recordedAttrs(rec), read()); diff != "" {
				t.Errorf("instance settings after release (-recorded +got):\n%s", diff)
			}

			srv.ResetCalls()
			again, err := restorer(srv).Handle(ctx, releaseInput(pre))
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("second restore = %+v, %v; want no change", again, err)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("second restore made mutating calls: %v", m)
			}
		})
	}
}

func TestRestoreVolumeDetachedSince(t *testing.T) {
	sc := instanceScenario()
	sc.Instances[0].Volumes = sc.Instances[0].Volumes[:2] // volScratch is gone since isolation
	for v := range sc.Instances[0].Volumes {
		sc.Instances[0].Volumes[v].DeleteOnTermination = false
	}
	srv := simtest.Start(t, sc)
	out, err := restorer(srv).Handle(ctx, releaseInput(workflow.PreIsolationState{Record: record()}))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !containsAll(out.Skipped, volScratch+" (/dev/xvdg): no longer attached") {
		t.Errorf("skipped = %q, want the detached volume", out.Skipped)
	}
	want := attrs{ShutdownBehavior: "terminate", DeleteOnTermination: map[string]bool{volRoot: true, volData: true}}
	if diff := cmp.Diff(want, readAttrs(t, newClients(srv, "test").ec2)); diff != "" {
		t.Errorf("instance settings (-want +got):\n%s", diff)
	}
	// Both volumes in one call.
	if diff := cmp.Diff([]string{modify}, mutating(srv)); diff != "" {
		t.Errorf("mutating calls (-want +got):\n%s", diff)
	}
}

func TestPreserveUnknownInstance(t *testing.T) {
	srv := simtest.Start(t, instanceScenario())
	in := evidenceInput(workflow.PreIsolationState{})
	in.InstanceID = "i-0fedcba9876543210"
	_, err := preserve(srv, instanceOnly).Handle(ctx, in)
	if !isA[*steperr.InstanceNotFound](err) {
		t.Fatalf("error = %T %v, want *steperr.InstanceNotFound", err, err)
	}
	if m := mutating(srv); len(m) > 0 {
		t.Errorf("mutating calls: %v", m)
	}
}

func TestRefusesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		change func(*workflow.EvidenceInput)
		want   string
	}{
		{"no execution name", func(in *workflow.EvidenceInput) { in.ExecutionName = "" }, "executionName"},
		{"not an instance id", func(in *workflow.EvidenceInput) { in.InstanceID = "i-xyz" }, "i-xyz"},
		{"record of another instance", func(in *workflow.EvidenceInput) {
			in.PreIsolation.Record.InstanceID = "i-0fedcba9876543210"
		}, "i-0fedcba9876543210"},
		{"not a target group ARN", func(in *workflow.EvidenceInput) {
			in.PreIsolation.TargetGroups = []workflow.TargetRegistration{{TargetGroupARN: "web-tg", Port: 80}}
		}, "web-tg"},
		{"no port", func(in *workflow.EvidenceInput) {
			in.PreIsolation.TargetGroups = []workflow.TargetRegistration{{TargetGroupARN: tgWebARN}}
		}, "port 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := simtest.Start(t, instanceScenario())
			pre := evidenceInput(workflow.PreIsolationState{Record: record()})
			tt.change(&pre)
			rel := releaseInput(pre.PreIsolation)
			rel.InstanceID, rel.ExecutionName = pre.InstanceID, pre.ExecutionName
			for step, run := range map[string]func() error{
				"preserve": func() error { _, err := preserve(srv, evidence.AllParts).Handle(ctx, pre); return err },
				"restore":  func() error { _, err := restorer(srv).Handle(ctx, rel); return err },
			} {
				err := run()
				if !isA[*steperr.InvalidInput](err) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: error = %T %v, want InvalidInput naming %s", step, err, err, tt.want)
				}
			}
			if calls := srv.Calls(); len(calls) > 0 {
				t.Errorf("calls before refusing: %d", len(calls))
			}
		})
	}
}

func TestSettingsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    evidence.Settings
		wantErr string
	}{
		{name: "unset: every part on", env: map[string]string{}, want: evidence.AllParts},
		{name: "true", env: map[string]string{evidence.EnvKeepVolumes: "true"}, want: evidence.AllParts},
		{name: "two off", env: map[string]string{evidence.EnvDetachAutoScaling: "false", evidence.EnvDeregisterTargets: "false"},
			want: evidence.Settings{TerminationProtection: true, StopOnShutdown: true, KeepVolumes: true}},
		{name: "not a boolean", env: map[string]string{evidence.EnvStopOnShutdown: "no"}, wantErr: evidence.EnvStopOnShutdown},
		{name: "capitalised", env: map[string]string{evidence.EnvTerminationProtection: "False"}, wantErr: evidence.EnvTerminationProtection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := evidence.SettingsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if !isA[*steperr.ConfigError](err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %T %v, want a ConfigError naming %s", err, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}
