package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/credentials"
	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
)

// withoutReleasedPolicy is what a release leaves on the role compared with before the isolation, minus the
// released policy (issue 13: it still denies the credentials issued before the release, until it expires): the
// revoking policy must have been replaced by it, never left as it was.
func withoutReleasedPolicy(t *testing.T, r inspect.Restorable) inspect.Restorable {
	t.Helper()
	if r.Role == nil {
		return r
	}
	role := *r.Role
	role.Inline = maps.Clone(role.Inline)
	for name, doc := range role.Inline {
		if !strings.HasPrefix(name, credentials.PolicyPrefix) {
			continue
		}
		if _, _, ok := credentials.ReleasedUntil(doc); !ok {
			t.Errorf("after release, role %s still has the revoking policy %s: %s", role.Name, name, doc)
		}
		delete(role.Inline, name)
	}
	r.Role = &role
	return r
}
