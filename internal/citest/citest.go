// Package citest makes a test that cannot run here skip on a developer's machine and fail in CI (CI=true),
// where everything a test needs is installed: a skip in CI is a failure.
package citest

import (
	"os"
	"testing"
)

// InCI tells whether the tests run in CI (the CI system sets CI=true; .ci/run too).
func InCI() bool { return os.Getenv("CI") == "true" }

// Skipf skips the test, or in CI fails it with the same message.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" (CI=true: a skip in CI is a failure)", args...)
	}
	t.Skipf(format, args...)
}
