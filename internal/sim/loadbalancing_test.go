package sim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"
)

// lbScenario: instWeb and instDB in the group "web-asg" behind "web-tg" (port 80; instWeb also on 8080) and
// "admin-tg" (port 9000), both in vpcA.
func lbScenario() Scenario {
	sc := baseScenario()
	sc.TargetGroups = []TargetGroup{
		{Name: "web-tg", VpcID: vpcA, Port: 80, Targets: []Target{{ID: instWeb}, {ID: instWeb, Port: 8080}, {ID: instDB}}},
		{Name: "admin-tg", VpcID: vpcA, Port: 9000, Protocol: "HTTPS", Targets: []Target{{ID: instWeb}, {ID: instDB}}},
	}
	sc.AutoScaling = []AutoScalingGroup{{Name: "web-asg", MinSize: 1, MaxSize: 3, DesiredCapacity: 2,
		Instances: []AutoScalingInstance{{ID: instWeb}, {ID: instDB}}, TargetGroupARNs: []string{"web-tg", "admin-tg"}}}
	return sc
}

func startLB(t *testing.T, sc Scenario) (*Server, *autoscaling.Client, *elb.Client) {
	t.Helper()
	s, _, _ := start(t, sc)
	cfg := s.AWSConfig("AKIDTEST")
	return s, autoscaling.NewFromConfig(cfg), elb.NewFromConfig(cfg)
}

// health lists a target group's targets as "id:port=state" through DescribeTargetHealth.
func health(t *testing.T, c *elb.Client, arn string, targets ...elbtypes.TargetDescription) []string {
	t.Helper()
	out, err := c.DescribeTargetHealth(context.Background(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn), Targets: targets})
	if err != nil {
		t.Fatalf("DescribeTargetHealth: %v", err)
	}
	var got []string
	for _, d := range out.TargetHealthDescriptions {
		got = append(got, fmt.Sprintf("%s:%d=%s", aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port), d.TargetHealth.State))
	}
	return got
}

func asgView(t *testing.T, c *autoscaling.Client, name string) (desired int32, members []string) {
	t.Helper()
	out, err := c.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("DescribeAutoScalingGroups(%s): %+v %v", name, out, err)
	}
	g := out.AutoScalingGroups[0]
	for _, in := range g.Instances {
		members = append(members, aws.ToString(in.InstanceId)+"="+string(in.LifecycleState))
	}
	return aws.ToInt32(g.DesiredCapacity), members
}

func TestDescribeAutoScaling(t *testing.T) {
	s, c, _ := startLB(t, lbScenario())
	ctx := context.Background()
	var webTG, adminTG string
	s.Update(func(a *Account) { webTG, adminTG = a.TargetGroupARN("web-tg"), a.TargetGroupARN("admin-tg") })
	out, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{instWeb, instClassic}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AutoScalingInstances) != 1 || aws.ToString(out.AutoScalingInstances[0].AutoScalingGroupName) != "web-asg" ||
		aws.ToString(out.AutoScalingInstances[0].LifecycleState) != "InService" || aws.ToString(out.AutoScalingInstances[0].AvailabilityZone) != "us-east-1a" {
		t.Errorf("DescribeAutoScalingInstances: %+v", out.AutoScalingInstances)
	}
	g, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"web-asg", "nope"}})
	if err != nil || len(g.AutoScalingGroups) != 1 {
		t.Fatalf("DescribeAutoScalingGroups: %+v %v", g, err)
	}
	type view struct {
		Min, Max, Desired int32
		TGs               []string
	}
	grp := g.AutoScalingGroups[0]
	if diff := cmp.Diff(view{1, 3, 2, []string{webTG, adminTG}},
		view{aws.ToInt32(grp.MinSize), aws.ToInt32(grp.MaxSize), aws.ToInt32(grp.DesiredCapacity), grp.TargetGroupARNs}); diff != "" {
		t.Errorf("group (-want +got):\n%s", diff)
	}
	// Pagination.
	p1, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{MaxRecords: aws.Int32(1)})
	if err != nil || len(p1.AutoScalingInstances) != 1 || p1.NextToken == nil {
		t.Fatalf("page 1: %+v %v", p1, err)
	}
	p2, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{MaxRecords: aws.Int32(1), NextToken: p1.NextToken})
	if err != nil || len(p2.AutoScalingInstances) != 1 || p2.NextToken != nil ||
		aws.ToString(p2.AutoScalingInstances[0].InstanceId) != instDB {
		t.Fatalf("page 2: %+v %v", p2, err)
	}
}

func TestDetachAttachInstances(t *testing.T) {
	s, c, e := startLB(t, lbScenario())
	ctx := context.Background()
	var webTG, adminTG string
	s.Update(func(a *Account) { webTG, adminTG = a.TargetGroupARN("web-tg"), a.TargetGroupARN("admin-tg") })

	// (Without ShouldDecrementDesiredCapacity the SDK refuses the call itself; the server would answer ValidationError.)
	_, err := c.DetachInstances(ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instClassic},
		ShouldDecrementDesiredCapacity: aws.Bool(false)})
	wantErr(t, err, "ValidationError", 400) // not a member
	_, err = c.DetachInstances(ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instWeb, instDB},
		ShouldDecrementDesiredCapacity: aws.Bool(true)})
	wantErr(t, err, "ValidationError", 400) // below min
	if desired, members := asgView(t, c, "web-asg"); desired != 2 || len(members) != 2 {
		t.Fatalf("refused detaches changed the group: desired %d members %v", desired, members)
	}

	out, err := c.DetachInstances(ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instWeb},
		ShouldDecrementDesiredCapacity: aws.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Activities) != 1 || aws.ToString(out.Activities[0].ActivityId) == "" {
		t.Errorf("activities %+v", out.Activities)
	}
	desired, members := asgView(t, c, "web-asg")
	if diff := cmp.Diff([]string{instDB + "=InService"}, members); diff != "" || desired != 2 {
		t.Errorf("after detach without decrement: desired %d, members (-want +got):\n%s", desired, diff)
	}
	// Detaching deregistered the group's registrations (target group port); the extra 8080 one stays.
	if diff := cmp.Diff([]string{instWeb + ":8080=healthy", instDB + ":80=healthy"}, health(t, e, webTG)); diff != "" {
		t.Errorf("web-tg after detach (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{instDB + ":9000=healthy"}, health(t, e, adminTG)); diff != "" {
		t.Errorf("admin-tg after detach (-want +got):\n%s", diff)
	}
	ai, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{instWeb}})
	if err != nil || len(ai.AutoScalingInstances) != 0 {
		t.Errorf("detached instance still in a group: %+v %v", ai, err)
	}

	// Attach: desired + 1, registered again on each group's port.
	if _, err := c.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instWeb}}); err != nil {
		t.Fatal(err)
	}
	desired, members = asgView(t, c, "web-asg")
	if diff := cmp.Diff([]string{instDB + "=InService", instWeb + "=InService"}, members); diff != "" || desired != 3 {
		t.Errorf("after attach: desired %d, members (-want +got):\n%s", desired, diff)
	}
	if diff := cmp.Diff([]string{instWeb + ":8080=healthy", instDB + ":80=healthy", instWeb + ":80=healthy"}, health(t, e, webTG)); diff != "" {
		t.Errorf("web-tg after attach (-want +got):\n%s", diff)
	}
	_, err = c.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instWeb}})
	wantErr(t, err, "ValidationError", 400) // already a member
	// Detach with decrement, then attaching two would exceed the maximum (3).
	if _, err := c.DetachInstances(ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instWeb},
		ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if desired, _ := asgView(t, c, "web-asg"); desired != 2 {
		t.Errorf("desired after decrementing detach: %d", desired)
	}
	s.Update(func(a *Account) {
		if err := a.SetInstanceState(instClassic, "stopped"); err != nil {
			t.Fatal(err)
		}
	})
	_, err = c.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instClassic}})
	wantErr(t, err, "ValidationError", 400) // not running
	var st AutoScalingGroupState
	s.Update(func(a *Account) { st, _ = a.AutoScalingGroup("web-asg") })
	if diff := cmp.Diff(AutoScalingGroupState{Name: "web-asg", MinSize: 1, MaxSize: 3, Desired: 2, Instances: []string{instDB},
		TargetGroupARNs: []string{webTG, adminTG}}, st); diff != "" {
		t.Errorf("group state (-want +got):\n%s", diff)
	}
	_, err = c.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String("nope"), InstanceIds: []string{instWeb}})
	wantErr(t, err, "ValidationError", 400)
}

func TestAttachOverMaxSize(t *testing.T) {
	sc := lbScenario()
	sc.AutoScaling[0].MaxSize = 2
	_, c, _ := startLB(t, sc)
	ctx := context.Background()
	if _, err := c.DetachInstances(ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instWeb},
		ShouldDecrementDesiredCapacity: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	_, err := c.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String("web-asg"), InstanceIds: []string{instWeb}})
	wantErr(t, err, "ValidationError", 400)
	if desired, members := asgView(t, c, "web-asg"); desired != 2 || len(members) != 1 {
		t.Errorf("refused attach changed the group: desired %d members %v", desired, members)
	}
}

func TestTargetGroups(t *testing.T) {
	sc := lbScenario()
	sc.Behaviour.TargetDeregistrationDelay = time.Hour
	clock := NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := Start(sc, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e := elb.NewFromConfig(s.AWSConfig("AKIDTEST"))
	ctx := context.Background()
	var webTG, adminTG string
	s.Update(func(a *Account) { webTG, adminTG = a.TargetGroupARN("web-tg"), a.TargetGroupARN("admin-tg") })

	all, err := e.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	type tgView struct {
		Name, Arn, Vpc string
		Port           int32
		Protocol       elbtypes.ProtocolEnum
		Type           elbtypes.TargetTypeEnum
	}
	var got []tgView
	for _, tg := range all.TargetGroups {
		got = append(got, tgView{aws.ToString(tg.TargetGroupName), aws.ToString(tg.TargetGroupArn), aws.ToString(tg.VpcId), aws.ToInt32(tg.Port), tg.Protocol, tg.TargetType})
	}
	want := []tgView{{"web-tg", webTG, vpcA, 80, "HTTP", "instance"}, {"admin-tg", adminTG, vpcA, 9000, "HTTPS", "instance"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("target groups (-want +got):\n%s", diff)
	}
	// Paginated through the SDK paginator.
	var names []string
	pg := elb.NewDescribeTargetGroupsPaginator(e, &elb.DescribeTargetGroupsInput{PageSize: aws.Int32(1)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range out.TargetGroups {
			names = append(names, aws.ToString(tg.TargetGroupName))
		}
	}
	if diff := cmp.Diff([]string{"web-tg", "admin-tg"}, names); diff != "" {
		t.Errorf("paginated (-want +got):\n%s", diff)
	}
	_, err = e.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{webTG + "0"}})
	wantErr(t, err, "TargetGroupNotFound", 400)

	target := func(id string, port int32) elbtypes.TargetDescription {
		td := elbtypes.TargetDescription{Id: aws.String(id)}
		if port != 0 {
			td.Port = aws.Int32(port)
		}
		return td
	}
	if diff := cmp.Diff([]string{instWeb + ":8080=healthy", instClassic + ":80=unused"},
		health(t, e, webTG, target(instWeb, 8080), target(instClassic, 0))); diff != "" {
		t.Errorf("health of named targets (-want +got):\n%s", diff)
	}
	_, err = e.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(webTG), Targets: []elbtypes.TargetDescription{target("i-0123456789abcdef0", 0)}})
	wantErr(t, err, "InvalidTarget", 400)

	// Deregister both registrations of instWeb: they drain, then go.
	if _, err := e.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(webTG),
		Targets: []elbtypes.TargetDescription{target(instWeb, 0), target(instWeb, 8080)}}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{instWeb + ":80=draining", instWeb + ":8080=draining", instDB + ":80=healthy"}, health(t, e, webTG)); diff != "" {
		t.Errorf("draining (-want +got):\n%s", diff)
	}
	// Idempotent: deregistering again, or a target never registered, succeeds.
	if _, err := e.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(webTG),
		Targets: []elbtypes.TargetDescription{target(instWeb, 0), target(instDB, 1234)}}); err != nil {
		t.Fatalf("deregister again: %v", err)
	}
	clock.Advance(time.Hour)
	if diff := cmp.Diff([]string{instDB + ":80=healthy"}, health(t, e, webTG)); diff != "" {
		t.Errorf("after the deregistration delay (-want +got):\n%s", diff)
	}
	// Register: idempotent, a port per registration.
	for i := 0; i < 2; i++ {
		if _, err := e.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(webTG),
			Targets: []elbtypes.TargetDescription{target(instWeb, 0), target(instWeb, 8080)}}); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{instDB + ":80=healthy", instWeb + ":80=healthy", instWeb + ":8080=healthy"}, health(t, e, webTG)); diff != "" {
		t.Errorf("after register (-want +got):\n%s", diff)
	}
	var refusals []string
	for _, tc := range []struct {
		name string
		arn  string
		id   string
	}{
		{"unknown group", webTG + "0", instWeb},
		{"instance in no VPC", webTG, instClassic},
		{"unknown instance", webTG, "i-0123456789abcdef0"},
	} {
		_, err := e.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tc.arn), Targets: []elbtypes.TargetDescription{target(tc.id, 0)}})
		code, _ := apiErr(t, err)
		refusals = append(refusals, tc.name+"="+code)
	}
	if diff := cmp.Diff([]string{"unknown group=TargetGroupNotFound", "instance in no VPC=InvalidTarget", "unknown instance=InvalidTarget"}, refusals); diff != "" {
		t.Errorf("refusals (-want +got):\n%s", diff)
	}
	var mutating []string
	for _, c := range s.Calls() {
		if c.Mutating {
			mutating = append(mutating, c.Service+":"+c.Action)
		}
	}
	if len(mutating) != 7 || mutating[0] != "elasticloadbalancing:DeregisterTargets" {
		t.Errorf("mutating calls %v", mutating)
	}
}

func TestLoadBalancingScenarioRefusals(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Scenario)
	}{
		{"desired over max", func(sc *Scenario) { sc.AutoScaling[0].DesiredCapacity = 4 }},
		{"unknown target group", func(sc *Scenario) { sc.AutoScaling[0].TargetGroupARNs = []string{"nope"} }},
		{"unknown member", func(sc *Scenario) { sc.AutoScaling[0].Instances[0].ID = "i-0123456789abcdef0" }},
		{"member of two groups", func(sc *Scenario) {
			sc.AutoScaling = append(sc.AutoScaling, AutoScalingGroup{Name: "b", MaxSize: 1, Instances: []AutoScalingInstance{{ID: instWeb}}})
		}},
		{"unknown target", func(sc *Scenario) { sc.TargetGroups[0].Targets[0].ID = "i-0123456789abcdef0" }},
		{"unknown vpc", func(sc *Scenario) { sc.TargetGroups[0].VpcID = "vpc-0123456789abcdef0" }},
		{"ip targets", func(sc *Scenario) { sc.TargetGroups[0].TargetType = "ip" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := lbScenario()
			tc.mod(&sc)
			if _, err := Start(sc); err == nil {
				t.Error("scenario accepted")
			}
		})
	}
}

// What the SDK would refuse before sending: the server refuses it too.
func TestDetachInstancesRawRefusals(t *testing.T) {
	sc := lbScenario()
	sc.AutoScaling[0].Instances[1].LifecycleState = "Pending"
	s, c, _ := startLB(t, sc)
	form := url.Values{"Action": {"DetachInstances"}, "Version": {"2011-01-01"}, "AutoScalingGroupName": {"web-asg"},
		"InstanceIds.member.1": {instWeb}}
	resp, err := http.Post(s.URL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "<Code>ValidationError</Code>") || !strings.Contains(string(body), "shouldDecrementDesiredCapacity") {
		t.Errorf("without ShouldDecrementDesiredCapacity: %d %s", resp.StatusCode, body)
	}
	_, err = c.DetachInstances(context.Background(), &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String("web-asg"),
		InstanceIds: []string{instDB}, ShouldDecrementDesiredCapacity: aws.Bool(false)})
	wantErr(t, err, "ValidationError", 400) // Pending, not InService or Standby
	if desired, members := asgView(t, c, "web-asg"); desired != 2 || len(members) != 2 {
		t.Errorf("refusals changed the group: desired %d members %v", desired, members)
	}
}

func TestTerminatedInstanceLeavesGroups(t *testing.T) {
	s, c, e := startLB(t, lbScenario())
	var webTG string
	s.Update(func(a *Account) {
		webTG = a.TargetGroupARN("web-tg")
		if err := a.TerminateInstance(instWeb); err != nil {
			t.Fatal(err)
		}
	})
	if _, members := asgView(t, c, "web-asg"); !cmp.Equal([]string{instDB + "=InService"}, members) {
		t.Errorf("members after termination: %v", members)
	}
	if diff := cmp.Diff([]string{instDB + ":80=healthy"}, health(t, e, webTG)); diff != "" {
		t.Errorf("targets after termination (-want +got):\n%s", diff)
	}
}
