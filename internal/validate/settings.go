package validate

import (
	"fmt"
	"regexp"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// Environment variables the function reads (stack parameters).
const (
	EnvTagKey   = "TAG_KEY"
	EnvTagValue = "TAG_VALUE"
	// EnvProfileName is the isolation instance profile's name: associated, it is an isolation artifact.
	EnvProfileName = "ISOLATION_PROFILE_NAME"
)

// Settings says which tag isolates an instance (both case-sensitive, as EC2 tags are), and which isolation
// groups to look up with the instance (the warm path: when they are usable, Ensure is skipped).
type Settings struct {
	TagKey   string
	TagValue string
	// Groups are the settings of "Ensure isolation security group" (ISOLATION_GROUP_NAME, CONNECTION_TRACKING),
	// read by its own parser. Only the handler needs them: ParseEvent does not.
	Groups secgroup.Settings
	// ProfileName is the isolation instance profile's name (ISOLATION_PROFILE_NAME); empty, an associated
	// isolation profile is not recognised as an isolation artifact.
	ProfileName string
}

// tagKeyPattern is what EC2 accepts as a tag key; the aws: prefix is reserved to AWS.
var tagKeyPattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)

// SettingsFromEnv reads the settings from the environment (os.Getenv in a Lambda): TAG_KEY, TAG_VALUE,
// ISOLATION_PROFILE_NAME, and
// secgroup's ISOLATION_GROUP_NAME and CONNECTION_TRACKING.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{TagKey: getenv(EnvTagKey), TagValue: getenv(EnvTagValue), ProfileName: getenv(EnvProfileName)}
	if err := s.Check(); err != nil {
		return s, err
	}
	g, err := secgroup.SettingsFromEnv(getenv)
	s.Groups = g
	return s, err
}

// Check reports a steperr.ConfigError when the tag cannot be one EC2 would carry. (The group settings are
// checked by the handler: ParseEvent's callers need only the tag.)
func (s Settings) Check() error {
	switch {
	case s.TagKey == "":
		return &steperr.ConfigError{Reason: EnvTagKey + " is not set"}
	case !tagKeyPattern.MatchString(s.TagKey):
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s %q is not a valid EC2 tag key", EnvTagKey, s.TagKey)}
	case len(s.TagKey) >= 4 && s.TagKey[:4] == "aws:":
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s %q uses the reserved aws: prefix", EnvTagKey, s.TagKey)}
	case s.TagValue == "":
		// An empty value would isolate every instance that merely carries the key.
		return &steperr.ConfigError{Reason: EnvTagValue + " is not set"}
	case len([]rune(s.TagValue)) > 256:
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s is longer than 256 characters", EnvTagValue)}
	}
	return nil
}
