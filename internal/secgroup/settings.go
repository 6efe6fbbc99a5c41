// Package secgroup contains the network containment steps of the isolation workflow: "Ensure isolation security
// group" (Ensure: find or create, in every VPC of the instance, a security group with no rules) and "Apply
// isolation security group" (Apply: make that group the only group of every ENI of the instance).
//
// Connection tracking: replacing an ENI's groups does not cut the connections its old groups tracked. In
// untrack-first mode Ensure also keeps, per VPC, an allow-all group (all traffic in and out, 0.0.0.0/0 and ::/0),
// and Apply first puts every ENI on it, which turns the tracked flows into untracked ones, then on the isolation
// group, which drops them. The cost: for the moment between the two calls the ENIs accept any inbound traffic.
// What even this cannot cut: ICMP is always tracked; flows through a Network or Gateway Load Balancer, a NAT
// gateway or a transit gateway are tracked automatically.
package secgroup

import (
	"fmt"
	"regexp"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// Environment variables the functions read (stack parameters).
const (
	EnvGroupName          = "ISOLATION_GROUP_NAME"
	EnvConnectionTracking = "CONNECTION_TRACKING"
)

// Mode is how Apply deals with connection tracking.
type Mode string

const (
	// ModeDirect replaces the ENIs' groups with the isolation group in one call. Tracked connections survive.
	ModeDirect Mode = "direct"
	// ModeUntrackFirst applies the allow-all group first, then the isolation group (see the package comment).
	ModeUntrackFirst Mode = "untrack-first"
)

// UntrackSuffix is appended to the isolation group's name to name the allow-all group of untrack-first mode.
const UntrackSuffix = "-untrack"

// Tags of the groups Ensure creates.
const (
	TagManaged = "ec2-isolation:managed"
	TagRole    = "ec2-isolation:role"
)

// Settings of "Ensure isolation security group".
type Settings struct {
	// GroupName is the isolation group's name, the same in every VPC.
	GroupName string
	Mode      Mode
}

// DerivedSuffix is appended to a group's name (the isolation group's, the allow-all group's) to name the group of
// ours used in a VPC where a group that is not ours already has the name. Deterministic, so that concurrent
// executions converge on the same group.
const DerivedSuffix = "-managed"

// DerivedName is the name of the group of ours used where a group that is not ours holds name: name and the
// suffix, name cut short where both would exceed EC2's 255 characters.
func DerivedName(name string) string {
	return name[:min(len(name), 255-len(DerivedSuffix))] + DerivedSuffix
}

// UntrackGroupName is the name of the allow-all group of untrack-first mode.
func (s Settings) UntrackGroupName() string { return s.GroupName + UntrackSuffix }

// groupNamePattern is what EC2 accepts in a VPC security group name (up to 255 characters; the untrack suffix
// must fit too).
var groupNamePattern = regexp.MustCompile(`^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+$`)

// SettingsFromEnv reads the settings of "Ensure isolation security group" (os.Getenv in a Lambda).
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	mode, err := ModeFromEnv(getenv)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{GroupName: getenv(EnvGroupName), Mode: mode}
	return s, s.Check()
}

// Check reports a steperr.ConfigError when EC2 would refuse the group name.
func (s Settings) Check() error {
	name := s.GroupName
	switch {
	case name == "":
		return &steperr.ConfigError{Reason: EnvGroupName + " is not set"}
	case len(name)+len(UntrackSuffix) > 255:
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s is longer than %d characters", EnvGroupName, 255-len(UntrackSuffix))}
	case len(name) >= 3 && name[:3] == "sg-":
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s %q: EC2 refuses group names starting with sg-", EnvGroupName, name)}
	case !groupNamePattern.MatchString(name):
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s %q has characters EC2 refuses in a group name (allowed: a-z A-Z 0-9 spaces ._-:/()#,@[]+=&;{}!$*)", EnvGroupName, name)}
	case s.Mode != ModeDirect && s.Mode != ModeUntrackFirst:
		return &steperr.ConfigError{Reason: fmt.Sprintf("connection tracking mode %q is not %s or %s", s.Mode, ModeDirect, ModeUntrackFirst)}
	}
	return nil
}

// ModeFromEnv reads CONNECTION_TRACKING: "direct" (the default when unset) or "untrack-first". It is the only
// setting of "Apply isolation security group".
func ModeFromEnv(getenv func(string) string) (Mode, error) {
	switch v := Mode(getenv(EnvConnectionTracking)); v {
	case "", ModeDirect:
		return ModeDirect, nil
	case ModeUntrackFirst:
		return ModeUntrackFirst, nil
	default:
		return "", &steperr.ConfigError{Reason: fmt.Sprintf("%s %q is not %s or %s", EnvConnectionTracking, v, ModeDirect, ModeUntrackFirst)}
	}
}
