package moto_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/moto"
	"github.com/ec2-isolation/ec2-isolation/internal/preflight"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/steps"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// fixture is a seeded moto account and the steps' handlers built by internal/steps, as the Lambda functions and
// the in-process runner build them.
type fixture struct {
	t      *testing.T
	seeded moto.Seeded
	c      moto.Clients
	rec    *recorder
	cfg    aws.Config
	names  preflight.Names
}

func (f *fixture) env() steps.Env {
	env := f.names.Env()
	return func(k string) string { return env[k] }
}

var discard = slog.New(slog.NewJSONHandler(io.Discard, nil))

// build builds a step's handler or fails the test.
func build[In, Out any](f *fixture, b steps.Build[In, Out]) steps.Handler[In, Out] {
	f.t.Helper()
	h, err := b(f.cfg, f.env(), discard)
	if err != nil {
		f.t.Fatalf("build handler: %v", err)
	}
	return h
}

func (f *fixture) instance() workflow.InstanceInput {
	return workflow.InstanceInput{InstanceID: f.seeded.InstanceID, ExecutionName: "exec-1", Reason: "tag Isolate=true"}
}

func (f *fixture) validate(instanceID string) (workflow.Record, error) {
	ev := preflight.Event(preflight.Identity{Account: moto.AccountID, Partition: "aws"}, moto.Region, instanceID, f.names, time.Now())
	return build(f, steps.ValidateAndRecord)(context.Background(), workflow.ValidateInput{Event: ev, ExecutionName: "exec-1"})
}

func (f *fixture) disassociate() (workflow.DisassociateOutput, error) {
	return build(f, steps.DisassociateProfile)(context.Background(), f.instance())
}

func (f *fixture) attach() (workflow.AttachOutput, error) {
	return build(f, steps.AttachIsolationProfile)(context.Background(), f.instance())
}

func (f *fixture) ensure() (workflow.EnsureGroupsOutput, error) {
	return build(f, steps.EnsureSecurityGroup)(context.Background(), workflow.EnsureGroupsInput{
		InstanceID: f.seeded.InstanceID, ExecutionName: "exec-1", VpcIDs: f.seeded.VPCs[:],
	})
}

func (f *fixture) apply(groups workflow.EnsureGroupsOutput) (workflow.ApplyGroupsOutput, error) {
	return build(f, steps.ApplySecurityGroup)(context.Background(), workflow.ApplyGroupsInput{
		InstanceID: f.seeded.InstanceID, ExecutionName: "exec-1", Groups: groups.Groups,
	})
}

func (f *fixture) snapshot() (workflow.SnapshotOutput, error) {
	return build(f, steps.SnapshotVolumes)(context.Background(), f.instance())
}

func (f *fixture) notify(in workflow.NotifyInput) (workflow.NotifyOutput, error) {
	return build(f, steps.Notify)(context.Background(), in)
}

// outcome is a call's result: must(call()).ok(t) returns the value or fails the test.
type outcome[T any] struct {
	v   T
	err error
}

func must[T any](v T, err error) outcome[T] { return outcome[T]{v, err} }

func (o outcome[T]) ok(t *testing.T) T {
	t.Helper()
	if o.err != nil {
		t.Fatalf("step failed: %T %v", o.err, o.err)
	}
	return o.v
}

type group struct{ id, name string }

// eniGroups is the ENI's groups as DescribeNetworkInterfaces reports them.
func eniGroups(t *testing.T, c moto.Clients, eni string) []group {
	t.Helper()
	out, err := c.EC2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		t.Fatalf("describe %s: %v", eni, err)
	}
	var gs []group
	for _, g := range out.NetworkInterfaces[0].Groups {
		gs = append(gs, group{aws.ToString(g.GroupId), aws.ToString(g.GroupName)})
	}
	slices.SortFunc(gs, func(a, b group) int { return strings.Compare(a.name, b.name) })
	return gs
}

// onlyOwnGroup checks, with the group-id filter (which moto applies to the ENI's own groups), that the ENI carries
// want and none of the others.
func onlyOwnGroup(t *testing.T, c moto.Clients, eni, want string, others ...string) {
	t.Helper()
	for _, g := range append([]string{want}, others...) {
		out, err := c.EC2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
			NetworkInterfaceIds: []string{eni}, Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{g}}},
		})
		if err != nil {
			t.Fatalf("describe %s with group-id %s: %v", eni, g, err)
		}
		if on := len(out.NetworkInterfaces) == 1; on != (g == want) {
			t.Errorf("%s carries %s: %v, want %v", eni, g, on, g == want)
		}
	}
}

// profiles is the instance's associations that are not disassociated: "name (state)".
func profiles(t *testing.T, c moto.Clients, id string) []string {
	t.Helper()
	out, err := c.EC2.DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}},
	})
	if err != nil {
		t.Fatalf("describe associations: %v", err)
	}
	var ps []string
	for _, a := range out.IamInstanceProfileAssociations {
		if a.State != types.IamInstanceProfileAssociationStateDisassociated {
			arn := aws.ToString(a.IamInstanceProfile.Arn)
			ps = append(ps, arn[strings.LastIndex(arn, "/")+1:]+" ("+string(a.State)+")")
		}
	}
	return ps
}

// groupsNamed returns the groups called name in each VPC of the seeded account.
func groupsNamed(t *testing.T, f *fixture, name string) map[string]types.SecurityGroup {
	t.Helper()
	out, err := f.c.EC2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("group-name"), Values: []string{name}}, {Name: aws.String("vpc-id"), Values: f.seeded.VPCs[:]},
	}})
	if err != nil {
		t.Fatalf("describe groups %s: %v", name, err)
	}
	byVPC := map[string]types.SecurityGroup{}
	for _, g := range out.SecurityGroups {
		if _, dup := byVPC[aws.ToString(g.VpcId)]; dup {
			t.Errorf("two groups named %s in %s", name, aws.ToString(g.VpcId))
		}
		byVPC[aws.ToString(g.VpcId)] = g
	}
	return byVPC
}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// stepCases run the steps' handlers against moto. prepare runs the earlier steps; run runs the step under test
// and checks its result and the account. again, when set, runs the step once more after run, and must make no
// mutating call (every step reads first and does only what is missing). Where moto differs from AWS, the case
// says so and points to docs/moto.md.
var stepCases = []struct {
	name    string
	seed    moto.SeedOptions
	mode    secgroup.Mode
	prepare func(t *testing.T, f *fixture)
	run     func(t *testing.T, f *fixture)
	again   func(f *fixture) error
}{
	{
		name: "validate records ENIs in two VPCs, the profile, the attributes and the volumes",
		run: func(t *testing.T, f *fixture) {
			rec := must(f.validate(f.seeded.InstanceID)).ok(t)
			var enis []workflow.NetworkInterface
			for i, id := range f.seeded.ENIs {
				enis = append(enis, workflow.NetworkInterface{ID: id, VpcID: f.seeded.VPCs[i], SubnetID: f.seeded.Subnets[i], DeviceIndex: int32(i), Groups: []string{f.seeded.Groups[i]}})
			}
			if diff := cmp.Diff(enis, rec.NetworkInterfaces); diff != "" {
				t.Errorf("network interfaces (-want +got):\n%s", diff)
			}
			if want := slices.Sorted(slices.Values(f.seeded.VPCs[:])); !slices.Equal(rec.VpcIDs, want) {
				t.Errorf("VPCs %v, want %v", rec.VpcIDs, want)
			}
			if rec.ProfileAssociation == nil || !strings.HasSuffix(rec.ProfileAssociation.ProfileARN, "/"+moto.InstanceProfileName) || rec.ProfileAssociation.State != "associated" {
				t.Errorf("profile association %+v, want %s associated", rec.ProfileAssociation, moto.InstanceProfileName)
			}
			if rec.ShutdownBehavior != "stop" || rec.DisableAPITermination || len(rec.Volumes) != 2 {
				t.Errorf("shutdown %q, termination protection %v, %d volumes; want stop, false, 2", rec.ShutdownBehavior, rec.DisableAPITermination, len(rec.Volumes))
			}
			if m := f.rec.mutating(); len(m) > 0 {
				t.Errorf("validate made mutating calls: %v", m)
			}
		},
		again: func(f *fixture) error { _, err := f.validate(f.seeded.InstanceID); return err },
	},
	{
		name: "validate refuses an unknown instance",
		run: func(t *testing.T, f *fixture) {
			if _, err := f.validate("i-0123456789abcdef0"); !isA[*steperr.InstanceNotFound](err) {
				t.Errorf("error %T %v, want InstanceNotFound", err, err)
			}
		},
	},
	{
		name: "validate refuses a terminated instance",
		prepare: func(t *testing.T, f *fixture) {
			if _, err := f.c.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{f.seeded.InstanceID}}); err != nil {
				t.Fatal(err)
			}
		},
		run: func(t *testing.T, f *fixture) {
			if _, err := f.validate(f.seeded.InstanceID); !isA[*steperr.InstanceNotIsolatable](err) {
				t.Errorf("error %T %v, want InstanceNotIsolatable", err, err)
			}
		},
	},
	{
		name: "disassociate removes the instance profile",
		run: func(t *testing.T, f *fixture) {
			out := must(f.disassociate()).ok(t)
			if len(out.Disassociated) != 1 || !strings.HasSuffix(out.Disassociated[0].ProfileARN, "/"+moto.InstanceProfileName) {
				t.Errorf("disassociated %+v, want %s", out.Disassociated, moto.InstanceProfileName)
			}
			if ps := profiles(t, f.c, f.seeded.InstanceID); len(ps) != 0 {
				t.Errorf("associations left: %v", ps)
			}
		},
		again: func(f *fixture) error { _, err := f.disassociate(); return err },
	},
	{
		name:    "attach after disassociate associates the isolation profile",
		prepare: func(t *testing.T, f *fixture) { must(f.disassociate()).ok(t) },
		run: func(t *testing.T, f *fixture) {
			must(f.attach()).ok(t)
			if diff := cmp.Diff([]string{moto.IsolationProfileName + " (associated)"}, profiles(t, f.c, f.seeded.InstanceID)); diff != "" {
				t.Errorf("associations (-want +got):\n%s", diff)
			}
		},
		again: func(f *fixture) error { _, err := f.attach(); return err },
	},
	{
		name: "attach replaces another profile in one call",
		run: func(t *testing.T, f *fixture) {
			out := must(f.attach()).ok(t)
			if !out.Changed || !slices.Equal(f.rec.mutating(), []string{"EC2:ReplaceIamInstanceProfileAssociation"}) {
				t.Errorf("changed %v with %v, want one ReplaceIamInstanceProfileAssociation", out.Changed, f.rec.mutating())
			}
			if diff := cmp.Diff([]string{moto.IsolationProfileName + " (associated)"}, profiles(t, f.c, f.seeded.InstanceID)); diff != "" {
				t.Errorf("associations (-want +got):\n%s", diff)
			}
		},
		again: func(f *fixture) error { _, err := f.attach(); return err },
	},
	{
		name: "attach to an instance without a profile associates",
		seed: moto.SeedOptions{NoProfile: true},
		run: func(t *testing.T, f *fixture) {
			must(f.attach()).ok(t)
			if !slices.Equal(f.rec.mutating(), []string{"EC2:AssociateIamInstanceProfile"}) {
				t.Errorf("calls %v, want one AssociateIamInstanceProfile", f.rec.mutating())
			}
			if diff := cmp.Diff([]string{moto.IsolationProfileName + " (associated)"}, profiles(t, f.c, f.seeded.InstanceID)); diff != "" {
				t.Errorf("associations (-want +got):\n%s", diff)
			}
		},
		again: func(f *fixture) error { _, err := f.attach(); return err },
	},
	{
		// AWS answers InvalidParameterValue ("Invalid IAM Instance Profile name"), which the step reports as
		// ProfileNotReady for the state machine to retry; moto answers NoSuchEntity, an AWSError (docs/moto.md).
		name:    "attach with a missing isolation profile fails and attaches nothing",
		seed:    moto.SeedOptions{NoIsolationProfile: true},
		prepare: func(t *testing.T, f *fixture) { must(f.disassociate()).ok(t) },
		run: func(t *testing.T, f *fixture) {
			_, err := f.attach()
			if !isA[*steperr.AWSError](err) || steperr.Code(err) != "NoSuchEntity" {
				t.Errorf("error %T %v, want moto's NoSuchEntity as an AWSError", err, err)
			}
			if ps := profiles(t, f.c, f.seeded.InstanceID); len(ps) != 0 {
				t.Errorf("associations %v, want none", ps)
			}
		},
	},
	{
		name: "ensure creates an empty, tagged isolation group in each VPC",
		run: func(t *testing.T, f *fixture) {
			out := must(f.ensure()).ok(t)
			byVPC := groupsNamed(t, f, moto.IsolationGroupName)
			for i, vpc := range f.seeded.VPCs {
				g, ok := byVPC[vpc]
				switch {
				case !ok:
					t.Errorf("no isolation group in %s", vpc)
				case aws.ToString(g.GroupId) != out.Groups[i].IsolationGroupID || !out.Groups[i].Created:
					t.Errorf("output %+v, want the created group %s of %s", out.Groups[i], aws.ToString(g.GroupId), vpc)
				case len(g.IpPermissions)+len(g.IpPermissionsEgress) != 0:
					t.Errorf("group %s has rules: in %v out %v", aws.ToString(g.GroupId), g.IpPermissions, g.IpPermissionsEgress)
				case !slices.ContainsFunc(g.Tags, func(tg types.Tag) bool { return aws.ToString(tg.Key) == secgroup.TagManaged }):
					t.Errorf("group %s lacks the %s tag: %v", aws.ToString(g.GroupId), secgroup.TagManaged, g.Tags)
				}
			}
		},
		again: func(f *fixture) error { _, err := f.ensure(); return err },
	},
	{
		name: "ensure in untrack-first mode also creates an allow-all group in each VPC",
		mode: secgroup.ModeUntrackFirst,
		run: func(t *testing.T, f *fixture) {
			must(f.ensure()).ok(t)
			byVPC := groupsNamed(t, f, moto.IsolationGroupName+secgroup.UntrackSuffix)
			for _, vpc := range f.seeded.VPCs {
				g := byVPC[vpc]
				for dir, perms := range map[string][]types.IpPermission{"in": g.IpPermissions, "out": g.IpPermissionsEgress} {
					if got := allowAll(perms); !slices.Equal(got, []string{"0.0.0.0/0", "::/0"}) {
						t.Errorf("allow-all group of %s, %s: all traffic to %v, want 0.0.0.0/0 and ::/0", vpc, dir, got)
					}
				}
			}
		},
		again: func(f *fixture) error { _, err := f.ensure(); return err },
	},
	{
		name: "ensure: two executions at once share one group per VPC",
		run: func(t *testing.T, f *fixture) {
			var wg sync.WaitGroup
			outs := make([]workflow.EnsureGroupsOutput, 2)
			errs := make([]error, 2)
			for i := range outs {
				wg.Go(func() { outs[i], errs[i] = f.ensure() })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("ensure: %T %v", err, err)
				}
			}
			if diff := cmp.Diff(outs[0].Groups, outs[1].Groups, cmpIgnoreCreated); diff != "" {
				t.Errorf("the executions use different groups (-first +second):\n%s", diff)
			}
			if n := len(groupsNamed(t, f, moto.IsolationGroupName)); n != 2 {
				t.Errorf("%d isolation groups, want one per VPC", n)
			}
		},
	},
	{
		name:    "apply puts every ENI on its own VPC's isolation group",
		prepare: func(t *testing.T, f *fixture) { must(f.ensure()).ok(t) },
		run: func(t *testing.T, f *fixture) {
			groups := must(f.ensure()).ok(t)
			must(f.apply(groups)).ok(t)
			for i, eni := range f.seeded.ENIs {
				if got, want := eniGroups(t, f.c, eni), []group{{groups.Groups[i].IsolationGroupID, moto.IsolationGroupName}}; !cmp.Equal(got, want, cmp.AllowUnexported(group{})) {
					t.Errorf("%s carries %v, want %v", eni, got, want)
				}
				onlyOwnGroup(t, f.c, eni, groups.Groups[i].IsolationGroupID, f.seeded.Groups[i])
			}
		},
		again: func(f *fixture) error { return ensureThenApply(f) },
	},
	{
		name:    "apply in untrack-first mode: the allow-all group, then the isolation group",
		mode:    secgroup.ModeUntrackFirst,
		prepare: func(t *testing.T, f *fixture) { must(f.ensure()).ok(t) },
		run: func(t *testing.T, f *fixture) {
			groups := must(f.ensure()).ok(t)
			f.rec.reset()
			must(f.apply(groups)).ok(t)
			if n := len(f.rec.mutating()); n != 4 {
				t.Errorf("%d mutating calls %v, want 4 (two per ENI)", n, f.rec.mutating())
			}
			for i, eni := range f.seeded.ENIs {
				onlyOwnGroup(t, f.c, eni, groups.Groups[i].IsolationGroupID, f.seeded.Groups[i], groups.Groups[i].UntrackGroupID)
			}
		},
		again: func(f *fixture) error { return ensureThenApply(f) },
	},
	{
		// moto adds an instance's launch-time groups to every attached ENI's reported groups (docs/moto.md): the
		// ENI's own groups are checked with the group-id filter, and a second Apply is not a no-op on moto.
		name:    "apply on an instance launched with SecurityGroupIds",
		seed:    moto.SeedOptions{LaunchGroups: true},
		prepare: func(t *testing.T, f *fixture) { must(f.ensure()).ok(t) },
		run: func(t *testing.T, f *fixture) {
			groups := must(f.ensure()).ok(t)
			must(f.apply(groups)).ok(t)
			for i, eni := range f.seeded.ENIs {
				onlyOwnGroup(t, f.c, eni, groups.Groups[i].IsolationGroupID, f.seeded.Groups[i])
				want := []group{{groups.Groups[i].IsolationGroupID, moto.IsolationGroupName}, {f.seeded.Groups[0], "web"}}
				if got := eniGroups(t, f.c, eni); !cmp.Equal(got, want, cmp.AllowUnexported(group{})) {
					t.Errorf("moto reports %v on %s, want %v: has moto's launch-group behaviour changed? (update docs/moto.md)", got, eni, want)
				}
			}
		},
	},
	{
		name: "snapshot creates one tagged set of every volume",
		run: func(t *testing.T, f *fixture) {
			out := must(f.snapshot()).ok(t)
			var vols []string
			for _, s := range out.Snapshots {
				vols = append(vols, s.VolumeID)
			}
			if want := slices.Sorted(slices.Values(f.seeded.Volumes)); !slices.Equal(vols, want) {
				t.Errorf("snapshots of %v, want %v", vols, want)
			}
			snaps, err := f.c.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{
				{Name: aws.String("tag:" + snapshot.TagExecution), Values: []string{"exec-1"}},
				{Name: aws.String("tag:" + snapshot.TagInstanceID), Values: []string{f.seeded.InstanceID}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if len(snaps.Snapshots) != 2 {
				t.Errorf("described %d snapshots of the execution, want 2", len(snaps.Snapshots))
			}
		},
		again: func(f *fixture) error { _, err := f.snapshot(); return err },
	},
	{
		name: "notify success delivers the Chatbot notification to the queue",
		run: func(t *testing.T, f *fixture) {
			rec := must(f.validate(f.seeded.InstanceID)).ok(t)
			must(f.notify(workflow.NotifyInput{Outcome: workflow.OutcomeSucceeded, ExecutionName: "exec-1", InstanceID: f.seeded.InstanceID, Record: &rec})).ok(t)
			msgs := must(moto.ReadNotifications(context.Background(), f.c.SQS, f.seeded.QueueURL)).ok(t)
			if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "SUCCEEDED") || !strings.Contains(msgs[0].Message, `"source":"custom"`) {
				t.Errorf("queue received %+v, want one success with the Chatbot body", msgs)
			}
		},
	},
	{
		name: "notify failure publishes, then fails the execution",
		run: func(t *testing.T, f *fixture) {
			_, err := f.notify(workflow.NotifyInput{Outcome: workflow.OutcomeFailed, ExecutionName: "exec-1", InstanceID: f.seeded.InstanceID,
				Failures: []workflow.Failure{{State: "Apply isolation security group", Error: "AWSError", Cause: "UnauthorizedOperation"}}})
			if !isA[*steperr.IsolationFailed](err) {
				t.Errorf("error %T %v, want IsolationFailed", err, err)
			}
			msgs := must(moto.ReadNotifications(context.Background(), f.c.SQS, f.seeded.QueueURL)).ok(t)
			if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "FAILED") || !strings.Contains(msgs[0].Subject, "Apply isolation security group") {
				t.Errorf("queue received %+v, want one failure naming the state", msgs)
			}
		},
	},
}

// ensureThenApply runs Ensure (which finds the groups) and Apply.
func ensureThenApply(f *fixture) error {
	groups, err := f.ensure()
	if err != nil {
		return err
	}
	_, err = f.apply(groups)
	return err
}

var cmpIgnoreCreated = cmp.Transformer("ignoreCreated", func(g workflow.VpcGroups) workflow.VpcGroups { g.Created = false; return g })

// allowAll lists the CIDRs the permissions allow all traffic from or to.
func allowAll(perms []types.IpPermission) []string {
	var out []string
	for _, p := range perms {
		if aws.ToString(p.IpProtocol) != "-1" {
			continue
		}
		for _, r := range p.IpRanges {
			out = append(out, aws.ToString(r.CidrIp))
		}
		for _, r := range p.Ipv6Ranges {
			out = append(out, aws.ToString(r.CidrIpv6))
		}
	}
	slices.Sort(out)
	return out
}

func TestStepsOnMoto(t *testing.T) {
	for _, tc := range stepCases {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t)
			seeded, c := seed(t, s, tc.seed)
			mode := tc.mode
			if mode == "" {
				mode = secgroup.ModeDirect
			}
			rec := &recorder{}
			f := &fixture{t: t, seeded: seeded, c: c, rec: rec, cfg: rec.config(s.Config("", "")), names: names(seeded, mode)}
			if tc.prepare != nil {
				tc.prepare(t, f)
			}
			rec.reset()
			tc.run(t, f)
			if tc.again != nil && !t.Failed() {
				rec.reset()
				if err := tc.again(f); err != nil {
					t.Fatalf("second run: %T %v", err, err)
				}
				if m := rec.mutating(); len(m) > 0 {
					t.Errorf("the second run made mutating calls: %v", m)
				}
			}
		})
	}
}
