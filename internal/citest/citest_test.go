package citest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/citest"
)

// TestSkipf runs a test that calls Skipf in a child process, with and without CI=true.
func TestSkipf(t *testing.T) {
	if os.Getenv("CITEST_CHILD") == "1" {
		citest.Skipf(t, "needs %s", "something absent")
		return
	}
	for _, tt := range []struct {
		ci         string
		wantFail   bool
		wantOutput string
	}{
		{"", false, "--- SKIP: TestSkipf"},
		{"false", false, "--- SKIP: TestSkipf"},
		{"true", true, "needs something absent (CI=true: a skip in CI is a failure)"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipf$", "-test.v")
		cmd.Env = append(os.Environ(), "CITEST_CHILD=1", "CI="+tt.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tt.wantFail || !strings.Contains(string(out), tt.wantOutput) {
			t.Errorf("CI=%q: failed %v, want %v; output:\n%s", tt.ci, failed, tt.wantFail, out)
		}
	}
}
