package credentials

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/glob"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// Environment variables of the functions (stack parameters).
const (
	// EnvRevocableRoles is the pattern of the roles the stack may revoke (RevocableRoles).
	EnvRevocableRoles = "REVOCABLE_ROLES"
	// EnvRevokeCredentials turns revocation off ("false"); "Lift credential revocation" does not read it.
	EnvRevokeCredentials = "REVOKE_CREDENTIALS"
	// EnvStackRolePath is the path of the stack's own roles, /STACK/ (issue 13, item 11).
	EnvStackRolePath = "STACK_ROLE_PATH"
)

// Settings of "Revoke credentials" and "Lift credential revocation".
type Settings struct {
	// RevocableRoles is a pattern over a role's path and name as its ARN writes them after "role/" (path without
	// its leading slash): "*", "app-*", "workloads/*". The template puts the same text in the IAM Resource
	// arn:${Partition}:iam::${Account}:role/<pattern>, so Matches follows IAM's wildcards: * is any run of
	// characters, slashes included, ? is one character, case-sensitive.
	RevocableRoles string
	// Revoke is false when the stack turned revocation off: "Revoke credentials" skips.
	Revoke bool
	// StackRolePath is the path of the stack's own roles ("/STACK/"), never revoked whatever RevocableRoles says
	// (the template denies it too: a clear skip rather than an AccessDenied). "" for none.
	StackRolePath string
}

// rolePatternChars: what a role's path and name may hold (IAM: path [\x21-\x7E], name [\w+=,.@-]), plus the
// wildcards.
var rolePatternChars = regexp.MustCompile(`^[\x21-\x7E]{1,576}$`)

// SettingsFromEnv reads the settings (os.Getenv in a Lambda). REVOKE_CREDENTIALS is "true" (also when unset) or
// "false".
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{RevocableRoles: strings.TrimSpace(getenv(EnvRevocableRoles)), Revoke: true,
		StackRolePath: strings.TrimSpace(getenv(EnvStackRolePath))}
	switch v := strings.TrimSpace(getenv(EnvRevokeCredentials)); v {
	case "", "true":
	case "false":
		s.Revoke = false
	default:
		return s, &steperr.ConfigError{Reason: fmt.Sprintf("%s is %q, want true or false", EnvRevokeCredentials, v)}
	}
	return s, s.Check()
}

// Check reports a steperr.ConfigError when the pattern cannot be the suffix of a role ARN.
func (s Settings) Check() error {
	p := s.RevocableRoles
	switch {
	case p == "":
		return &steperr.ConfigError{Reason: EnvRevocableRoles + " is not set (use * for every role)"}
	case strings.HasPrefix(p, "/"):
		// In the ARN the path has no leading slash: role//x/* would match no role, and IAM would refuse every call.
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s %q starts with /: write it as in the role's ARN after role/, e.g. %q", EnvRevocableRoles, p, strings.TrimPrefix(p, "/"))}
	case !rolePatternChars.MatchString(p):
		return &steperr.ConfigError{Reason: fmt.Sprintf("%s %q holds characters no role path or name has", EnvRevocableRoles, p)}
	}
	return nil
}

// Matches reports whether the role with this path ("/" or "/a/b/") and name is among the revocable roles,
// as IAM matches the Resource arn:…:role/<pattern> against the role's ARN.
func (s Settings) Matches(path, name string) bool {
	return !s.StackRole(path) && glob.Match(s.RevocableRoles, RoleResource(path, name))
}

// StackRole reports whether a role with this path is one of the stack's own.
func (s Settings) StackRole(path string) bool {
	return s.StackRolePath != "" && strings.HasPrefix(path, s.StackRolePath)
}

// RoleResource is what follows "role/" in the role's ARN: its path without the leading slash, then its name.
func RoleResource(path, name string) string {
	return strings.TrimPrefix(path, "/") + name
}
