package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
)

// The simulated account and the stack's parameters.
const (
	account     = "123456789012"
	region      = "us-east-1"
	tagKey      = "Isolate"
	tagValue    = "true"
	groupName   = "ec2-isolation-quarantine"
	profileName = "ec2-isolation-quarantine"
	appProfile  = "app-server"
	topicName   = "ec2-isolation-notifications"

	vpcA, vpcB          = "vpc-0a00000000000000a", "vpc-0b00000000000000b"
	subA1, subA2, subB1 = "subnet-0a0000000000000a1", "subnet-0a0000000000000a2", "subnet-0b0000000000000b1"
	sgWeb, sgSSH, sgDB  = "sg-0a0000000000000a1", "sg-0a0000000000000a2", "sg-0b0000000000000b1"
)

// fleetInstance is an instance of the fleet scenario and what its isolation must leave.
type fleetInstance struct {
	ID string
	// ENIs maps each network interface to its VPC.
	ENIs    map[string]string
	Volumes []string
	Profile bool
}

// fleet is an account with n instances of four shapes, so that every execution exercises several multi-call
// steps: one ENI and no profile; two ENIs in one VPC; three ENIs in two VPCs (multi-VPC attachment); two ENIs in
// two VPCs with a profile association still "associating".
func fleet(n int) (sim.Scenario, []fleetInstance) {
	sc := sim.Scenario{
		Account: account, Region: region,
		VPCs: []sim.VPC{{ID: vpcA, CIDR: "10.0.0.0/16", IPv6CIDR: "2600:1f18:1:100::/56"}, {ID: vpcB, CIDR: "10.1.0.0/16"}},
		Subnets: []sim.Subnet{
			{ID: subA1, VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.0.0/18"},
			{ID: subA2, VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.64.0/18"},
			{ID: subB1, VpcID: vpcB, AvailabilityZone: "us-east-1a", CIDR: "10.1.0.0/18"},
		},
		SecurityGroups: []sim.SecurityGroup{
			{ID: sgWeb, VpcID: vpcA, Name: "web", Description: "web",
				Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDR: "0.0.0.0/0"}}},
			{ID: sgSSH, VpcID: vpcA, Name: "ssh", Description: "ssh",
				Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "203.0.113.7/32"}}},
			{ID: sgDB, VpcID: vpcB, Name: "db-clients", Description: "db"},
		},
		InstanceProfiles: []sim.InstanceProfile{{Name: appProfile, Role: appProfile}, {Name: profileName, Role: profileName}},
		Topics:           []sim.Topic{{Name: topicName}},
		Buckets:          []sim.S3Bucket{{Name: "ec2-isolation-incidents-" + account, Versioning: true}},
		Behaviour: sim.Behaviour{AssociationSettle: 300 * time.Millisecond, GroupVisibilityDelay: 100 * time.Millisecond,
			SnapshotCompleteAfter: time.Second},
	}
	var want []fleetInstance
	for i := range n {
		id := fmt.Sprintf("i-%017x", 0xf1ee70000+i)
		eni := func(k int) string { return fmt.Sprintf("eni-%017x", 0xe0000000+i*4+k) }
		vol := func(k int) string { return fmt.Sprintf("vol-%017x", 0xd0000000+i*4+k) }
		// Tagged for isolation, as the event says: Validate acts on the instance's current tag.
		in := sim.Instance{ID: id, SubnetID: subA1, Tags: map[string]string{"Name": fmt.Sprintf("app-%d", i), tagKey: tagValue}}
		fi := fleetInstance{ID: id, ENIs: map[string]string{}}
		addENI := func(k int, subnet, vpc string, groups ...string) {
			in.NetworkInterfaces = append(in.NetworkInterfaces, sim.NetworkInterface{ID: eni(k), SubnetID: subnet, DeviceIndex: int32(k), Groups: groups})
			fi.ENIs[eni(k)] = vpc
		}
		addVolume := func(k int) {
			in.Volumes = append(in.Volumes, sim.Volume{ID: vol(k), DeviceName: fmt.Sprintf("/dev/xvd%c", 'a'+k), DeleteOnTermination: k == 0})
			fi.Volumes = append(fi.Volumes, vol(k))
		}
		addENI(0, subA1, vpcA, sgWeb, sgSSH)
		addVolume(0)
		switch i % 4 {
		case 1:
			addENI(1, subA2, vpcA, sgSSH)
			addVolume(1)
			in.Profile = appProfile
		case 2:
			addENI(1, subA2, vpcA, sgWeb)
			addENI(2, subB1, vpcB, sgDB)
			addVolume(1)
			in.Profile = appProfile
		case 3:
			addENI(1, subB1, vpcB, sgDB)
			in.Profile, in.AssociationState = appProfile, "associating"
		}
		fi.Profile = in.Profile != ""
		sc.Instances = append(sc.Instances, in)
		want = append(want, fi)
	}
	return sc, want
}

// options of an environment.
type options struct {
	// virtual: the test runs in a testing/synctest bubble (see virtualOptions); speed is then 1.
	virtual bool
	// speed: simulated time (the account's delays, the engine's retry waits and task timeouts) runs this many
	// times faster than real time.
	speed float64
	// attemptTimeout is the SDK clients' per-attempt HTTP timeout, in real time.
	attemptTimeout time.Duration
	// seed drives the engine's retry jitter (the simulator's fault draws have their own seed in the scenario).
	seed uint64
	// onEvent, if set, sees every history event as it is recorded, before the state acts: a test changes the
	// account there, mid-run.
	onEvent func(asl.Event)
	// profileName is the stack's isolation instance profile (default profileName).
	profileName string
}

// scaledOptions (the former default, kept for SOAK_CLOCK=scaled): simulated time 20 times faster; the product's per-attempt timeout (awscfg.AttemptTimeout, 20 s)
// in simulated time, against task timeouts of 60-90 s (the functions' 30-60 s Lambda timeouts plus 30 s). A call
// that hangs costs the step one attempt timeout, and the SDK retries it; a step whose calls hang three times in
// one run times out as a task. (The runner has no Lambda timeout: a deployed 30 s function would time out after
// one hang fewer, with the same outcome, a timed-out task the Catch reports.)
func scaledOptions() options {
	const speed = 20
	return options{speed: speed, attemptTimeout: awscfg.AttemptTimeout / speed, seed: 1}
}

// virtualOptions: the environment lives in a testing/synctest bubble (run the test body with synctest.Test),
// whose clock only advances when every goroutine of the bubble waits (a timer, a channel: the simulator is
// served over pipes, sim.WithPipes). Computing takes no simulated time, so CPU load cannot turn into task
// timeouts or refilled token buckets: the product's real timeouts (awscfg.AttemptTimeout, the definition's
// TimeoutSeconds) apply as deployed, and only the simulated delays and withheld answers make them expire.
func virtualOptions() options {
	return options{virtual: true, speed: 1, attemptTimeout: awscfg.AttemptTimeout, seed: 1}
}

// env is a simulated account with the workflow deployed twice: connection tracking direct and untrack-first.
type env struct {
	srv      *sim.Server
	runners  map[secgroup.Mode]*runner.Runner
	reader   *ec2.Client
	topicARN string
	// noAnswer counts the functions' HTTP attempts that ended without an answer (their per-attempt timeout, a
	// closed connection, a cancelled context), as the clients saw them.
	noAnswer atomic.Int64
}

// countingTransport counts the attempts that got no answer.
type countingTransport struct {
	next     http.RoundTripper
	noAnswer *atomic.Int64
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		c.noAnswer.Add(1)
	}
	return resp, err
}

func newEnv(t testing.TB, sc sim.Scenario, o options) *env {
	t.Helper()
	var (
		simOpt sim.Option
		engine asl.Options
	)
	if o.virtual {
		// The bubble's time package is the virtual clock: the simulator's RealClock and the engine's defaults.
		simOpt = sim.WithInProcess()
	} else {
		clock := sim.NewScaledClock(o.speed)
		simOpt, engine = sim.WithClock(clock), asl.Scaled(o.speed, clock.Now)
	}
	srv, err := sim.Start(sc, simOpt)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(srv.Close)
	e := &env{srv: srv, runners: map[secgroup.Mode]*runner.Runner{},
		reader:   ec2.NewFromConfig(srv.AWSConfig("reliability-test")),
		topicARN: fmt.Sprintf("arn:aws:sns:%s:%s:%s", region, account, topicName)}
	rng := &lockedRand{r: rand.New(rand.NewPCG(o.seed, o.seed^0x5eed))}
	engine.Rand = rng.Float64
	engine.OnEvent = o.onEvent
	if o.profileName == "" {
		o.profileName = profileName
	}
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		vars := stackenv.ForSim(sc, region, account, map[string]string{
			"TAG_KEY": tagKey, "TAG_VALUE": tagValue,
			"ISOLATION_GROUP_NAME": groupName, "ISOLATION_PROFILE_NAME": o.profileName,
			"CONNECTION_TRACKING": string(mode), "TOPIC_ARN": e.topicARN,
		})
		r, err := runner.New(runner.Config{
			Definition: ec2isolation.Definition,
			Region:     region,
			Account:    account,
			AWS: func(function string) aws.Config {
				cfg := srv.AWSConfig(function)
				hc := *cfg.HTTPClient.(*http.Client)
				hc.Timeout = o.attemptTimeout
				hc.Transport = countingTransport{next: hc.Transport, noAnswer: &e.noAnswer}
				cfg.HTTPClient = &hc
				return cfg
			},
			Env:    stackenv.Getenv(vars),
			Log:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Engine: engine,
		})
		if err != nil {
			t.Fatalf("runner: %v", err)
		}
		e.runners[mode] = r
	}
	return e
}

type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// event is the EventBridge event of instance id tagged Isolate=true.
func event(id string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"version":"0","id":"3f9c1b6e-2d4a-4c8e-9f1a-%012x","detail-type":"Tag Change on Resource",
"source":"aws.tag","account":%q,"time":"2026-11-22T10:00:00Z","region":%q,
"resources":["arn:aws:ec2:%s:%s:instance/%s"],
"detail":{"changed-tag-keys":[%q],"service":"ec2","resource-type":"instance","version":3,"tags":{%q:%q,"Name":"web"}}}`,
		len(id), account, region, region, account, id, tagKey, tagKey, tagValue))
}

// clearFaults stops every injected fault (the cause of the failures fixed, before the redrives).
func (e *env) clearFaults() {
	e.srv.Update(func(a *sim.Account) { a.Faults = sim.Faults{} })
}

// notifications are the published messages about one instance: the failed state of each failure notification,
// and the number of success notifications.
type notifications struct {
	Failed    []string
	Succeeded int
}

// notified sorts srv.Messages() by the instance their subject names.
func (e *env) notified() map[string]*notifications {
	out := map[string]*notifications{}
	get := func(id string) *notifications {
		if out[id] == nil {
			out[id] = &notifications{}
		}
		return out[id]
	}
	for _, m := range e.srv.Messages() {
		switch {
		case strings.HasPrefix(m.Subject, "EC2 isolation SUCCEEDED: "):
			id, _, _ := strings.Cut(strings.TrimPrefix(m.Subject, "EC2 isolation SUCCEEDED: "), " ")
			get(id).Succeeded++
		case strings.HasPrefix(m.Subject, "EC2 isolation FAILED for "):
			id, state, _ := strings.Cut(strings.TrimPrefix(m.Subject, "EC2 isolation FAILED for "), " at ")
			get(id).Failed = append(get(id).Failed, state)
		default:
			get("?").Failed = append(get("?").Failed, "unrecognised subject: "+m.Subject)
		}
	}
	return out
}

// isolationProblems reads the instance's state through the SDK and lists how it falls short of isolated: every
// ENI still attached and carrying only its VPC's isolation group, which has no rule; the isolation profile as
// the only association; one snapshot per volume tagged with the execution. Empty means isolated.
func (e *env) isolationProblems(ctx context.Context, fi fleetInstance, execution string) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	out, err := e.reader.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{fi.ID}})
	if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		return []string{fmt.Sprintf("describe instance: %v", err)}
	}
	inst := out.Reservations[0].Instances[0]
	attached := map[string][]string{}
	for _, n := range inst.NetworkInterfaces {
		var groups []string
		for _, g := range n.Groups {
			groups = append(groups, aws.ToString(g.GroupId))
		}
		attached[aws.ToString(n.NetworkInterfaceId)] = groups
	}
	for eni, vpc := range fi.ENIs {
		groups, ok := attached[eni]
		if !ok {
			bad("%s is no longer attached", eni)
			continue
		}
		iso, err := e.isolationGroup(ctx, vpc)
		if err != nil {
			bad("%s: %v", eni, err)
			continue
		}
		if !slices.Equal(groups, []string{iso}) {
			bad("%s carries %v, want only the isolation group %s of %s", eni, groups, iso, vpc)
		}
	}

	as, err := e.reader.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{fi.ID}}}})
	if err != nil {
		bad("describe associations: %v", err)
	} else {
		var active []string
		for _, a := range as.IamInstanceProfileAssociations {
			if a.State != types.IamInstanceProfileAssociationStateDisassociated {
				active = append(active, fmt.Sprintf("%s (%s)", aws.ToString(a.IamInstanceProfile.Arn), a.State))
			}
		}
		want := fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", account, profileName)
		if len(active) != 1 || !strings.HasPrefix(active[0], want+" ") {
			bad("profile associations %v, want only %s", active, want)
		}
	}

	snaps, err := e.reader.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{
		{Name: aws.String("tag:" + snapshot.TagInstanceID), Values: []string{fi.ID}},
		{Name: aws.String("tag:" + snapshot.TagExecution), Values: []string{execution}},
	}})
	if err != nil {
		bad("describe snapshots: %v", err)
	} else {
		var vols []string
		for _, s := range snaps.Snapshots {
			vols = append(vols, aws.ToString(s.VolumeId))
		}
		slices.Sort(vols)
		if !slices.Equal(vols, fi.Volumes) {
			bad("snapshots of execution %s cover volumes %v, want one each of %v", execution, vols, fi.Volumes)
		}
	}
	return problems
}

// isolationGroup is the id of the isolation group of vpc, after checking that it is the only one of that name
// and has no ingress and no egress rule.
func (e *env) isolationGroup(ctx context.Context, vpc string) (string, error) {
	out, err := e.reader.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{groupName}},
	}})
	if err != nil {
		return "", fmt.Errorf("describe isolation group of %s: %w", vpc, err)
	}
	if len(out.SecurityGroups) != 1 {
		return "", fmt.Errorf("%d isolation groups in %s", len(out.SecurityGroups), vpc)
	}
	g := out.SecurityGroups[0]
	if len(g.IpPermissions) != 0 || len(g.IpPermissionsEgress) != 0 {
		return "", fmt.Errorf("isolation group %s has %d ingress and %d egress rules", aws.ToString(g.GroupId), len(g.IpPermissions), len(g.IpPermissionsEgress))
	}
	return aws.ToString(g.GroupId), nil
}

// namedErrors are the error names a task may fail with: the steperr types (aws-lambda-go reports the Go type
// name) and the engine's own. Anything else (a panic's type, errorString, wrapError, a JSON decoding error) is
// an unnamed error.
var namedErrors = map[string]bool{
	"InvalidEvent": true, "InvalidInput": true, "ConfigError": true, "InstanceNotFound": true,
	"InstanceNotIsolatable": true, "AssociationPending": true, "ProfileNotReady": true, "GroupNotVisible": true,
	"Throttled": true, "Transient": true, "AWSError": true, "IsolationFailed": true,
	"ReleaseFailed": true, "NotIsolated": true, "RecordMissing": true,
	"Superseded": true, "NotContained": true, "GroupMissing": true, "IsolationInProgress": true,
	asl.ErrorTimeout: true,
}

// unnamedErrors lists the task failures of an execution whose error is not a named one.
func unnamedErrors(ex *asl.Execution) []string {
	var out []string
	for _, ev := range ex.History.Events() {
		if (ev.Type == asl.TaskFailed || ev.Type == asl.TaskTimedOut) && !namedErrors[ev.Error] {
			out = append(out, fmt.Sprintf("%s: %s: %s", ev.State, ev.Error, ev.Cause))
		}
	}
	return out
}

// failedStates are the states whose failure markers reached "Notify failure" in the execution's last run.
func failedStates(ex *asl.Execution) []string {
	var states []string
	for _, r := range ex.History.Summary() {
		if r.Name != "Notify failure" || r.RedriveCount != ex.RedriveCount {
			continue
		}
		// The state's raw input: Parameters passes $.failed.failures on.
		var in struct {
			Failed struct {
				Failures []struct{ State string } `json:"failures"`
			} `json:"failed"`
		}
		_ = json.Unmarshal(r.Input, &in)
		states = states[:0]
		for _, f := range in.Failed.Failures {
			states = append(states, f.State)
		}
	}
	return states
}
