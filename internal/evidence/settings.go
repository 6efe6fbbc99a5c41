package evidence

import (
	"fmt"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// The environment variables of "Preserve evidence", one per part (stack parameters). "false" turns the part off;
// unset or "true" leaves it on.
const (
	EnvTerminationProtection = "ENABLE_TERMINATION_PROTECTION"
	EnvStopOnShutdown        = "STOP_ON_SHUTDOWN"
	EnvKeepVolumes           = "KEEP_VOLUMES"
	EnvDetachAutoScaling     = "DETACH_AUTO_SCALING"
	EnvDeregisterTargets     = "DEREGISTER_TARGETS"
)

// Settings say which parts of "Preserve evidence" run.
type Settings struct {
	// TerminationProtection turns termination protection (DisableApiTermination) on.
	TerminationProtection bool
	// StopOnShutdown sets the instance-initiated shutdown behaviour to stop: a shutdown from inside the instance
	// (an attacker covering tracks) must not terminate it.
	StopOnShutdown bool
	// KeepVolumes turns delete-on-termination off for every EBS volume.
	KeepVolumes bool
	// DetachAutoScaling detaches the instance from its Auto Scaling group, which would otherwise replace the
	// instance it finds unhealthy by terminating it.
	DetachAutoScaling bool
	// DeregisterTargets deregisters the instance from every target group the record lists.
	DeregisterTargets bool
}

// AllParts is the default: every part on.
var AllParts = Settings{true, true, true, true, true}

// SettingsFromEnv reads the settings (os.Getenv in a Lambda). A value other than "", "true" or "false" is a
// steperr.ConfigError naming the variable.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	var s Settings
	for _, v := range []struct {
		name string
		dst  *bool
	}{
		{EnvTerminationProtection, &s.TerminationProtection},
		{EnvStopOnShutdown, &s.StopOnShutdown},
		{EnvKeepVolumes, &s.KeepVolumes},
		{EnvDetachAutoScaling, &s.DetachAutoScaling},
		{EnvDeregisterTargets, &s.DeregisterTargets},
	} {
		switch val := getenv(v.name); strings.TrimSpace(val) {
		case "", "true":
			*v.dst = true
		case "false":
			*v.dst = false
		default:
			return Settings{}, &steperr.ConfigError{Reason: fmt.Sprintf("%s is %q, want true or false", v.name, val)}
		}
	}
	return s, nil
}
