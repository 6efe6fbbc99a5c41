package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// simulateJSON runs `isolation simulate --json ARGS` and decodes its report.
func simulateJSON(t *testing.T, args ...string) (result, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"simulate", "--json", "--speed", "20"}, args...), &out, &errOut)
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("exit %d, output is not the JSON report: %v\nstdout: %s\nstderr: %s", code, err, out.String(), errOut.String())
	}
	return res, code
}

// isolated checks the instance's final state as the responder needs it: every ENI on exactly one group, the
// isolation group; only the isolation profile; one snapshot per volume.
func isolated(t *testing.T, res result, volumes int) {
	t.Helper()
	if res.After == nil {
		t.Fatal("no final state of the instance")
	}
	if len(res.After.NetworkInterfaces) != len(res.Before.NetworkInterfaces) {
		t.Errorf("ENIs before %d, after %d", len(res.Before.NetworkInterfaces), len(res.After.NetworkInterfaces))
	}
	for _, n := range res.After.NetworkInterfaces {
		if len(n.Groups) != 1 || !strings.HasSuffix(n.Groups[0], "("+defaultGroupName+")") {
			t.Errorf("%s carries %v, want only the isolation group", n.ID, n.Groups)
		}
	}
	// The new association may still be settling (associating) when the execution ends: EC2 associates
	// asynchronously, and the default scenario takes 300 ms of simulated time for it.
	arn := "arn:aws:iam::123456789012:instance-profile/" + defaultProfileName
	if got := res.After.Profiles; !cmp.Equal(got, []string{arn + " (associated)"}) && !cmp.Equal(got, []string{arn + " (associating)"}) {
		t.Errorf("profiles %v, want only %s (associated or associating)", got, arn)
	}
	if len(res.After.Snapshots) != volumes {
		t.Errorf("snapshots %v, want one per volume (%d)", res.After.Snapshots, volumes)
	}
}

func TestSimulateDefaultIsolates(t *testing.T) {
	res, code := simulateJSON(t)
	if code != 0 {
		t.Fatalf("exit %d, want 0: %+v", code, res.Executions)
	}
	isolated(t, res, 2)
	if len(res.Notifications) != 1 || !strings.Contains(res.Notifications[0].Subject, "SUCCEEDED") {
		t.Errorf("notifications %+v, want one success", res.Notifications)
	}
	if res.Notifications[0].Default == "" {
		t.Error("no default (Chatbot) body in the notification")
	}
	// A responder knows the stack's parameters and the command's flags, not the functions' environment.
	if m := envName.FindString(res.Notifications[0].Email); m != "" {
		t.Errorf("the notification names the environment variable %s, want the stack parameter's name", m)
	}
}

var envName = regexp.MustCompile(`\b[A-Z]+_[A-Z_]+\b`)

func TestSimulatePermanentFailureExitsNonZeroAndNotifies(t *testing.T) {
	res, code := simulateJSON(t, "--scenario", "missing-profile")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	e := res.Executions[0]
	if e.Status != asl.StatusFailed || e.Error != "IsolationFailed" {
		t.Errorf("execution %s %s, want FAILED IsolationFailed", e.Status, e.Error)
	}
	if len(res.Notifications) != 1 || !strings.Contains(res.Notifications[0].Email, `FAILED at "Attach isolation profile"`) {
		t.Errorf("notifications %+v, want one naming the failed state", res.Notifications)
	}
	// Network containment does not depend on the IAM branch, and the evidence is kept.
	for _, n := range res.After.NetworkInterfaces {
		if len(n.Groups) != 1 || !strings.HasSuffix(n.Groups[0], "("+defaultGroupName+")") {
			t.Errorf("%s carries %v, want only the isolation group", n.ID, n.Groups)
		}
	}
	if len(res.After.Snapshots) != 2 {
		t.Errorf("snapshots %v, want one per volume", res.After.Snapshots)
	}
}

func TestSimulateRedriveAfterTheFaultClears(t *testing.T) {
	res, code := simulateJSON(t, "--scenario", "redrive", "--redrive")
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	var got []asl.Status
	for _, e := range res.Executions {
		got = append(got, e.Status)
	}
	if want := []asl.Status{asl.StatusFailed, asl.StatusSucceeded}; !cmp.Equal(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if first := res.Executions[1].States[0].Name; first != "Notify failure" {
		t.Errorf("the redrive started at %q, want the failed state Notify failure", first)
	}
	isolated(t, res, 2)
	if len(res.Notifications) != 2 {
		t.Errorf("%d notifications, want the failure then the success", len(res.Notifications))
	}
}

func TestSimulateRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"simulate", "--speed", "0"}, {"simulate", "extra"}, {"nope"}, {}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
}

// Bad input is refused before any execution starts (exit 2, nothing on stdout), with a message that says what
// and where, in the flags' own names (issue 15, item 8).
func TestSimulateRefusesBadInputBeforeAnyExecution(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notJSON := write("event.txt", "Isolate=true\n")
	badScenario := write("bad.json", "{\n  \"vpcs\": [\n    {\"id\": \"vpc-1\",}\n  ]\n}\n")
	unknownField := write("unknown.json", "{\n  \"vpcs\": [],\n    \"bogus\": 1\n}\n")
	tests := []struct {
		args []string
		want []string // in stderr
	}{
		{[]string{"--speed", "NaN"}, []string{"--speed NaN", "from 0.01 to 1000"}},
		{[]string{"--speed", "Inf"}, []string{"--speed +Inf"}},
		{[]string{"--speed", "1e300"}, []string{"--speed 1e+300"}},
		{[]string{"--speed", "-1"}, []string{"--speed -1"}},
		{[]string{"--tracking", "untrack"}, []string{`--tracking "untrack"`, "ConnectionTracking"}},
		{[]string{"--event", notJSON}, []string{notJSON + ":1:1 is not a JSON object"}},
		{[]string{"--scenario", badScenario}, []string{badScenario + ":3:20"}},
		{[]string{"--scenario", unknownField}, []string{unknownField + ":3:5", `unknown field "bogus"`}},
		{[]string{"--scenario", "no-such-scenario"}, []string{`--scenario "no-such-scenario" is neither a built-in scenario (`, "default", "missing-profile", "redrive", "release"}},
		{[]string{"--tag-key", ""}, []string{"IsolationTagKey (--tag-key) is not set"}},
		{[]string{"--group-name", ""}, []string{"IsolationGroupName (--group-name)"}},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"simulate"}, tt.args...), &out, &errOut)
		if code != 2 || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q; want 2 and no report (no execution)", tt.args, code, out.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(errOut.String(), w) {
				t.Errorf("%q: stderr %q lacks %q", tt.args, errOut.String(), w)
			}
		}
		if m := envName.FindString(errOut.String()); m != "" {
			t.Errorf("%q: stderr names the environment variable %s: %s", tt.args, m, errOut.String())
		}
	}
}

// Live progress (issue 15, item 5): piped, every state of the execution is a plain "started" line and a "done"
// line on stderr as it happens (the report stays on stdout); --json adds nothing.
func TestSimulateShowsProgressUnlessJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"simulate", "--speed", "20"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	progress := errOut.String()
	for _, state := range []string{"Validate and record", "Contain", "Apply isolation security group", "Verify containment", "Snapshot volumes", "Notify success"} {
		started := regexp.MustCompile(`(?m)^  \+\S+\s+started\s+` + regexp.QuoteMeta(state) + `$`)
		done := regexp.MustCompile(`(?m)^  \+\S+\s+done\s+` + regexp.QuoteMeta(state) + ` in \S+$`)
		if !started.MatchString(progress) || !done.MatchString(progress) {
			t.Errorf("progress lacks the start or the end of %q:\n%s", state, progress)
		}
	}
	if !strings.Contains(progress, "SUCCEEDED") || strings.Contains(out.String(), "started ") {
		t.Errorf("want the execution's end on stderr and no progress on stdout; stderr:\n%s", progress)
	}
	if strings.Contains(progress, "\033[") {
		t.Error("terminal control sequences in piped output")
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"simulate", "--speed", "20", "--json"}, &out, &errOut); code != 0 || errOut.Len() != 0 {
		t.Errorf("--json: exit %d, stderr %q; want 0 and nothing", code, errOut.String())
	}
}
