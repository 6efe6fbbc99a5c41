package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

var interleaveN = flag.Int("interleave.n", 0, "schedules of TestInterleavings (default 40, 8 with -short; INTERLEAVE_SCHEDULES overrides)")

const (
	// defaultInterleaveBase: schedule k of a run has seed base+k (INTERLEAVE_BASE moves the window).
	defaultInterleaveBase = 1_200_000
	// interleaveParallel schedules run at once, each in its own simulated account.
	interleaveParallel = 32
	// hangBound is the simulated time after which an execution (or redrive) still running is a hang: its
	// context is cancelled and it ends ABORTED. The longest legitimate run (every retrier of a step exhausted,
	// ~30 min for Throttled) fits well within it.
	hangBound = 3 * time.Hour
)

// The instance of every schedule, and the spare ENIs a hand attaches to it.
const (
	spareInstance = "i-0000000000005a4e0"
	spareA        = "eni-0000000000005a4e1" // in vpcA
	spareB        = "eni-0000000000005a4e2" // in vpcB: a VPC the instance may not have been in
)

// A step of a schedule: at a simulated time after the schedule's start, an execution starts (with the tag it
// follows set first), a hand changes the account, or the faults change.
type step struct {
	At   time.Duration
	Kind string // isolate, redeliver (an isolation event again, tag unchanged), release, attach, detach, rule, groups, delgroup, terminate, faults, calm
	// Exec: the execution's index (isolate, redeliver, release).
	Exec int
	// VPC: the spare ENI's VPC (attach), the group's VPC (rule, delgroup).
	VPC string
	// Faults, for "faults".
	Rate  float64
	Mix   string // which faults: any of t (throttling) 5 (5xx) l (lost answers: applied, answer withheld) o (timeouts, not applied)
	Until time.Duration
}

// schedule is one generated interleaving over one instance.
type schedule struct {
	Seed  uint64
	Shape int
	Steps []step
	// Redrive[k]: the simulated delay after execution k's run fails before it is redriven (0: never), at most
	// Redrives times.
	Redrive  []time.Duration
	Redrives int
	Mode     secgroup.Mode
}

func (s schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, shape %d, %s, redrives %v x%d:", s.Seed, s.Shape, s.Mode, s.Redrive, s.Redrives)
	for _, st := range s.Steps {
		fmt.Fprintf(&b, " [%s %s", st.At.Round(time.Millisecond), st.Kind)
		switch st.Kind {
		case "isolate", "redeliver", "release":
			fmt.Fprintf(&b, " e%d", st.Exec)
		case "attach", "rule", "delgroup":
			fmt.Fprintf(&b, " %s", st.VPC)
		case "faults":
			fmt.Fprintf(&b, " %.0f%% %s until %s", 100*st.Rate, st.Mix, st.Until.Round(time.Millisecond))
		}
		b.WriteString("]")
	}
	return b.String()
}

// generate draws a schedule from its seed alone: 2-4 executions for the instance (isolations, redeliveries,
// releases), 0-3 hand changes, a fault window, and redrives of what fails.
func generate(seed uint64) schedule {
	r := rand.New(rand.NewPCG(seed, 0x1a7e41ea5e))
	s := schedule{Seed: seed, Shape: r.IntN(4), Redrives: 1 + r.IntN(2)}
	pick := func(weights map[string]int, order []string) string {
		total := 0
		for _, k := range order {
			total += weights[k]
		}
		n := r.IntN(total)
		for _, k := range order {
			if n < weights[k] {
				return k
			}
			n -= weights[k]
		}
		panic("unreachable")
	}
	within := func(d time.Duration) time.Duration { return time.Duration(r.Int64N(int64(d))) }

	execs := 2 + r.IntN(3)
	for k := range execs {
		kind, at := "isolate", within(5*time.Second)
		if k == 0 && r.IntN(8) == 0 {
			kind = "release"
		}
		if k > 0 {
			kind = pick(map[string]int{"isolate": 3, "redeliver": 2, "release": 3}, []string{"isolate", "redeliver", "release"})
			at = within(100 * time.Second)
		}
		s.Steps = append(s.Steps, step{At: at, Kind: kind, Exec: k})
		delay := time.Duration(0)
		if r.IntN(10) < 7 {
			delay = 10*time.Second + within(200*time.Second)
		}
		s.Redrive = append(s.Redrive, delay)
	}
	vpcs := []string{vpcA, vpcB}
	for range r.IntN(4) {
		kind := pick(map[string]int{"attach": 3, "detach": 2, "rule": 3, "groups": 3, "delgroup": 2, "terminate": 1},
			[]string{"attach", "detach", "rule", "groups", "delgroup", "terminate"})
		s.Steps = append(s.Steps, step{At: within(150 * time.Second), Kind: kind, VPC: vpcs[r.IntN(2)]})
	}
	if r.IntN(10) < 6 {
		mixes := []string{"t", "5", "l", "o", "t5", "5l", "t5lo", "lo"}
		from := within(90 * time.Second)
		until := from + 5*time.Second + within(180*time.Second)
		s.Steps = append(s.Steps,
			step{At: from, Kind: "faults", Rate: 0.05 + 0.30*r.Float64(), Mix: mixes[r.IntN(len(mixes))], Until: until},
			step{At: until, Kind: "calm"})
	}
	s.Mode = secgroup.ModeDirect
	if r.IntN(3) == 0 {
		s.Mode = secgroup.ModeUntrackFirst
	}
	slices.SortStableFunc(s.Steps, func(a, b step) int { return int(a.At - b.At) })
	return s
}

// scheduleFaults are the faults of a window: rate of every call, spread over the kinds of mix. A Publish is
// never applied-then-lost (a lost publish answer is retried and notifies twice: at-least-once is intended, and
// exactly-one is what check (d) counts).
func scheduleFaults(seed uint64, rate float64, mix string) sim.Faults {
	var rules []sim.ErrorFault
	share := rate / float64(len(mix))
	left := 1.0
	add := func(f sim.ErrorFault) {
		f.Rate = share / left
		rules = append(rules, f)
		left -= share
	}
	for _, k := range mix {
		switch k {
		case 't':
			add(sim.ErrorFault{Service: "ec2", Code: "RequestLimitExceeded"})
		case '5':
			add(sim.ErrorFault{Code: "InternalError"})
		case 'l':
			add(sim.ErrorFault{Service: "ec2", Timeout: time.Hour, Applied: true})
		case 'o':
			add(sim.ErrorFault{Timeout: time.Hour})
		}
	}
	return sim.Faults{Seed: seed, Keyed: true, Errors: rules, Latency: callLatency}
}

// callLatency: every call takes simulated time, so that the calls of concurrent executions interleave.
var callLatency = sim.Latency{Default: 20 * time.Millisecond}

// oneInstance is the fleet's instance of the given shape, alone, with a stopped spare instance holding the ENIs a
// hand may move to it.
func oneInstance(shape int) (sim.Scenario, fleetInstance) {
	sc, fleetOf := fleet(4)
	sc.Instances, fleetOf = sc.Instances[shape:shape+1], fleetOf[shape:shape+1]
	// Untagged: each execution of the schedule sets the tag it follows.
	delete(sc.Instances[0].Tags, tagKey)
	sc.Faults.Latency = callLatency
	sc.Instances = append(sc.Instances, sim.Instance{ID: spareInstance, SubnetID: subA2, State: "stopped",
		NetworkInterfaces: []sim.NetworkInterface{
			{ID: "eni-0000000000005a4e0", SubnetID: subA2, DeviceIndex: 0, Groups: []string{sgWeb}},
			{ID: spareA, SubnetID: subA2, DeviceIndex: 1, Groups: []string{sgSSH}},
			{ID: spareB, SubnetID: subB1, DeviceIndex: 2, Groups: []string{sgDB}},
		}})
	return sc, fleetOf[0]
}

// tagEvent is the EventBridge event of instance id tagged Isolate=value.
func tagEvent(id, value string) json.RawMessage {
	return json.RawMessage(strings.Replace(string(event(id)), fmt.Sprintf("%q:%q", tagKey, tagValue), fmt.Sprintf("%q:%q", tagKey, value), 1))
}

// simKey carries a schedule's transport to its simulator in the context: the runners are shared, the accounts
// are not (the SDK signs each function's requests with its own access key, so the simulator still tells the
// callers apart).
type simKey struct{}

type routedTransport struct{}

func (routedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr, _ := req.Context().Value(simKey{}).(http.RoundTripper)
	if tr == nil {
		return nil, errors.New("reliability: a request outside any schedule")
	}
	return tr.RoundTrip(req)
}

// midJitter is awscfg.FullJitter's backoff without the randomness: the middle of its range.
type midJitter struct{ Base, Max time.Duration }

func (b midJitter) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	ceiling := b.Max
	if d := b.Base << min(attempt, 30); d > 0 && d < ceiling {
		ceiling = d
	}
	return ceiling / 2, nil
}

// interleaver holds the runners every schedule shares.
type interleaver struct {
	// isolation by connection tracking mode: the stacks of a schedule's account are deployed in one mode.
	isolation map[secgroup.Mode]*runner.Runner
	release   *runner.Runner
}

func newInterleaver(t *testing.T) *interleaver {
	sc, _ := oneInstance(0)
	build := func(def []byte, name string, mode secgroup.Mode) *runner.Runner {
		vars := stackenv.ForSim(sc, region, account, map[string]string{
			"TAG_KEY": tagKey, "TAG_VALUE": tagValue, "ISOLATION_GROUP_NAME": groupName, "ISOLATION_PROFILE_NAME": profileName,
			"TOPIC_ARN": fmt.Sprintf("arn:aws:sns:%s:%s:%s", region, account, topicName), "CONNECTION_TRACKING": string(mode),
		})
		r, err := runner.New(runner.Config{
			Definition: def, StateMachineName: name, Region: region, Account: account,
			AWS: func(function string) aws.Config {
				return aws.Config{
					Region: region, BaseEndpoint: aws.String("http://127.0.0.1:1"),
					Credentials: credentials.NewStaticCredentialsProvider(function, "simulated-secret", ""),
					Retryer: func() aws.Retryer {
						return awscfg.Retryer(midJitter{Base: time.Millisecond, Max: 20 * time.Millisecond})
					},
					HTTPClient: &http.Client{Transport: routedTransport{}, Timeout: awscfg.AttemptTimeout},
				}
			},
			Env: stackenv.Getenv(vars),
			Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
			// Replayable: the retriers' full jitter draws the middle of its range (a shared random source would
			// make a schedule's timing depend on the others').
			Engine: asl.Options{Rand: func() float64 { return 0.5 }},
		})
		if err != nil {
			t.Fatalf("runner: %v", err)
		}
		return r
	}
	return &interleaver{
		isolation: map[secgroup.Mode]*runner.Runner{
			secgroup.ModeDirect:       build(ec2isolation.Definition, runner.StateMachineName, secgroup.ModeDirect),
			secgroup.ModeUntrackFirst: build(ec2isolation.Definition, runner.StateMachineName, secgroup.ModeUntrackFirst),
		},
		release: build(ec2isolation.ReleaseDefinition, runner.ReleaseStateMachineName, secgroup.ModeDirect),
	}
}

// execution is one execution of a schedule and what was seen of its runs.
type execution struct {
	Name, Workflow string
	Start          time.Duration
	ex             *asl.Execution
	runs           []runRecord
}

// runRecord is one run (the first or a redrive): its status and the read-back at its end.
type runRecord struct {
	Status     asl.Status
	From, To   time.Duration // simulated, from the schedule's start; To is after the read-back
	Problems   []string      // what the read-back found short of the promise (check a or c)
	Cutoff     time.Duration // isolation: when the run last entered its verification state
	Terminated bool
}

// outcome is a schedule's result: the violations of the checks, each prefixed by its letter.
type outcome struct {
	s          schedule
	violations []string
	// What the runs were, kept small: 2,000 schedules' histories would not fit in memory.
	executions, runs, succeeded, failed int
	summary                             string // runsSummary, for a failed schedule
}

// handChange is a change a hand made, at a simulated time.
type handChange struct {
	At   time.Duration
	What string
}

// play runs one schedule in its own simulated account and checks it. It runs inside the bubble.
func (il *interleaver) play(ctx context.Context, s schedule) outcome {
	sc, inst := oneInstance(s.Shape)
	srv, err := sim.Start(sc, sim.WithInProcess())
	if err != nil {
		return outcome{s: s, violations: []string{"e: start simulator: " + err.Error()}}
	}
	defer srv.Close()
	ctx = context.WithValue(ctx, simKey{}, srv.AWSConfig("").HTTPClient.(*http.Client).Transport)
	begin := time.Now()
	since := func() time.Duration { return time.Since(begin) }
	pl := &player{il: il, s: s, srv: srv, inst: inst, since: since, begin: begin, attached: map[string]bool{},
		ec2: ec2.NewFromConfig(srv.AWSConfig("interleave-check")), s3: s3.NewFromConfig(srv.AWSConfig("interleave-check"), func(o *s3.Options) { o.UsePathStyle = true })}
	var wg sync.WaitGroup
	for _, st := range s.Steps {
		if d := st.At - since(); d > 0 {
			time.Sleep(d)
		}
		switch st.Kind {
		case "isolate", "redeliver", "release":
			e := &execution{Name: fmt.Sprintf("s%d-e%d-%s", s.Seed, st.Exec, st.Kind), Workflow: workflow.WorkflowIsolation, Start: since()}
			value := tagValue
			if st.Kind == "release" {
				e.Workflow, value = workflow.WorkflowRelease, "release"
			}
			if st.Kind != "redeliver" {
				srv.Update(func(a *sim.Account) { a.SetTag(inst.ID, tagKey, value) })
			}
			pl.mu.Lock()
			pl.execs = append(pl.execs, e)
			pl.mu.Unlock()
			wg.Go(func() { pl.runExecution(ctx, e, tagEvent(inst.ID, value), s.Redrive[st.Exec]) })
		case "faults":
			srv.Update(func(a *sim.Account) { a.Faults = scheduleFaults(s.Seed, st.Rate, st.Mix) })
		case "calm":
			srv.Update(func(a *sim.Account) { a.Faults = sim.Faults{Latency: callLatency} })
		default:
			if what := pl.hand(st); what != "" {
				pl.mu.Lock()
				pl.hands = append(pl.hands, handChange{At: since(), What: what})
				pl.mu.Unlock()
			}
		}
	}
	wg.Wait()
	srv.Update(func(a *sim.Account) { a.Faults = sim.Faults{} })
	return pl.check(ctx)
}

// player is a schedule being played.
type player struct {
	il    *interleaver
	s     schedule
	srv   *sim.Server
	inst  fleetInstance
	since func() time.Duration
	begin time.Time
	ec2   *ec2.Client
	s3    *s3.Client

	mu       sync.Mutex
	execs    []*execution
	hands    []handChange
	attached map[string]bool // spare ENIs a hand attached to the instance
}

// hand makes a hand change; it returns what it did ("" if there was nothing to do).
func (pl *player) hand(st step) string {
	var what string
	pl.srv.Update(func(a *sim.Account) {
		id := pl.inst.ID
		switch st.Kind {
		case "attach":
			eni, index := spareA, int32(6)
			if st.VPC == vpcB {
				eni, index = spareB, 7
			}
			if !pl.attached[eni] && a.DetachNetworkInterface(eni) == nil && a.AttachNetworkInterface(eni, id, index) == nil {
				pl.attached[eni] = true
				what = "attached " + eni
			}
		case "detach":
			// A spare the hand attached, else the instance's second ENI (the primary cannot be detached).
			candidates := []string{spareA, spareB, fleetENI(pl.s.Shape, 1)}
			for _, eni := range candidates {
				_, own := pl.inst.ENIs[eni]
				if (pl.attached[eni] || own) && a.DetachNetworkInterface(eni) == nil {
					delete(pl.attached, eni)
					what = "detached " + eni
					break
				}
			}
		case "rule":
			if g := a.SecurityGroupID(st.VPC, groupName); g != "" &&
				a.AddIngressRule(g, sim.Rule{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "198.51.100.0/24"}) == nil {
				what = "rule added to " + g
			}
		case "groups":
			// A responder puts the primary ENI back on an application group.
			if eni := fleetENI(pl.s.Shape, 0); a.SetNetworkInterfaceGroups(eni, []string{sgWeb}) == nil {
				what = eni + " set to " + sgWeb
			}
		case "delgroup":
			if g := a.SecurityGroupID(st.VPC, groupName); g != "" && a.DeleteSecurityGroup(g) == nil {
				what = "deleted " + g
			}
		case "terminate":
			if a.TerminateInstance(id) == nil {
				what = "terminated"
			}
		}
	})
	return what
}

// runExecution starts an execution, reads the account back at the end of each run, and redrives what failed.
func (pl *player) runExecution(ctx context.Context, e *execution, ev json.RawMessage, redriveAfter time.Duration) {
	r := pl.il.isolation[pl.s.Mode]
	if e.Workflow == workflow.WorkflowRelease {
		r = pl.il.release
	}
	run := func(first bool) {
		from := pl.since()
		rctx, cancel := context.WithTimeout(ctx, hangBound)
		defer cancel()
		if first {
			e.ex = r.Start(rctx, e.Name, ev)
		} else if err := r.Redrive(rctx, e.ex); err != nil {
			pl.mu.Lock()
			e.runs = append(e.runs, runRecord{Status: "REDRIVE REFUSED: " + asl.Status(err.Error()), From: from, To: pl.since()})
			pl.mu.Unlock()
			return
		}
		rec := runRecord{Status: e.ex.Status, From: from}
		if e.ex.Status == asl.StatusSucceeded {
			if e.Workflow == workflow.WorkflowIsolation {
				rec.Cutoff = pl.cutoff(e.ex, from)
				rec.Problems, rec.Terminated = pl.containment(ctx)
			} else {
				rec.Problems, rec.Terminated = pl.restored(ctx, e)
			}
		}
		rec.To = pl.since()
		pl.mu.Lock()
		e.runs = append(e.runs, rec)
		pl.mu.Unlock()
	}
	run(true)
	for i := 0; i < pl.s.Redrives && redriveAfter > 0 && e.ex.Status == asl.StatusFailed; i++ {
		time.Sleep(redriveAfter)
		run(false)
	}
}

// verificationStates: the state whose entry starts the window in which a hand change may legitimately undo a
// SUCCEEDED isolation before the read-back: the final read-back when the definition has it, else the first
// state after containment.
var verificationStates = []string{"Verify containment", "Snapshot volumes"}

// cutoff is when the execution last entered its verification state (from the run's start if never).
func (pl *player) cutoff(ex *asl.Execution, from time.Duration) time.Duration {
	for _, name := range verificationStates {
		var last time.Time
		for _, r := range ex.History.Summary() {
			if r.Name == name && r.Start.After(last) {
				last = r.Start
			}
		}
		if !last.IsZero() {
			// History times are the bubble's clock, as is since().
			return last.Sub(pl.begin)
		}
	}
	return from
}

// retry calls f until it succeeds: the read-backs run under the schedule's faults too.
func retry[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 30 {
		if v, err = f(); err == nil {
			return v, nil
		}
		time.Sleep(2 * time.Second)
	}
	return v, err
}

// describe reads the instance and its active profile associations.
func (pl *player) describe(ctx context.Context) (types.Instance, []types.IamInstanceProfileAssociation, error) {
	out, err := retry(func() (*ec2.DescribeInstancesOutput, error) {
		return pl.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{pl.inst.ID}})
	})
	if err != nil {
		return types.Instance{}, nil, err
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		return types.Instance{}, nil, fmt.Errorf("describe %s: %d reservations", pl.inst.ID, len(out.Reservations))
	}
	as, err := retry(func() (*ec2.DescribeIamInstanceProfileAssociationsOutput, error) {
		return pl.ec2.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{pl.inst.ID}}}})
	})
	if err != nil {
		return types.Instance{}, nil, err
	}
	var active []types.IamInstanceProfileAssociation
	for _, a := range as.IamInstanceProfileAssociations {
		if a.State != types.IamInstanceProfileAssociationStateDisassociated {
			active = append(active, a)
		}
	}
	return out.Reservations[0].Instances[0], active, nil
}

// containment reads the instance back (check a): every attached ENI carries exactly one group, an isolation
// group of its own VPC (named as the stack's, or derived from it) with no rule; the isolation profile is the only
// association.
func (pl *player) containment(ctx context.Context) (problems []string, terminated bool) {
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	inst, active, err := pl.describe(ctx)
	if err != nil {
		return []string{"read-back: " + err.Error()}, false
	}
	if inst.State != nil && inst.State.Name == types.InstanceStateNameTerminated {
		return nil, true
	}
	groups, err := retry(func() (*ec2.DescribeSecurityGroupsOutput, error) {
		return pl.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	})
	if err != nil {
		return []string{"read-back: " + err.Error()}, false
	}
	byID := map[string]types.SecurityGroup{}
	for _, g := range groups.SecurityGroups {
		byID[aws.ToString(g.GroupId)] = g
	}
	for _, n := range inst.NetworkInterfaces {
		eni, vpc := aws.ToString(n.NetworkInterfaceId), aws.ToString(n.VpcId)
		var ids []string
		for _, g := range n.Groups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
		if len(ids) != 1 {
			bad("%s carries %v, want exactly its VPC's isolation group", eni, ids)
			continue
		}
		g, ok := byID[ids[0]]
		switch {
		case !ok:
			bad("%s carries %s, which does not exist", eni, ids[0])
		case !isolationGroupNames[aws.ToString(g.GroupName)] || aws.ToString(g.VpcId) != vpc:
			bad("%s carries %s (%s), not an isolation group of %s", eni, ids[0], aws.ToString(g.GroupName), vpc)
		case len(g.IpPermissions) != 0 || len(g.IpPermissionsEgress) != 0:
			bad("%s carries %s, which has %d inbound and %d outbound rules", eni, ids[0], len(g.IpPermissions), len(g.IpPermissionsEgress))
		}
	}
	// An association still "disassociating" is not the isolation profile attached; one "associating" is on its
	// way (the instance's credentials already come from it).
	want := fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", account, profileName)
	if len(active) != 1 || aws.ToString(active[0].IamInstanceProfile.Arn) != want ||
		active[0].State == types.IamInstanceProfileAssociationStateDisassociating {
		var got []string
		for _, a := range active {
			got = append(got, fmt.Sprintf("%s (%s)", aws.ToString(a.IamInstanceProfile.Arn), a.State))
		}
		bad("profile associations %v, want only %s", got, want)
	}
	return problems, false
}

// incidentFiles reads every version of the instance's incident record.
func (pl *player) incidentFiles(ctx context.Context) ([]workflow.IncidentFile, error) {
	bucket, key := "ec2-isolation-incidents-"+account, workflow.IncidentKey(account, region, pl.inst.ID)
	vs, err := retry(func() (*s3.ListObjectVersionsOutput, error) {
		return pl.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &key})
	})
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	var files []workflow.IncidentFile
	for _, v := range vs.Versions {
		if aws.ToString(v.Key) != key {
			continue
		}
		body, err := retry(func() ([]byte, error) {
			out, err := pl.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, VersionId: v.VersionId})
			if err != nil {
				return nil, err
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		})
		if err != nil {
			return nil, fmt.Errorf("get version %s: %w", aws.ToString(v.VersionId), err)
		}
		var f workflow.IncidentFile
		if err := json.Unmarshal(body, &f); err != nil {
			return nil, fmt.Errorf("version %s: %w", aws.ToString(v.VersionId), err)
		}
		files = append(files, f)
	}
	return files, nil
}

// restored reads the instance back after a SUCCEEDED release (check c): every recorded ENI still attached has
// its recorded groups, the recorded profile is the only association, or the release's steps name what they
// skipped.
func (pl *player) restored(ctx context.Context, e *execution) (problems []string, terminated bool) {
	files, err := pl.incidentFiles(ctx)
	if err != nil {
		return []string{"read incident: " + err.Error()}, false
	}
	var pre *workflow.PreIsolationState
	for _, f := range files {
		for i, inc := range f.Incidents {
			for _, x := range inc.Executions {
				if x.ExecutionName == e.Name {
					pre = &f.Incidents[i].PreIsolation
				}
			}
		}
	}
	if pre == nil {
		return []string{"the release succeeded but no incident lists it"}, false
	}
	inst, active, err := pl.describe(ctx)
	if err != nil {
		return []string{"read-back: " + err.Error()}, false
	}
	if inst.State != nil && inst.State.Name == types.InstanceStateNameTerminated {
		return nil, true
	}
	skipped := skippedText(e.ex)
	named := func(id string) bool { return strings.Contains(skipped, id) }
	attached := map[string][]string{}
	for _, n := range inst.NetworkInterfaces {
		var ids []string
		for _, g := range n.Groups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
		slices.Sort(ids)
		attached[aws.ToString(n.NetworkInterfaceId)] = ids
	}
	for _, n := range pre.Record.NetworkInterfaces {
		got, ok := attached[n.ID]
		want := slices.Sorted(slices.Values(n.Groups))
		if ok && !slices.Equal(got, want) && !named(n.ID) {
			problems = append(problems, fmt.Sprintf("%s carries %v, recorded %v, and the release does not say why", n.ID, got, want))
		}
	}
	// An association "disassociating" is on its way out.
	var got []string
	for _, a := range active {
		if a.State != types.IamInstanceProfileAssociationStateDisassociating {
			got = append(got, aws.ToString(a.IamInstanceProfile.Arn))
		}
	}
	var want []string
	if pre.Record.ProfileAssociation != nil {
		want = []string{pre.Record.ProfileAssociation.ProfileARN}
	}
	if !slices.Equal(got, want) && !named("profile") {
		problems = append(problems, fmt.Sprintf("profile associations %v, recorded %v, and the release does not say why", got, want))
	}
	return problems, false
}

// skippedText is every "skipped" entry the execution's restore steps returned.
func skippedText(ex *asl.Execution) string {
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "skipped" {
					fmt.Fprint(&b, x, "\n")
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for _, r := range ex.History.Summary() {
		if strings.HasPrefix(r.Name, "Restore") {
			var v any
			_ = json.Unmarshal(r.Output, &v)
			walk(v)
		}
	}
	return b.String()
}

// isolationGroupNames: the stack's group, or its group of the derived name where a foreign group took the name.
var isolationGroupNames = map[string]bool{groupName: true, secgroup.DerivedName(groupName): true}

// applicationGroups are the scenario's own groups: any other group on an ENI is the workflow's.
var applicationGroups = map[string]bool{sgWeb: true, sgSSH: true, sgDB: true}

// fleetENI is the id of ENI k of the fleet's instance of the given shape.
func fleetENI(shape, k int) string { return fmt.Sprintf("eni-%017x", 0xe0000000+shape*4+k) }

// check runs the checks over the played schedule.
func (pl *player) check(ctx context.Context) outcome {
	o := outcome{s: pl.s, executions: len(pl.execs)}
	for _, e := range pl.execs {
		for _, r := range e.runs {
			o.runs++
			switch r.Status {
			case asl.StatusSucceeded:
				o.succeeded++
			case asl.StatusFailed:
				o.failed++
			}
		}
	}

	bad := func(format string, a ...any) { o.violations = append(o.violations, fmt.Sprintf(format, a...)) }

	// (a) and (c), on the read-backs made at the end of each SUCCEEDED run.
	for _, e := range pl.execs {
		for _, r := range e.runs {
			if r.Status != asl.StatusSucceeded || len(r.Problems) == 0 || r.Terminated {
				continue
			}
			if why := pl.excused(e, r); why != "" {
				continue
			}
			letter := "a: SUCCEEDED isolation not contained"
			if e.Workflow == workflow.WorkflowRelease {
				letter = "c: SUCCEEDED release did not restore"
			}
			bad("%s: %s (run %s-%s): %s", letter, e.Name, r.From, r.To, strings.Join(r.Problems, "; "))
		}
	}

	// (b) no incident's pre-isolation state holds an isolation artifact, in any version of the record: the
	// instance's ENIs only ever carry the scenario's application groups or groups the workflow made.
	files, err := pl.incidentFiles(ctx)
	if err != nil && !strings.Contains(err.Error(), "NoSuchKey") {
		bad("b: read the incident record: %v", err)
	}
	isoProfile := fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", account, profileName)
	seen := map[string]bool{}
	for _, f := range files {
		for _, inc := range f.Incidents {
			rec := inc.PreIsolation.Record
			opened := inc.OpenedAt.Sub(pl.begin).Round(time.Millisecond).String()
			if len(inc.Executions) > 0 {
				opened += " by " + inc.Executions[0].ExecutionName
			}
			opened += fmt.Sprintf(" from an observation recorded at %s", rec.RecordedAt.Sub(pl.begin).Round(time.Millisecond))
			for _, n := range rec.NetworkInterfaces {
				for _, g := range n.Groups {
					if !applicationGroups[g] && !seen[n.ID+g] {
						seen[n.ID+g] = true
						bad("b: incident opened at %s records %s on %s, not an application group, as its pre-isolation state", opened, n.ID, g)
					}
				}
			}
			if p := rec.ProfileAssociation; p != nil && p.ProfileARN == isoProfile && !seen["profile"] {
				seen["profile"] = true
				bad("b: incident opened at %s records the isolation profile as its pre-isolation profile", opened)
			}
		}
	}

	// (d) every FAILED run published exactly one failure notification naming its execution, and a SUCCEEDED
	// execution one success notification.
	msgs := pl.srv.Messages()
	for _, e := range pl.execs {
		var failedRuns, failures, successes int
		for _, r := range e.runs {
			if r.Status == asl.StatusFailed {
				failedRuns++
			}
		}
		mark := `Execution:  ` + e.Name + `\n`
		for _, m := range msgs {
			// The evidence execution of an isolation bears its name (issue 16): its failure notification is its
			// own, not the isolation's.
			if !strings.Contains(m.Message, mark) || strings.HasPrefix(m.Subject, "EC2 evidence settings ") {
				continue
			}
			// " FAILED for ..." and " FAILED: ... is NOT contained".
			if strings.Contains(m.Subject, " FAILED") {
				failures++
			} else {
				successes++
			}
		}
		wantSuccess := 0
		if e.ex != nil && e.ex.Status == asl.StatusSucceeded {
			wantSuccess = 1
		}
		if failures != failedRuns || successes != wantSuccess {
			bad("d: %s: %d failed runs and %d failure notifications; %d success notifications, want %d (%s)", e.Name, failedRuns, failures, successes, wantSuccess, lastRun(e.ex))
		}
		if e.Workflow != workflow.WorkflowIsolation {
			continue
		}
		// Stage 2: each evidence execution of the isolation (named after it) that failed published one failure
		// notification of its own; one that succeeded (or skipped a released or terminated instance) none.
		var evFailed, evNotes int
		for _, ev := range pl.il.isolation[pl.s.Mode].Evidence(e.Name) {
			if ev.Status == asl.StatusFailed {
				evFailed++
			}
		}
		for _, m := range msgs {
			if strings.Contains(m.Message, mark) && strings.HasPrefix(m.Subject, "EC2 evidence settings ") {
				evNotes++
			}
		}
		if evNotes != evFailed {
			bad("d: %s: %d failed evidence executions and %d evidence notifications, want one each", e.Name, evFailed, evNotes)
		}
	}

	// (e) every run ended SUCCEEDED or FAILED within the bound, and no task failed with an unnamed error.
	for _, e := range pl.execs {
		for _, r := range e.runs {
			if r.Status != asl.StatusSucceeded && r.Status != asl.StatusFailed {
				bad("e: %s ended %s (run %s-%s)", e.Name, r.Status, r.From, r.To)
			}
		}
		if e.ex != nil {
			for _, u := range unnamedErrors(e.ex) {
				bad("e: %s: a task failed with an unnamed error: %s", e.Name, u)
			}
		}
	}
	if len(o.violations) > 0 {
		o.summary = runsSummary(pl.execs)
	}
	return o
}

// excused says why a read-back that found problems does not count: a hand change or an execution of the other
// workflow between the run's cutoff and the end of its read-back.
func (pl *player) excused(e *execution, r runRecord) string {
	from := r.Cutoff
	if e.Workflow == workflow.WorkflowRelease {
		from = r.From
	}
	for _, h := range pl.hands {
		if h.At >= from && h.At <= r.To {
			return "hand change " + h.What
		}
		if h.What == "terminated" && h.At <= r.To {
			return "terminated"
		}
	}
	for _, o := range pl.execs {
		if o.Workflow == e.Workflow {
			continue
		}
		for _, or := range o.runs {
			if or.From <= r.To && or.To >= r.From {
				return "overlapping " + o.Name
			}
		}
		// Still running at the end of the schedule's play: its runs are recorded at their end, so an
		// execution started before r.To with no run recorded yet overlapped too.
		if o.Start <= r.To && len(o.runs) == 0 {
			return "overlapping " + o.Name
		}
	}
	return ""
}

// lastRun summarises where an execution's last run ended.
func lastRun(ex *asl.Execution) string {
	if ex == nil {
		return "never started"
	}
	return fmt.Sprintf("%s %s: %.200s; failed at %v", ex.Status, ex.Error, ex.Cause, failedStates(ex))
}

func interleaveCount(t *testing.T) int {
	if v := os.Getenv("INTERLEAVE_SCHEDULES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("INTERLEAVE_SCHEDULES=%q is not a positive number", v)
		}
		return n
	}
	if *interleaveN > 0 {
		return *interleaveN
	}
	if testing.Short() {
		return 8
	}
	return 40
}

func envSeed(t *testing.T, name string, def uint64) (uint64, bool) {
	v := os.Getenv(name)
	if v == "" {
		return def, false
	}
	s, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q is not a number", name, v)
	}
	return s, true
}

// TestInterleavings plays generated schedules (executions of both workflows for one instance, redrives, hand
// changes, faults) concurrently in a testing/synctest bubble, each in its own simulated account, and checks:
// (a) a SUCCEEDED isolation leaves the instance contained, read back at its end; (b) no incident's pre-isolation
// state holds an isolation artifact; (c) a SUCCEEDED release restores every recorded attribute or names what it
// could not; (d) every FAILED run published exactly one failure notification, and every failed evidence
// execution (stage 2) one of its own; (e) every run ends, SUCCEEDED or
// FAILED, within hangBound of simulated time, with named errors only. INTERLEAVE_SEED=<seed> replays one
// schedule; -interleave.n or INTERLEAVE_SCHEDULES sets how many, from INTERLEAVE_BASE (default fixed).
func TestInterleavings(t *testing.T) {
	t.Parallel()
	var seeds []uint64
	if seed, ok := envSeed(t, "INTERLEAVE_SEED", 0); ok {
		seeds = []uint64{seed}
	} else {
		base, _ := envSeed(t, "INTERLEAVE_BASE", defaultInterleaveBase)
		for k := range interleaveCount(t) {
			seeds = append(seeds, base+uint64(k))
		}
	}
	t.Logf("%d schedules, seeds %d..%d (INTERLEAVE_SEED=<seed> go test -run '^TestInterleavings$' -v ./internal/reliability replays one)", len(seeds), seeds[0], seeds[len(seeds)-1])
	begin := time.Now()
	var outcomes []outcome
	synctest.Test(t, func(t *testing.T) {
		il := newInterleaver(t)
		outcomes = make([]outcome, len(seeds))
		sem := make(chan struct{}, interleaveParallel)
		var wg sync.WaitGroup
		for i, seed := range seeds {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				outcomes[i] = il.play(context.Background(), generate(seed))
			})
		}
		wg.Wait()
	})
	const maxReported = 25
	var (
		failedSeeds                  []string
		failed                       int
		byCheck                      = map[string]int{}
		execs, runs, succeeded, fail int
	)
	for _, o := range outcomes {
		execs, runs, succeeded, fail = execs+o.executions, runs+o.runs, succeeded+o.succeeded, fail+o.failed
		if len(o.violations) == 0 {
			continue
		}
		failed++
		checks := map[string]bool{}
		for _, v := range o.violations {
			checks[v[:1]] = true
		}
		for c := range checks {
			byCheck[c]++
		}
		letters := slices.Sorted(maps.Keys(checks))
		failedSeeds = append(failedSeeds, fmt.Sprintf("%d(%s)", o.s.Seed, strings.Join(letters, "")))
		if failed <= maxReported {
			t.Errorf("schedule %d failed (INTERLEAVE_SEED=%d go test -run '^TestInterleavings$' -v ./internal/reliability):\n  %s\n  schedule: %s\n  runs: %s",
				o.s.Seed, o.s.Seed, strings.Join(o.violations, "\n  "), o.s, o.summary)
		}
	}
	if failed > 0 {
		t.Errorf("failing seeds (checks): %s", strings.Join(failedSeeds, " "))
	}
	t.Logf("%d schedules, %d failed (by check: %s); %d executions, %d runs (%d SUCCEEDED, %d FAILED); real time %s",
		len(seeds), failed, formatCounts(byCheck), execs, runs, succeeded, fail, time.Since(begin).Round(time.Millisecond))
}

func runsSummary(execs []*execution) string {
	var parts []string
	for _, e := range execs {
		var rs []string
		for _, r := range e.runs {
			rs = append(rs, fmt.Sprintf("%s %s-%s", r.Status, r.From.Round(time.Millisecond), r.To.Round(time.Millisecond)))
		}
		detail := ""
		if e.ex != nil && e.ex.Status == asl.StatusFailed {
			detail = " (" + lastRun(e.ex) + ")"
		}
		parts = append(parts, fmt.Sprintf("%s at %s: %s%s", e.Name, e.Start.Round(time.Millisecond), strings.Join(rs, ", "), detail))
	}
	return strings.Join(parts, "; ")
}
