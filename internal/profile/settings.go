package profile

import (
	"fmt"
	"regexp"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// EnvIsolationProfileName names the isolation instance profile (a stack output of the template).
const EnvIsolationProfileName = "ISOLATION_PROFILE_NAME"

// Settings of both profile steps. Disassociate needs the name too: on a re-run (redrive of the containment
// branch) the isolation profile is already attached and must be left alone.
type Settings struct {
	// IsolationProfileName is the name (not the ARN, no path) of the isolation instance profile.
	IsolationProfileName string
}

// IAM instance profile names: 1-128 of [A-Za-z0-9+=,.@_-].
var profileNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

// SettingsFromEnv reads the settings from the environment (os.Getenv in a Lambda).
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{IsolationProfileName: getenv(EnvIsolationProfileName)}
	return s, s.Check()
}

// Check reports a steperr.ConfigError when the name is missing or cannot be an instance profile name.
func (s Settings) Check() error {
	switch {
	case s.IsolationProfileName == "":
		return &steperr.ConfigError{Reason: EnvIsolationProfileName + " is not set"}
	case !profileNamePattern.MatchString(s.IsolationProfileName):
		return &steperr.ConfigError{Reason: fmt.Sprintf(
			"%s %q is not an instance profile name (a name, not an ARN or path)", EnvIsolationProfileName, s.IsolationProfileName)}
	}
	return nil
}
