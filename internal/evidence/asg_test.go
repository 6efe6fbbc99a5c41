package evidence_test

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	gocmp "github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	asgName    = "web-asg"
	otherASG   = "batch-asg"
	goneTGARN  = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/deleted/00000000000000aa"
	otherInst  = "i-0aaaaaaaaaaaaaaa1"
	detach     = "DetachInstances"
	attach     = "AttachInstances"
	deregister = "DeregisterTargets"
	register   = "RegisterTargets"
)

// fleetScenario: the instance in web-asg (desired 2 of max 3), registered with the web target group (the
// group's, port 80) and the api target group on two ports; another instance in the group and target groups.
// inGroup false: the instance as isolation left it, out of the group and of every target group.
func fleetScenario(inGroup bool) sim.Scenario {
	sc := instanceScenario()
	sc.Instances = append(sc.Instances, sim.Instance{ID: otherInst, SubnetID: subnetA})
	web := sim.TargetGroup{Name: "web", ARN: tgWebARN, VpcID: vpcA, Port: 80, Targets: []sim.Target{{ID: otherInst}}}
	api := sim.TargetGroup{Name: "api", ARN: tgAPIARN, VpcID: vpcA, Port: 8080, Targets: []sim.Target{{ID: otherInst}}}
	asg := sim.AutoScalingGroup{Name: asgName, MinSize: 1, MaxSize: 3, DesiredCapacity: 2,
		Instances: []sim.AutoScalingInstance{{ID: otherInst}}, TargetGroupARNs: []string{tgWebARN}}
	if inGroup {
		web.Targets = append(web.Targets, sim.Target{ID: instanceID})
		api.Targets = append(api.Targets, sim.Target{ID: instanceID, Port: 8080}, sim.Target{ID: instanceID, Port: 8081})
		asg.Instances = append(asg.Instances, sim.AutoScalingInstance{ID: instanceID})
	}
	sc.TargetGroups = []sim.TargetGroup{web, api}
	sc.AutoScaling = []sim.AutoScalingGroup{asg, {Name: otherASG, MinSize: 0, MaxSize: 5, DesiredCapacity: 0}}
	return sc
}

// fleetPre is what "Record pre-isolation state" recorded for the instance of fleetScenario(true).
func fleetPre() workflow.PreIsolationState {
	return workflow.PreIsolationState{
		Record:      record(),
		AutoScaling: &workflow.AutoScalingMembership{GroupName: asgName, LifecycleState: "InService"},
		TargetGroups: []workflow.TargetRegistration{
			{TargetGroupARN: tgAPIARN, Port: 8080}, {TargetGroupARN: tgAPIARN, Port: 8081}, {TargetGroupARN: tgWebARN, Port: 80},
		},
	}
}

// fleet is the instance's Auto Scaling membership and registrations, read back through the SDK.
type fleet struct {
	AutoScaling *workflow.AutoScalingMembership
	// Desired is each group's desired capacity.
	Desired map[string]int32
	// Registered are the instance's registrations that are not draining, sorted.
	Registered []workflow.TargetRegistration
	// Others are the other instance's, which no step may touch.
	Others []workflow.TargetRegistration
}

func readFleet(t *testing.T, c clients) fleet {
	t.Helper()
	var f fleet
	ins, err := c.asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		t.Fatalf("describe Auto Scaling instances: %v", err)
	}
	for _, m := range ins.AutoScalingInstances {
		f.AutoScaling = &workflow.AutoScalingMembership{GroupName: aws.ToString(m.AutoScalingGroupName),
			LifecycleState: aws.ToString(m.LifecycleState), ProtectedFromScaleIn: aws.ToBool(m.ProtectedFromScaleIn)}
	}
	groups, err := c.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatalf("describe Auto Scaling groups: %v", err)
	}
	f.Desired = map[string]int32{}
	for _, g := range groups.AutoScalingGroups {
		f.Desired[aws.ToString(g.AutoScalingGroupName)] = aws.ToInt32(g.DesiredCapacity)
	}
	f.Registered, f.Others = []workflow.TargetRegistration{}, []workflow.TargetRegistration{}
	for _, arn := range []string{tgAPIARN, tgWebARN} {
		out, err := c.elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("describe targets of %s: %v", arn, err)
		}
		for _, d := range out.TargetHealthDescriptions {
			if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumDraining {
				continue
			}
			reg := workflow.TargetRegistration{TargetGroupARN: arn, Port: aws.ToInt32(d.Target.Port)}
			if aws.ToString(d.Target.Id) == instanceID {
				f.Registered = append(f.Registered, reg)
			} else {
				f.Others = append(f.Others, reg)
			}
		}
	}
	sortRegs(f.Registered)
	sortRegs(f.Others)
	return f
}

func sortRegs(rs []workflow.TargetRegistration) {
	slices.SortFunc(rs, func(a, b workflow.TargetRegistration) int {
		return cmp.Or(strings.Compare(a.TargetGroupARN, b.TargetGroupARN), cmp.Compare(a.Port, b.Port))
	})
}

var others = []workflow.TargetRegistration{{TargetGroupARN: tgAPIARN, Port: 8080}, {TargetGroupARN: tgWebARN, Port: 80}}

// checkFleetChanges compares the changes with want; optional changes may be there or not: the group's own
// (de)registration of its target groups races with the step's, and either may do it.
func checkFleetChanges(t *testing.T, got []workflow.Change, want, optional []changeKey) {
	t.Helper()
	var keys []changeKey
	for _, k := range changeKeys(got) {
		if k.Action == modify {
			continue // the instance settings, tested apart
		}
		keys = append(keys, k)
	}
	keys = slices.DeleteFunc(keys, func(k changeKey) bool { return slices.Contains(optional, k) })
	want = slices.DeleteFunc(slices.Clone(want), func(k changeKey) bool { return slices.Contains(optional, k) })
	slices.SortFunc(want, func(a, b changeKey) int { return strings.Compare(a.Resource+" "+a.Action, b.Resource+" "+b.Action) })
	if diff := gocmp.Diff(want, keys, cmpopts...); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

var cmpopts = []gocmp.Option{gocmp.Transformer("nilToEmpty", func(ks []changeKey) []changeKey {
	if ks == nil {
		return []changeKey{}
	}
	return ks
})}

func TestPreserveAutoScalingAndTargets(t *testing.T) {
	out := fleet{Desired: map[string]int32{asgName: 2, otherASG: 0}, Registered: []workflow.TargetRegistration{}, Others: others}
	tests := []struct {
		name     string
		scenario func(*sim.Scenario)
		pre      func(*workflow.PreIsolationState)
		settings evidence.Settings
		want     fleet
		// wantChanges of Auto Scaling and target groups; optional ones may be made by the group instead.
		wantChanges, optional []changeKey
		wantSkipped           []string
		wantErr               func(error) bool
	}{
		{name: "detached without decrementing, deregistered everywhere", settings: evidence.AllParts, want: out,
			wantChanges: []changeKey{{asgName, detach}, {tgAPIARN, deregister}, {tgAPIARN, deregister}, {tgWebARN, deregister}},
			optional:    []changeKey{{tgWebARN, deregister}}},
		{name: "draining targets are left to drain", settings: evidence.AllParts, want: out,
			scenario:    func(sc *sim.Scenario) { sc.Behaviour.TargetDeregistrationDelay = time.Hour },
			wantChanges: []changeKey{{asgName, detach}, {tgAPIARN, deregister}, {tgAPIARN, deregister}, {tgWebARN, deregister}},
			optional:    []changeKey{{tgWebARN, deregister}}},
		{name: "in no group, on no target group", settings: evidence.AllParts,
			scenario: func(sc *sim.Scenario) { *sc = fleetScenario(false) },
			pre:      func(p *workflow.PreIsolationState) { p.AutoScaling, p.TargetGroups = nil, nil },
			want:     out, wantChanges: []changeKey{}},
		{name: "a recorded target group deleted since", settings: evidence.AllParts, want: out,
			pre: func(p *workflow.PreIsolationState) {
				p.TargetGroups = append(p.TargetGroups, workflow.TargetRegistration{TargetGroupARN: goneTGARN, Port: 80})
			},
			wantChanges: []changeKey{{asgName, detach}, {tgAPIARN, deregister}, {tgAPIARN, deregister}, {tgWebARN, deregister}},
			optional:    []changeKey{{tgWebARN, deregister}},
			wantSkipped: []string{goneTGARN + ": no longer exists"}},
		{name: "Auto Scaling turned off", settings: evidence.Settings{DeregisterTargets: true},
			want: fleet{AutoScaling: &workflow.AutoScalingMembership{GroupName: asgName, LifecycleState: "InService"},
				Desired: out.Desired, Registered: []workflow.TargetRegistration{}, Others: others},
			wantChanges: []changeKey{{tgAPIARN, deregister}, {tgAPIARN, deregister}, {tgWebARN, deregister}},
			wantSkipped: []string{evidence.EnvDetachAutoScaling + "=false"}},
		{name: "target groups turned off", settings: evidence.Settings{DetachAutoScaling: true},
			// The group still deregisters the instance from its own target group (web), as Auto Scaling does.
			want: fleet{Desired: out.Desired, Others: others,
				Registered: []workflow.TargetRegistration{{TargetGroupARN: tgAPIARN, Port: 8080}, {TargetGroupARN: tgAPIARN, Port: 8081}}},
			wantChanges: []changeKey{{asgName, detach}},
			wantSkipped: []string{evidence.EnvDeregisterTargets + "=false"}},
		{name: "still Pending in the group: retried, the rest done", settings: evidence.AllParts,
			scenario: func(sc *sim.Scenario) { sc.AutoScaling[0].Instances[1].LifecycleState = "Pending" },
			want: fleet{AutoScaling: &workflow.AutoScalingMembership{GroupName: asgName, LifecycleState: "Pending"},
				Desired: out.Desired, Registered: []workflow.TargetRegistration{}, Others: others},
			wantErr: isA[*steperr.Transient]},
		{name: "in the warm pool", settings: evidence.AllParts,
			scenario: func(sc *sim.Scenario) { sc.AutoScaling[0].Instances[1].LifecycleState = "Warmed:Stopped" },
			want: fleet{AutoScaling: &workflow.AutoScalingMembership{GroupName: asgName, LifecycleState: "Warmed:Stopped"},
				Desired: out.Desired, Registered: []workflow.TargetRegistration{}, Others: others},
			wantErr: isA[*steperr.AWSError]},
		{name: "being terminated by the group", settings: evidence.AllParts,
			scenario: func(sc *sim.Scenario) { sc.AutoScaling[0].Instances[1].LifecycleState = "Terminating:Wait" },
			want: fleet{AutoScaling: &workflow.AutoScalingMembership{GroupName: asgName, LifecycleState: "Terminating:Wait"},
				Desired: out.Desired, Registered: []workflow.TargetRegistration{}, Others: others},
			wantErr: isA[*steperr.AWSError]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := fleetScenario(true)
			if tt.scenario != nil {
				tt.scenario(&sc)
			}
			pre := fleetPre()
			if tt.pre != nil {
				tt.pre(&pre)
			}
			srv := simtest.Start(t, sc)
			h := preserve(srv, tt.settings)
			res, err := h.Handle(ctx, evidenceInput(pre))
			switch {
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Fatalf("error = %T %v", err, err)
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Handle: %v", err)
			}
			if diff := gocmp.Diff(tt.want, readFleet(t, newClients(srv, "test"))); diff != "" {
				t.Errorf("membership and registrations (-want +got):\n%s", diff)
			}
			for _, c := range srv.Calls() {
				if c.Action == detach && c.Params.Get("ShouldDecrementDesiredCapacity") != "false" {
					t.Errorf("DetachInstances with ShouldDecrementDesiredCapacity=%q", c.Params.Get("ShouldDecrementDesiredCapacity"))
				}
			}
			if err != nil {
				return
			}
			checkChanges(t, evidence.PreserveStep, res.Changes)
			checkFleetChanges(t, res.Changes, tt.wantChanges, tt.optional)
			if !containsAll(res.Skipped, tt.wantSkipped...) {
				t.Errorf("skipped = %q, want %q", res.Skipped, tt.wantSkipped)
			}

			srv.ResetCalls()
			again, err := h.Handle(ctx, evidenceInput(pre))
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("second run = %+v, %v; want no change", again, err)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("second run made mutating calls: %v", m)
			}
		})
	}
}

func TestRestoreAutoScalingAndTargets(t *testing.T) {
	back := fleet{AutoScaling: &workflow.AutoScalingMembership{GroupName: asgName, LifecycleState: "InService"},
		Desired: map[string]int32{asgName: 3, otherASG: 0}, Others: others,
		Registered: []workflow.TargetRegistration{{TargetGroupARN: tgAPIARN, Port: 8080}, {TargetGroupARN: tgAPIARN, Port: 8081}, {TargetGroupARN: tgWebARN, Port: 80}}}
	tests := []struct {
		name                  string
		scenario              func(*sim.Scenario)
		pre                   func(*workflow.PreIsolationState)
		want                  fleet
		wantChanges, optional []changeKey
		wantSkipped           []string
		wantErr               string // substring of an AWSError
	}{
		{name: "re-attached (desired capacity +1) and re-registered", want: back,
			wantChanges: []changeKey{{asgName, attach}, {tgAPIARN, register}, {tgAPIARN, register}, {tgWebARN, register}},
			optional:    []changeKey{{tgWebARN, register}}},
		{name: "group at its maximum size", scenario: func(sc *sim.Scenario) { sc.AutoScaling[0].DesiredCapacity = 3 },
			want:    fleet{Desired: map[string]int32{asgName: 3, otherASG: 0}, Others: others, Registered: back.Registered},
			wantErr: "maximum size"},
		{name: "group deleted since", scenario: func(sc *sim.Scenario) { sc.AutoScaling = sc.AutoScaling[1:] },
			want:        fleet{Desired: map[string]int32{otherASG: 0}, Others: others, Registered: back.Registered},
			wantChanges: []changeKey{{tgAPIARN, register}, {tgAPIARN, register}, {tgWebARN, register}},
			wantSkipped: []string{"group " + asgName + " no longer exists"}},
		{name: "in another group now", scenario: func(sc *sim.Scenario) {
			sc.AutoScaling[1].Instances, sc.AutoScaling[1].DesiredCapacity = []sim.AutoScalingInstance{{ID: instanceID}}, 1
		},
			want: fleet{AutoScaling: &workflow.AutoScalingMembership{GroupName: otherASG, LifecycleState: "InService"},
				Desired: map[string]int32{asgName: 2, otherASG: 1}, Others: others, Registered: back.Registered},
			wantChanges: []changeKey{{tgAPIARN, register}, {tgAPIARN, register}, {tgWebARN, register}},
			wantSkipped: []string{"now in group " + otherASG}},
		{name: "a recorded target group deleted since", want: back,
			pre: func(p *workflow.PreIsolationState) {
				p.TargetGroups = append(p.TargetGroups, workflow.TargetRegistration{TargetGroupARN: goneTGARN, Port: 80})
			},
			wantChanges: []changeKey{{asgName, attach}, {tgAPIARN, register}, {tgAPIARN, register}, {tgWebARN, register}},
			optional:    []changeKey{{tgWebARN, register}},
			wantSkipped: []string{goneTGARN + ": no longer exists"}},
		{name: "still registered, draining", want: back,
			scenario: func(sc *sim.Scenario) {
				*sc = fleetScenario(true)
				sc.Behaviour.TargetDeregistrationDelay = time.Hour
			},
			wantChanges: []changeKey{{asgName, attach}, {tgAPIARN, register}, {tgAPIARN, register}, {tgWebARN, register}},
			optional:    []changeKey{{tgWebARN, register}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := fleetScenario(false)
			if tt.scenario != nil {
				tt.scenario(&sc)
			}
			srv := simtest.Start(t, sc)
			if sc.Behaviour.TargetDeregistrationDelay > 0 {
				// Isolation left the instance's registrations draining.
				c := newClients(srv, "isolation")
				if _, err := preserve(srv, evidence.Settings{DetachAutoScaling: true, DeregisterTargets: true}).Handle(ctx, evidenceInput(fleetPre())); err != nil {
					t.Fatalf("preserve: %v", err)
				}
				if f := readFleet(t, c); len(f.Registered) != 0 {
					t.Fatalf("registered after preserve: %v", f.Registered)
				}
			}
			pre := fleetPre()
			if tt.pre != nil {
				tt.pre(&pre)
			}
			h := restorer(srv)
			srv.ResetCalls()
			res, err := h.Handle(ctx, releaseInput(pre))
			switch {
			case tt.wantErr != "" && (!isA[*steperr.AWSError](err) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %T %v, want an AWSError saying %q", err, err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Handle: %v", err)
			}
			if diff := gocmp.Diff(tt.want, readFleet(t, newClients(srv, "test"))); diff != "" {
				t.Errorf("membership and registrations (-want +got):\n%s", diff)
			}
			if err != nil {
				for _, c := range srv.Calls() {
					if c.Action == attach {
						t.Errorf("AttachInstances called on a group at its maximum size")
					}
				}
				return
			}
			checkChanges(t, evidence.RestoreStep, res.Changes)
			checkFleetChanges(t, res.Changes, tt.wantChanges, tt.optional)
			if !containsAll(res.Skipped, tt.wantSkipped...) {
				t.Errorf("skipped = %q, want %q", res.Skipped, tt.wantSkipped)
			}

			srv.ResetCalls()
			again, err := h.Handle(ctx, releaseInput(pre))
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("second run = %+v, %v; want no change", again, err)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("second run made mutating calls: %v", m)
			}
		})
	}
}

// TestIsolateThenRelease: preserve then restore puts the membership and every registration back as recorded,
// field by field; the group ends one larger (AttachInstances raises the desired capacity; Auto Scaling launched
// a replacement at isolation, which the simulator does not model).
func TestIsolateThenRelease(t *testing.T) {
	srv := simtest.Start(t, fleetScenario(true))
	c := newClients(srv, "test")
	before := readFleet(t, c)
	pre := fleetPre()
	if diff := gocmp.Diff(pre.AutoScaling, before.AutoScaling); diff != "" {
		t.Fatalf("the record does not describe the scenario (-record +got):\n%s", diff)
	}
	regs := slices.Clone(pre.TargetGroups)
	sortRegs(regs)
	if diff := gocmp.Diff(regs, before.Registered); diff != "" {
		t.Fatalf("the record does not describe the scenario (-record +got):\n%s", diff)
	}
	if _, err := preserve(srv, evidence.AllParts).Handle(ctx, evidenceInput(pre)); err != nil {
		t.Fatalf("preserve: %v", err)
	}
	if _, err := restorer(srv).Handle(ctx, releaseInput(pre)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	after := readFleet(t, c)
	want := before
	want.Desired = map[string]int32{asgName: before.Desired[asgName] + 1, otherASG: before.Desired[otherASG]}
	if diff := gocmp.Diff(want, after); diff != "" {
		t.Errorf("after release (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(recordedAttrs(pre.Record), readAttrs(t, c.ec2)); diff != "" {
		t.Errorf("instance settings after release (-recorded +got):\n%s", diff)
	}
}
