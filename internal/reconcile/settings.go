package reconcile

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/verify"
)

// Environment variables of the reconciler (besides verify's TAG_KEY, TAG_VALUE, ISOLATION_GROUP_NAME,
// CONNECTION_TRACKING, ISOLATION_PROFILE_NAME).
const (
	EnvReleaseTagValue      = "RELEASE_TAG_VALUE"
	EnvIsolationMachineARN  = "ISOLATION_STATE_MACHINE_ARN"
	EnvReleaseMachineARN    = "RELEASE_STATE_MACHINE_ARN"
	EnvIncidentBucket       = "INCIDENT_BUCKET"
	EnvPrecreateGroups      = "PRECREATE_GROUPS"
	EnvMaxStarts            = "RECONCILE_MAX_STARTS"
	EnvMaxRunning           = "RECONCILE_MAX_RUNNING"
	DefaultMaxStarts        = 20
	DefaultMaxRunning       = 50
	maxConfiguredExecutions = 1000
)

// Settings of the reconciler.
type Settings struct {
	Verify       verify.Settings
	ReleaseValue string
	// The two state machines it may start (the role allows states:StartExecution on these only).
	IsolationMachineARN, ReleaseMachineARN string
	// Bucket holds the incident records: a release is started only for an instance under an open incident.
	Bucket string
	// PrecreateGroups keeps an empty isolation group in every VPC that has instances.
	PrecreateGroups bool
	// MaxStarts bounds the executions one pass starts; MaxRunning is the number of running executions (both
	// machines) at or above which a pass starts none: a tagging storm is being contained, and the reconciler
	// must not compete with it for the EC2 API. What is deferred is started by a later pass.
	MaxStarts, MaxRunning int
}

var machineARNPattern = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):states:([a-z0-9-]+):([0-9]{12}):stateMachine:[A-Za-z0-9_-]{1,80}$`)

// SettingsFromEnv reads the settings (os.Getenv in Lambda). A missing or malformed one is a steperr.ConfigError.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	v, err := verify.SettingsFromEnv(getenv)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{Verify: v, ReleaseValue: getenv(EnvReleaseTagValue), IsolationMachineARN: getenv(EnvIsolationMachineARN),
		ReleaseMachineARN: getenv(EnvReleaseMachineARN), Bucket: getenv(EnvIncidentBucket), MaxStarts: DefaultMaxStarts,
		MaxRunning: DefaultMaxRunning}
	switch p := getenv(EnvPrecreateGroups); p {
	case "", "true":
		s.PrecreateGroups = true
	case "false":
	default:
		return Settings{}, &steperr.ConfigError{Reason: fmt.Sprintf("%s is %q, want true or false", EnvPrecreateGroups, p)}
	}
	for _, n := range []struct {
		env string
		to  *int
	}{{EnvMaxStarts, &s.MaxStarts}, {EnvMaxRunning, &s.MaxRunning}} {
		if raw := getenv(n.env); raw != "" {
			v, err := strconv.Atoi(raw)
			if err != nil {
				return Settings{}, &steperr.ConfigError{Reason: fmt.Sprintf("%s is %q, not a number", n.env, raw)}
			}
			*n.to = v
		}
	}
	return s, s.Check()
}

// Check reports a steperr.ConfigError for settings the reconciler cannot act on.
func (s Settings) Check() error {
	bad := func(format string, a ...any) error { return &steperr.ConfigError{Reason: fmt.Sprintf(format, a...)} }
	if err := s.Verify.Check(); err != nil {
		return err
	}
	iso, rel := machineARNPattern.FindStringSubmatch(s.IsolationMachineARN), machineARNPattern.FindStringSubmatch(s.ReleaseMachineARN)
	switch {
	case s.ReleaseValue == "" || s.ReleaseValue == s.Verify.TagValue:
		return bad("%s %q must be set and differ from the isolation value %q", EnvReleaseTagValue, s.ReleaseValue, s.Verify.TagValue)
	case iso == nil:
		return bad("%s %q is not a state machine ARN", EnvIsolationMachineARN, s.IsolationMachineARN)
	case rel == nil:
		return bad("%s %q is not a state machine ARN", EnvReleaseMachineARN, s.ReleaseMachineARN)
	case iso[1] != rel[1] || iso[2] != rel[2] || iso[3] != rel[3]:
		return bad("the state machines %s and %s are not of one partition, region and account", s.IsolationMachineARN, s.ReleaseMachineARN)
	case s.Bucket == "":
		return bad("%s is not set", EnvIncidentBucket)
	case s.MaxStarts < 0 || s.MaxStarts > maxConfiguredExecutions:
		return bad("%s %d is not within 0..%d", EnvMaxStarts, s.MaxStarts, maxConfiguredExecutions)
	case s.MaxRunning < 1 || s.MaxRunning > maxConfiguredExecutions:
		return bad("%s %d is not within 1..%d", EnvMaxRunning, s.MaxRunning, maxConfiguredExecutions)
	}
	return nil
}

// where is the partition, region and account of the stack, from the isolation state machine's ARN.
func (s Settings) where() (partition, region, account string) {
	m := machineARNPattern.FindStringSubmatch(s.IsolationMachineARN)
	return m[1], m[2], m[3]
}
