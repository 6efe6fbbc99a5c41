package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
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
	if code != exitFailed || out != "" || !strings.Contains(errOut, "has no incident record") {
		t.Errorf("record before any isolation: exit %d, stdout %q, stderr %q; want 1, no record", code, out, errOut)
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

// snapshotsOf are the instance's snapshots as EC2 describes them now (by volume).
func snapshotsOf(t *testing.T, srv *sim.Server, ids []string) []string {
	t.Helper()
	out, err := ec2.NewFromConfig(srv.AWSConfig("test")).DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("snapshot-id"), Values: ids}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range out.Snapshots {
		got = append(got, aws.ToString(s.SnapshotId))
	}
	return got
}

// isolation cleanup (issue 15, item 6): of a closed incident it lists the snapshots and the released credential
// policy, removes the policy once expired, deletes the snapshots only with --delete-snapshots and a confirmation;
// of an open incident (another instance still isolated) it touches nothing.
func TestCleanupTouchesOnlyClosedIncidents(t *testing.T) {
	const closed, open = "i-0a1b2c3d4e5f60718", "i-0a1b2c3d4e5f60719"
	srv, names := onSim(t, "release")
	for _, step := range [][]string{{"run", "--instance", closed}, {"release", "--instance", closed}, {"run", "--instance", open}} {
		if code, out, errOut := cli(t, "", append(append(step, "--yes"), names...)...); code != exitOK {
			t.Fatalf("%v: exit %d\n%s\n%s", step, code, out, errOut)
		}
	}
	snaps := func(id string) []string {
		var file workflow.IncidentFile
		_, out, _ := cli(t, "", append([]string{"record", "--instance", id, "--json"}, names...)...)
		if err := json.Unmarshal([]byte(out), &file); err != nil || len(file.Incidents) != 1 {
			t.Fatalf("record of %s: %v %s", id, err, out)
		}
		var ids []string
		for _, s := range file.Incidents[0].Snapshots {
			ids = append(ids, s.SnapshotID)
		}
		return ids
	}
	closedSnaps, openSnaps := snaps(closed), snaps(open)
	if len(closedSnaps) != 2 || len(openSnaps) == 0 {
		t.Fatalf("snapshots %v and %v, want two of the first instance's volumes and some of the second's", closedSnaps, openSnaps)
	}
	policy := func() string {
		doc, _ := inspectPolicy(t, srv, "web-app-role", "ec2-isolation-revoke-"+closed)
		return doc
	}

	// Within the 36 hours: the released policy is kept, the snapshots listed.
	code, out, errOut := cli(t, "", append([]string{"cleanup"}, names...)...)
	if code != exitOK || !strings.Contains(out, closed+" policy role web-app-role ec2-isolation-revoke-"+closed+": kept (denies the credentials issued before the release until ") ||
		!strings.Contains(out, open+" open incident: kept") || !strings.Contains(out, "2 snapshots of closed incidents kept") {
		t.Errorf("cleanup: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, s := range closedSnaps {
		if !strings.Contains(out, closed+" snapshot "+s+": kept") {
			t.Errorf("cleanup does not list %s:\n%s", s, out)
		}
	}
	for _, s := range openSnaps {
		if strings.Contains(out, s) {
			t.Errorf("cleanup lists %s of the open incident:\n%s", s, out)
		}
	}
	if policy() == "" {
		t.Error("the released policy was removed before it expired")
	}

	// Not confirmed: nothing deleted.
	if code, _, _ := cli(t, "no\n", append([]string{"cleanup", "--delete-snapshots"}, names...)...); code != exitDeclined {
		t.Errorf("--delete-snapshots not confirmed: exit %d, want 3", code)
	}
	if got := snapshotsOf(t, srv, closedSnaps); len(got) != 2 {
		t.Errorf("not confirmed, yet snapshots are gone: %v", got)
	}

	// 37 hours later, confirmed: the expired policy removed, the closed incident's snapshots deleted, the open one's kept.
	defer func(f func() time.Time) { cleanupNow = f }(cleanupNow)
	cleanupNow = func() time.Time { return time.Now().Add(37 * time.Hour) }
	code, out, errOut = cli(t, "delete\n", append([]string{"cleanup", "--delete-snapshots"}, names...)...)
	if code != exitOK || !strings.Contains(out, "ec2-isolation-revoke-"+closed+": removed (expired ") {
		t.Errorf("cleanup --delete-snapshots: exit %d\n%s\n%s", code, out, errOut)
	}
	if doc := policy(); doc != "" {
		t.Errorf("the expired policy is still on the role: %s", doc)
	}
	if got := snapshotsOf(t, srv, closedSnaps); len(got) != 0 {
		t.Errorf("snapshots of the closed incident left: %v", got)
	}
	if got := snapshotsOf(t, srv, openSnaps); len(got) != len(openSnaps) {
		t.Errorf("snapshots of the open incident: %v, want all of %v kept", got, openSnaps)
	}
	if _, ok := inspectPolicy(t, srv, "web-app-role", "ec2-isolation-revoke-"+open); !ok {
		t.Error("the open incident's revoking policy was removed")
	}
}

// inspectPolicy reads a role's inline policy through the SDK ("" and false when it has none).
func inspectPolicy(t *testing.T, srv *sim.Server, role, name string) (string, bool) {
	t.Helper()
	out, err := iam.NewFromConfig(srv.AWSConfig("test")).GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	if err != nil {
		return "", false
	}
	return aws.ToString(out.PolicyDocument), true
}
