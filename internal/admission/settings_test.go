package admission_test

import (
	"errors"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/admission"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// The starter's environment: the window defaults to the bench's 60; a window that is not a positive number, or
// no state machine, is a ConfigError.
func TestSettingsFromEnv(t *testing.T) {
	const arn = "arn:aws:states:us-east-1:123456789012:stateMachine:ec2-isolation-isolation"
	for _, tc := range []struct {
		name       string
		env        map[string]string
		wantWindow int
		wantErr    bool
	}{
		{"default window", map[string]string{admission.EnvStateMachineARN: arn}, 60, false},
		{"window set", map[string]string{admission.EnvStateMachineARN: arn, admission.EnvWindow: "25"}, 25, false},
		{"window zero", map[string]string{admission.EnvStateMachineARN: arn, admission.EnvWindow: "0"}, 0, true},
		{"window not a number", map[string]string{admission.EnvStateMachineARN: arn, admission.EnvWindow: "sixty"}, 0, true},
		{"no state machine", map[string]string{admission.EnvWindow: "60"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := admission.SettingsFromEnv(func(k string) string { return tc.env[k] })
			var ce *steperr.ConfigError
			switch {
			case tc.wantErr && !errors.As(err, &ce):
				t.Fatalf("error %v, want a ConfigError", err)
			case !tc.wantErr && err != nil:
				t.Fatal(err)
			case !tc.wantErr && (s.Window != tc.wantWindow || s.StateMachineARN != arn || s.MaxWait <= 0 || s.Poll <= 0):
				t.Errorf("settings %+v, want window %d", s, tc.wantWindow)
			}
		})
	}
}
