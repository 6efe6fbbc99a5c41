package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// onSim starts the simulator with a built-in scenario (without its faults and delays) and points the standard AWS
// configuration at it, as an engineer's shell would with AWS_ENDPOINT_URL. It returns the server and the flags
// that name the stack's resources in it (the simulator has no CloudFormation: the settings come from flags).
func onSim(t *testing.T, scenario string, faults ...sim.ErrorFault) (*sim.Server, []string) {
	t.Helper()
	sc, err := loadScenario(scenario)
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults, sc.Behaviour = sim.Faults{Errors: faults}, sim.Behaviour{}
	for i := range sc.InstanceProfiles {
		sc.InstanceProfiles[i].VisibleAfter = 0
	}
	srv := simtest.Start(t, sc)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": srv.URL(), "AWS_REGION": srv.Region(), "AWS_PROFILE": "",
		"AWS_ACCESS_KEY_ID": "engineer", "AWS_SECRET_ACCESS_KEY": "simulated", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		t.Setenv(k, v)
	}
	return srv, []string{
		"--group-name", defaultGroupName, "--profile-name", defaultProfileName,
		"--topic-arn", "arn:aws:sns:" + srv.Region() + ":" + srv.AccountID() + ":" + sc.Topics[0].Name,
		"--incident-bucket", sc.Buckets[0].Name, "--tag-key", defaultTagKey, "--tag-value", defaultTagValue, "--tracking", "direct",
	}
}

// groupsOf reads the instance's ENIs' groups back through the SDK: "sg-… name" by ENI.
func groupsOf(t *testing.T, srv *sim.Server, instance string) map[string][]string {
	t.Helper()
	out, err := ec2.NewFromConfig(srv.AWSConfig("test")).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if err != nil || len(out.Reservations) != 1 {
		t.Fatalf("describe %s: %v", instance, err)
	}
	groups := map[string][]string{}
	for _, n := range out.Reservations[0].Instances[0].NetworkInterfaces {
		for _, g := range n.Groups {
			groups[aws.ToString(n.NetworkInterfaceId)] = append(groups[aws.ToString(n.NetworkInterfaceId)], aws.ToString(g.GroupId)+" "+aws.ToString(g.GroupName))
		}
	}
	return groups
}

// run, record and release against the simulator, as a responder would from a shell: run isolates, record shows
// the open incident (readable and --json), release restores the groups, record shows it released.
func TestRunRecordReleaseAgainstTheSimulator(t *testing.T) {
	const instance = "i-0a1b2c3d4e5f60718"
	srv, names := onSim(t, "release")
	before := groupsOf(t, srv, instance)

	code, out, errOut := cli(t, "", append([]string{"record", "--instance", instance}, names...)...)
	if code != exitFailed || !strings.Contains(errOut, "has no incident record") {
		t.Errorf("record before any isolation: exit %d, stderr %q; want 1, no record", code, errOut)
	}

	code, out, errOut = cli(t, "", append([]string{"run", "--instance", instance, "--yes"}, names...)...)
	if code != exitOK || !strings.Contains(out, "Isolated: yes") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	for eni, groups := range groupsOf(t, srv, instance) {
		if len(groups) != 1 || !strings.HasSuffix(groups[0], " "+defaultGroupName) {
			t.Errorf("after run, %s carries %v, want only %s", eni, groups, defaultGroupName)
		}
	}

	code, out, errOut = cli(t, "", append([]string{"record", "--instance", instance}, names...)...)
	if code != exitOK || !strings.Contains(out, "Incident 1 of 1: opened ") || !strings.Contains(out, "OPEN (the instance is isolated)") {
		t.Errorf("record after run: exit %d\n%s\n%s", code, out, errOut)
	}
	for eni, groups := range before {
		if !strings.Contains(out, eni) || !strings.Contains(out, strings.Fields(groups[0])[0]) {
			t.Errorf("record lacks %s's pre-isolation groups %v:\n%s", eni, groups, out)
		}
	}
	code, out, _ = cli(t, "", append([]string{"record", "--instance", instance, "--json"}, names...)...)
	var file workflow.IncidentFile
	if err := json.Unmarshal([]byte(out), &file); code != exitOK || err != nil || len(file.Incidents) != 1 || file.Incidents[0].ReleasedAt != nil {
		t.Errorf("record --json: exit %d, %v, %+v; want one open incident", code, err, file)
	}

	code, out, errOut = cli(t, "", append([]string{"release", "--instance", instance, "--yes"}, names...)...)
	if code != exitOK {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errOut)
	}
	after := groupsOf(t, srv, instance)
	for eni, groups := range before {
		if strings.Join(after[eni], ",") != strings.Join(groups, ",") {
			t.Errorf("after release %s carries %v, want %v as before", eni, after[eni], groups)
		}
	}
	code, out, _ = cli(t, "", append([]string{"record", "--instance", instance}, names...)...)
	if code != exitOK || !strings.Contains(out, "released ") || strings.Contains(out, "OPEN") {
		t.Errorf("record after release: exit %d\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := cli(t, "", "--version")
	if code != exitOK || !strings.HasPrefix(out, "isolation ") || !strings.Contains(out, "go1.") {
		t.Errorf("--version: exit %d, %q", code, out)
	}
}

// A failed local run says to run the command again, in the notification and on stderr: there is no Step
// Functions execution to redrive (issue 15, item 4). Running it again, the fault gone, isolates.
func TestFailedRunSaysRunAgainNotRedrive(t *testing.T) {
	const instance = "i-0a1b2c3d4e5f60718"
	denied := sim.ErrorFault{Service: "ec2", Action: "CreateSnapshots", Code: "UnauthorizedOperation", Status: 403,
		Message: "You are not authorized to perform this operation.", Count: 1}
	_, names := onSim(t, "release", denied)
	args := append([]string{"run", "--instance", instance, "--yes"}, names...)
	code, out, errOut := cli(t, "", args...)
	if code != exitFailed {
		t.Fatalf("run with CreateSnapshots denied: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	rerun := commandLine("run", args[1:])
	for what, text := range map[string]string{"stdout (the notification)": out, "stderr": errOut} {
		if strings.Contains(text, "redrive-execution") {
			t.Errorf("%s advises redrive-execution for a local run:\n%s", what, text)
		}
		if !strings.Contains(text, "run the command again") && !strings.Contains(text, "run the same command again") || !strings.Contains(text, rerun) {
			t.Errorf("%s does not say to run %q again:\n%s", what, rerun, text)
		}
	}
	if code, out, errOut := cli(t, "", args...); code != exitOK || !strings.Contains(out, "Isolated: yes") {
		t.Errorf("the same command again: exit %d\n%s\n%s", code, out, errOut)
	}
}

// The plan lists every change run makes, grouped by resource, before the question (issue 15, item 1): the
// target groups it deregisters (a healthy target was deregistered without being listed), the Auto Scaling
// detach, the revoking policy, termination protection, shutdown behaviour, delete-on-termination, the S3 record.
// Not confirmed, nothing changes.
func TestRunPlanListsEveryChange(t *testing.T) {
	const instance = "i-0a1b2c3d4e5f60718"
	srv, names := onSim(t, "release")
	before := groupsOf(t, srv, instance)
	code, out, errOut := cli(t, "no\n", append([]string{"run", "--instance", instance}, names...)...)
	if code != exitDeclined {
		t.Fatalf("exit %d, want 3 (not confirmed)\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"  instance " + instance + ":",
		"    termination protection: off -> on",
		"    shutdown behaviour: terminate -> stop",
		`    instance profile: arn:aws:iam::123456789012:instance-profile/web-app -> "ec2-isolation-quarantine"`,
		"    vol-0a1b2c3d4e5f00001 (/dev/xvda): delete on termination on -> off; snapshotted",
		"    Auto Scaling group web-asg: " + instance + " detached, desired capacity kept",
		"/web-https/",
		" port 443: deregistered",
		" port 8443: deregistered",
		"inline policy ec2-isolation-revoke-" + instance + " added",
		"    s3://ec2-isolation-incidents-123456789012/incidents/123456789012/us-east-1/" + instance + ".json: the incident record written",
		"    notification published to arn:aws:sns:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "Every change listed above is made.") {
		t.Errorf("the question does not refer to the plan: %s", errOut)
	}
	if after := groupsOf(t, srv, instance); !cmp.Equal(before, after) {
		t.Errorf("not confirmed, yet the ENIs changed: %v -> %v", before, after)
	}
}
