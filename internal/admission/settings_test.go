package admission_test

import (
	"errors"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/admission"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// The starter's environment: the window defaults to the bench's 60, the evidence window to 4; a window that is not a positive number, or
// no state machine (isolation or evidence), is a ConfigError.
func TestSettingsFromEnv(t *testing.T) {
	const arn = "arn:aws:states:us-east-1:123456789012:stateMachine:ec2-isolation-isolation"
	const evidence = "arn:aws:states:us-east-1:123456789012:stateMachine:ec2-isolation-evidence"
	both := func(more ...string) map[string]string {
		m := map[string]string{admission.EnvStateMachineARN: arn, admission.EnvEvidenceStateMachineARN: evidence}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name                     string
		env                      map[string]string
		wantWindow, wantEvidence int
		wantErr                  bool
	}{
		{"default windows", both(), 60, 4, false},
		{"window set", both(admission.EnvWindow, "25"), 25, 4, false},
		{"evidence window set", both(admission.EnvEvidenceWindow, "7"), 60, 7, false},
		{"window zero", both(admission.EnvWindow, "0"), 0, 0, true},
		{"window not a number", both(admission.EnvWindow, "sixty"), 0, 0, true},
		{"evidence window zero", both(admission.EnvEvidenceWindow, "0"), 0, 0, true},
		{"evidence window not a number", both(admission.EnvEvidenceWindow, "four"), 0, 0, true},
		{"no state machine", map[string]string{admission.EnvEvidenceStateMachineARN: evidence}, 0, 0, true},
		{"no evidence state machine", map[string]string{admission.EnvStateMachineARN: arn}, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := admission.SettingsFromEnv(func(k string) string { return tc.env[k] })
			var ce *steperr.ConfigError
			switch {
			case tc.wantErr && !errors.As(err, &ce):
				t.Fatalf("error %v, want a ConfigError", err)
			case !tc.wantErr && err != nil:
				t.Fatal(err)
			case !tc.wantErr && (s.Window != tc.wantWindow || s.StateMachineARN != arn || s.MaxWait <= 0 || s.Poll <= 0 ||
				s.EvidenceWindow != tc.wantEvidence || s.EvidenceStateMachineARN != evidence):
				t.Errorf("settings %+v, want window %d, evidence window %d", s, tc.wantWindow, tc.wantEvidence)
			}
		})
	}
}
