package admission

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// The starter's environment (template.yaml AdmissionStarterFunction).
const (
	EnvStateMachineARN         = "ISOLATION_STATE_MACHINE_ARN"
	EnvWindow                  = "ADMISSION_WINDOW"
	EnvEvidenceStateMachineARN = "EVIDENCE_STATE_MACHINE_ARN"
	EnvEvidenceWindow          = "EVIDENCE_WINDOW"
)

// DefaultWindow is the bench's window (docs/PERFORMANCE.md, "Window size").
const DefaultWindow = 60

// DefaultEvidenceWindow is the stack's default EvidenceWindow (issue 16's design: the bench tunes it).
const DefaultEvidenceWindow = 4

// The wait within one invocation for room in the window: well inside the function's timeout (60 s in
// template.yaml), so that the events it could not start go back to the queue before Lambda ends it.
const (
	DefaultMaxWait = 30 * time.Second
	DefaultPoll    = 2 * time.Second
)

// SettingsFromEnv reads the starter's settings; a missing ARN or a window that is not a positive number is a
// steperr.ConfigError.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{StateMachineARN: getenv(EnvStateMachineARN), Window: DefaultWindow,
		EvidenceStateMachineARN: getenv(EnvEvidenceStateMachineARN), EvidenceWindow: DefaultEvidenceWindow,
		MaxWait: DefaultMaxWait, Poll: DefaultPoll}
	for _, w := range []struct {
		env string
		to  *int
	}{{EnvWindow, &s.Window}, {EnvEvidenceWindow, &s.EvidenceWindow}} {
		raw := getenv(w.env)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil {
			return Settings{}, &steperr.ConfigError{Reason: fmt.Sprintf("%s is %q, not a number", w.env, raw)}
		}
		if n < 1 {
			return Settings{}, &steperr.ConfigError{Reason: fmt.Sprintf("%s is %d, want at least 1", w.env, n)}
		}
		*w.to = n
	}
	switch {
	case s.StateMachineARN == "":
		return Settings{}, &steperr.ConfigError{Reason: EnvStateMachineARN + " is empty"}
	case s.EvidenceStateMachineARN == "":
		// Deployed, the isolation queues evidence jobs on every run: without it each would wait in the
		// dead-letter queue.
		return Settings{}, &steperr.ConfigError{Reason: EnvEvidenceStateMachineARN + " is empty"}
	}
	return s, nil
}
