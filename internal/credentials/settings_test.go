package credentials

import (
	"errors"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// The pattern matches as IAM matches the template's Resource arn:…:role/<pattern> against a role's ARN
// (arn:…:role/<path without leading slash><name>).
func TestMatchesAsIAMResource(t *testing.T) {
	tests := []struct {
		pattern, path, name string
		want                bool
	}{
		{"*", "/", "web", true},
		{"*", "/workloads/", "web", true}, // * spans slashes
		{"web", "/", "web", true},
		{"web", "/", "web2", false},
		{"web", "/a/", "web", false},
		{"app-*", "/", "app-web", true},
		{"app-*", "/workloads/", "app-web", false},
		{"workloads/*", "/workloads/", "web", true},
		{"workloads/*", "/workloads/deep/", "web", true},
		{"workloads/*", "/", "workloads", false},
		{"web-?", "/", "web-1", true},
		{"web-?", "/", "web-12", false},
		{"*-role", "/a/", "web-role", true},
		{"Web", "/", "web", false}, // case-sensitive, as ARN matching is
		{"a*b*c", "/", "aXbYbZc", true},
		{"a*b*c", "/", "aXbYbZ", false},
	}
	for _, tt := range tests {
		s := Settings{RevocableRoles: tt.pattern}
		if got := s.Matches(tt.path, tt.name); got != tt.want {
			t.Errorf("%q matches %s%s = %v, want %v", tt.pattern, tt.path, tt.name, got, tt.want)
		}
	}
}

func TestSettingsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Settings
		wantErr bool
	}{
		{"defaults to revoking", map[string]string{EnvRevocableRoles: "*"}, Settings{RevocableRoles: "*", Revoke: true}, false},
		{"turned off", map[string]string{EnvRevocableRoles: "app/*", EnvRevokeCredentials: "false"}, Settings{RevocableRoles: "app/*"}, false},
		{"pattern missing", map[string]string{}, Settings{}, true},
		{"leading slash", map[string]string{EnvRevocableRoles: "/workloads/*"}, Settings{}, true},
		{"space", map[string]string{EnvRevocableRoles: "a b"}, Settings{}, true},
		{"bad switch", map[string]string{EnvRevocableRoles: "*", EnvRevokeCredentials: "no"}, Settings{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SettingsFromEnv(func(k string) string { return tt.env[k] })
			var ce *steperr.ConfigError
			if tt.wantErr {
				if !errors.As(err, &ce) {
					t.Errorf("err = %v, want ConfigError", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
