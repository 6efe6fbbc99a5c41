package admission

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// The starter's environment (template.yaml AdmissionStarterFunction).
const (
	EnvStateMachineARN = "ISOLATION_STATE_MACHINE_ARN"
	EnvWindow          = "ADMISSION_WINDOW"
)

// DefaultWindow is the bench's window (docs/PERFORMANCE.md, "Window size").
const DefaultWindow = 60

// The wait within one invocation for room in the window: well inside the function's timeout (60 s in
// template.yaml), so that the events it could not start go back to the queue before Lambda ends it.
const (
	DefaultMaxWait = 30 * time.Second
	DefaultPoll    = 2 * time.Second
)

// SettingsFromEnv reads the starter's settings; a missing ARN or a window that is not a positive number is a
// steperr.ConfigError.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{StateMachineARN: getenv(EnvStateMachineARN), Window: DefaultWindow, MaxWait: DefaultMaxWait, Poll: DefaultPoll}
	if raw := getenv(EnvWindow); raw != "" {
		w, err := strconv.Atoi(raw)
		if err != nil {
			return Settings{}, &steperr.ConfigError{Reason: fmt.Sprintf("%s is %q, not a number", EnvWindow, raw)}
		}
		s.Window = w
	}
	if s.StateMachineARN == "" {
		return Settings{}, &steperr.ConfigError{Reason: EnvStateMachineARN + " is empty"}
	}
	if s.Window < 1 {
		return Settings{}, &steperr.ConfigError{Reason: fmt.Sprintf("%s is %d, want at least 1", EnvWindow, s.Window)}
	}
	return s, nil
}
