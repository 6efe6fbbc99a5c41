// Package reconcile is the reconciler (issue 14): isolation made level-triggered. EventBridge delivers tag change
// events on a best-effort basis, so an event can be lost (the instance stays open, with no execution and no
// notification), an instance tagged before the stack existed never had one, and a hand change can undo an
// isolation. On a schedule, the reconciler reads every instance carrying the isolation tag key and checks it with
// the read-back of "Verify containment" (verify.Fleet, changing nothing); then it starts the isolation state
// machine for one that carries the isolation value and is not contained, and the release state machine for one
// that carries the release value and is still isolated under an open incident, unless an execution is running
// for it. It also keeps an empty isolation group in every VPC that has instances, so that a containment seldom
// has to create one.
//
// Cost of a pass, whatever happened: ceil(N/1000) DescribeInstances (N instances listed), 2 DescribeSecurityGroups,
// ceil(A/1000) DescribeIamInstanceProfileAssociations (A associations), ceil(R/1000) DescribeNetworkInterfaces (R
// requester-managed ENIs of the region, at least 1), 2 ListExecutions (one a machine, up to 1,000
// running each), one DescribeExecution per running execution it did not start (none when MaxRunning or more
// run: it then starts nothing), one S3 GetObject per open instance (did its last isolation fail?) and per instance
// carrying the release value that is still isolated, at most MaxStarts StartExecution, and when it has something
// to start 1 GetObject and 2 PutObject of the lease (lease.go). 10,000 tagged instances, all contained, nothing running: 10 + 2 + 10 + 1 +
// 2 = 25 calls.
package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/verify"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// ExecutionPrefix starts the name of every execution the reconciler starts: reconcile-<instance>-<pass>. The
// name is deterministic, so a pass that runs twice (a retried invocation) starts nothing twice
// (StartExecution is idempotent for the same name and input, and refuses another input).
const ExecutionPrefix = "reconcile-"

// Handler is the reconciler's Lambda handler.
type Handler struct {
	ec2 *ec2.Client
	sfn *sfn.Client
	s3  incident.S3API
	s   Settings
	log *slog.Logger
	// Metrics receives one CloudWatch embedded metric format document a pass (os.Stdout in Lambda: CloudWatch
	// Logs extracts the metrics; no PutMetricData call and no permission). Nil: none.
	Metrics io.Writer
	now     func() time.Time
	// Wait bounds Ensure's wait for a new group to become visible (secgroup.DefaultWait; tests shorten it).
	Wait secgroup.Wait
}

// New returns the handler; s must have passed Check.
func New(e *ec2.Client, f *sfn.Client, s3c incident.S3API, s Settings, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	return &Handler{ec2: e, sfn: f, s3: s3c, s: s, log: log, now: time.Now, Wait: secgroup.DefaultWait}
}

// Event is the scheduled event that starts a pass (EventBridge Scheduler or a schedule rule): only its time is
// used, to name the pass. Any other input (a test invocation with {}) runs a pass named after the current minute.
type Event struct {
	Time string `json:"time"`
}

// Report is what one pass found and did (the function's result, and its log).
type Report struct {
	Pass string `json:"pass"`
	// Tagged instances carry the tag key (any value); Contained and Open are those carrying the isolation value.
	Tagged    int `json:"tagged"`
	Contained int `json:"contained"`
	Open      int `json:"open"`
	// Drift: open although isolated once (an isolation artifact remains); LostEvents: open with no artifact.
	Drift      int `json:"drift"`
	LostEvents int `json:"lostEvents"`
	// ReleasePending: carrying the release value, still isolated under an open incident.
	ReleasePending int `json:"releasePending"`
	// Running executions of either machine at the start of the pass; Started by this pass; Deferred: needing one
	// but left to a later pass (MaxStarts, MaxRunning, or its last isolation failed less than RetryFailedAfter ago).
	Running  int `json:"running"`
	Started  int `json:"started"`
	Deferred int `json:"deferred"`
	// GroupsCreated, GroupsEmptied: isolation groups the pass created, or found with rules and emptied.
	GroupsCreated int `json:"groupsCreated"`
	GroupsEmptied int `json:"groupsEmptied"`
	// Instances lists every tagged instance, by id; Groups every VPC whose group the pass changed.
	Instances []Instance        `json:"instances"`
	Groups    []workflow.Change `json:"groupChanges,omitempty"`
	// LeaseHeldBy names the overlapping pass that held the lease, when this one started nothing for that reason.
	LeaseHeldBy string `json:"leaseHeldBy,omitempty"`
}

// Instance is one tagged instance as the pass saw it.
type Instance struct {
	ID string `json:"instanceId"`
	// Declared is the tag's value; Wants is "isolated", "released" or "" (a value that is neither).
	Declared string `json:"declared"`
	Wants    string `json:"wants,omitempty"`
	State    string `json:"state"`
	// Contained and Open: the read-back's verdict (Open empty when contained).
	Contained bool     `json:"contained"`
	Isolated  bool     `json:"isolated"`
	Open      []string `json:"open,omitempty"`
	// Action is what the pass did: "", "started <execution>", "running <execution>", "deferred: …", or why it
	// did nothing.
	Action string `json:"action,omitempty"`
}

// candidate is an instance that needs an execution: rep.Instances[index].
type candidate struct {
	index   int
	machine string
	event   workflow.TagEvent
}

// Handle runs one pass.
func (h *Handler) Handle(ctx context.Context, ev Event) (Report, error) {
	at := passTime(ev.Time, h.now())
	pass := at.Format("20060102T1504Z")
	log := h.log.With("pass", pass, "step", "Reconcile")
	rep := Report{Pass: pass, Instances: []Instance{}}

	instances, vpcs, err := h.list(ctx)
	if err != nil {
		log.Error("list instances", "error", err)
		return rep, err
	}
	fleet, err := verify.ReadFleet(ctx, h.ec2, h.s.Verify)
	if err != nil {
		err = steperr.FromAWS("read the isolation groups and profile associations", err)
		log.Error("read back", "error", err)
		return rep, err
	}
	if h.s.PrecreateGroups {
		if err := h.keepGroups(ctx, log, fleet, vpcs, pass, &rep); err != nil {
			// Not fatal: the workflow creates a missing group itself (the cold path).
			log.Error("keep the isolation groups ready", "error", err)
		}
		if len(rep.Groups) > 0 {
			// The instances are checked against the groups as they are now.
			if fleet, err = verify.ReadFleet(ctx, h.ec2, h.s.Verify); err != nil {
				err = steperr.FromAWS("read the isolation groups and profile associations", err)
				log.Error("read back", "error", err)
				return rep, err
			}
		}
	}

	var todo []candidate
	for _, inst := range instances {
		c, err := h.assess(ctx, fleet, inst, pass, at, &rep)
		if err != nil {
			log.Error("assess", "instance", aws.ToString(inst.InstanceId), "error", err)
			return rep, err
		}
		if c != nil {
			todo = append(todo, *c)
		}
	}

	// Listing what runs and starting what does not is one critical section (lease.go); a pass with nothing to
	// start lists only, for its report.
	var lh held
	started := map[string]startedExecution{}
	if len(todo) > 0 {
		lh, err = acquire(ctx, h.s3, h.s.Bucket, pass, at, h.now())
		var busy *heldBy
		if errors.As(err, &busy) {
			rep.LeaseHeldBy = busy.holder
			for _, c := range todo {
				rep.Instances[c.index].Action = "deferred: " + busy.Error()
				rep.Deferred++
			}
			log.Warn("another pass is starting executions: this one starts none", "holder", busy.holder)
			todo = nil
		} else if err != nil {
			log.Error("take the reconciler's lease", "error", err)
			return rep, err
		} else {
			defer func() {
				if err := release(context.WithoutCancel(ctx), h.s3, h.s.Bucket, pass, lh, started, h.now()); err != nil {
					// It expires after LeaseFor anyway.
					log.Error("release the reconciler's lease", "error", err)
				}
			}()
		}
	}
	running, err := h.running(ctx, log, &rep)
	if err != nil {
		log.Error("list running executions", "error", err)
		return rep, err
	}
	for id, name := range lh.recent {
		if _, ok := running[id]; !ok {
			running[id] = name
		}
	}
	budget := h.s.MaxStarts
	if rep.Running >= h.s.MaxRunning {
		budget = 0
	}
	budget = min(budget, max(h.s.MaxRunning-rep.Running, 0))
	for _, c := range todo {
		inst := &rep.Instances[c.index]
		id := inst.ID
		if name, ok := running[id]; ok {
			inst.Action = "running " + name
			log.Info("an execution is running: no second one", "instance", id, "execution", name)
			continue
		}
		if budget == 0 {
			inst.Action = fmt.Sprintf("deferred: %d executions running, at most %d started a pass", rep.Running, h.s.MaxStarts)
			rep.Deferred++
			continue
		}
		name, err := h.start(ctx, c, pass)
		if err != nil {
			log.Error("start execution", "instance", id, "error", err)
			return rep, err
		}
		budget--
		rep.Started++
		started[id] = startedExecution{Execution: name, At: at}
		inst.Action = "started " + name
		log.Warn("started", "instance", id, "execution", name, "reason", c.event.Reconcile.Reason, "open", inst.Open)
	}
	h.finish(log, rep)
	return rep, nil
}

// finish publishes the pass's metrics and logs its summary.
func (h *Handler) finish(log *slog.Logger, rep Report) {
	h.emit(rep)
	log.Info("pass done", "tagged", rep.Tagged, "contained", rep.Contained, "open", rep.Open, "drift", rep.Drift,
		"lostEvents", rep.LostEvents, "releasePending", rep.ReleasePending, "running", rep.Running, "started", rep.Started,
		"deferred", rep.Deferred, "groupsCreated", rep.GroupsCreated, "groupsEmptied", rep.GroupsEmptied)
}

// passTime is the scheduled time (a retried invocation has the same), else now.
func passTime(scheduled string, now time.Time) time.Time {
	t, err := time.Parse(time.RFC3339, scheduled)
	if err != nil {
		t = now
	}
	return t.UTC()
}

// RetryFailedAfter is how long the reconciler waits before it starts a new isolation for an instance whose last
// isolation failed: the failure was notified with how to redrive it, and a new execution (and notification) every
// pass would only repeat it. The alarm on OpenInstances fires meanwhile.
const RetryFailedAfter = time.Hour

// list returns the instances carrying the tag key and, when groups are kept ready, the VPCs of every instance
// (one listing of all instances then, else only the tagged ones), terminated instances left out.
func (h *Handler) list(ctx context.Context) ([]ec2types.Instance, []string, error) {
	filters := []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}}}
	if !h.s.PrecreateGroups {
		filters = append(filters, ec2types.Filter{Name: aws.String("tag-key"), Values: []string{h.s.Verify.TagKey}})
	}
	var (
		tagged []ec2types.Instance
		vpcs   []string
	)
	p := ec2.NewDescribeInstancesPaginator(h.ec2, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, steperr.FromAWS("describe instances", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				for _, n := range i.NetworkInterfaces {
					if v := aws.ToString(n.VpcId); v != "" {
						vpcs = append(vpcs, v)
					}
				}
				if _, ok := tagValue(i, h.s.Verify.TagKey); ok {
					tagged = append(tagged, i)
				}
			}
		}
	}
	slices.SortFunc(tagged, func(a, b ec2types.Instance) int {
		return strings.Compare(aws.ToString(a.InstanceId), aws.ToString(b.InstanceId))
	})
	slices.Sort(vpcs)
	return tagged, slices.Compact(vpcs), nil
}

func tagValue(i ec2types.Instance, key string) (string, bool) {
	for _, t := range i.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// assess records the instance in the report and returns the execution it needs, if any.
func (h *Handler) assess(ctx context.Context, fleet *verify.Fleet, inst ec2types.Instance, pass string, at time.Time, rep *Report) (*candidate, error) {
	v := fleet.Check(inst)
	value, _ := tagValue(inst, h.s.Verify.TagKey)
	rep.Tagged++
	rep.Instances = append(rep.Instances, Instance{ID: v.InstanceID, Declared: value, State: v.State,
		Contained: v.Contained(), Isolated: v.Isolated, Open: v.Open})
	idx := len(rep.Instances) - 1
	ri := &rep.Instances[idx]
	if v.Gone {
		ri.Action = "terminated: nothing to contain"
		return nil, nil
	}
	switch value {
	case h.s.Verify.TagValue:
		ri.Wants = "isolated"
		if v.Contained() {
			rep.Contained++
			return nil, nil
		}
		rep.Open++
		reason := workflow.ReasonLostEvent
		if v.Isolated {
			reason = workflow.ReasonDrift
			rep.Drift++
		} else {
			rep.LostEvents++
		}
		if failed, err := h.lastFailure(ctx, v.InstanceID, at); err != nil {
			return nil, err
		} else if failed != "" {
			ri.Action = failed
			rep.Deferred++
			return nil, nil
		}
		return &candidate{index: idx, machine: h.s.IsolationMachineARN, event: h.event(inst, reason, v.Open, pass)}, nil
	case h.s.ReleaseValue:
		ri.Wants = "released"
		if !v.Isolated {
			return nil, nil
		}
		_, region, account := h.s.where()
		f, err := incident.Load(ctx, h.s3, h.s.Bucket, workflow.IncidentKey(account, region, v.InstanceID))
		if err != nil {
			return nil, err
		}
		if f == nil || len(f.Incidents) == 0 || f.Incidents[len(f.Incidents)-1].ReleasedAt != nil {
			ri.Action = "isolation artifacts but no open incident: not released (isolated by hand, or the record is gone)"
			return nil, nil
		}
		rep.ReleasePending++
		return &candidate{index: idx, machine: h.s.ReleaseMachineARN, event: h.event(inst, workflow.ReasonLostReleaseEvent, v.Open, pass)}, nil
	}
	ri.Action = fmt.Sprintf("neither %q nor %q: nothing to do", h.s.Verify.TagValue, h.s.ReleaseValue)
	return nil, nil
}

// lastFailure says why no isolation is started now when the open incident's last isolation execution failed less
// than RetryFailedAfter before at ("" otherwise). One S3 read, for an open instance only.
func (h *Handler) lastFailure(ctx context.Context, id string, at time.Time) (string, error) {
	_, region, account := h.s.where()
	f, err := incident.Load(ctx, h.s3, h.s.Bucket, workflow.IncidentKey(account, region, id))
	if err != nil || f == nil || len(f.Incidents) == 0 {
		return "", err
	}
	inc := f.Incidents[len(f.Incidents)-1]
	if inc.ReleasedAt != nil {
		return "", nil
	}
	for _, e := range slices.Backward(inc.Executions) {
		if e.Workflow != workflow.WorkflowIsolation && e.Workflow != "" {
			continue
		}
		if e.Outcome != workflow.OutcomeFailed || e.FinishedAt == nil || !at.Before(e.FinishedAt.Add(RetryFailedAfter)) {
			return "", nil
		}
		return fmt.Sprintf("held back: its last isolation %s FAILED at %s; redrive it after fixing the cause, or a new one starts after %s",
			e.ExecutionName, e.FinishedAt.UTC().Format(time.RFC3339), e.FinishedAt.Add(RetryFailedAfter).UTC().Format(time.RFC3339)), nil
	}
	return "", nil
}

// event is the "Tag Change on Resource" event the responder's tag would have produced, with the instance's
// current tags, marked as the reconciler's.
func (h *Handler) event(inst ec2types.Instance, reason string, open []string, pass string) workflow.TagEvent {
	partition, region, account := h.s.where()
	id := aws.ToString(inst.InstanceId)
	tags := map[string]string{}
	for _, t := range inst.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return workflow.TagEvent{Version: "0", ID: ExecutionPrefix + id + "-" + pass, DetailType: "Tag Change on Resource",
		Source: "aws.tag", Account: account, Time: h.now().UTC().Format(time.RFC3339), Region: region,
		Resources: []string{fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", partition, region, account, id)},
		Detail: workflow.TagDetail{ChangedTagKeys: []string{h.s.Verify.TagKey}, Service: "ec2", ResourceType: "instance",
			Tags: tags},
		Reconcile: &workflow.Reconcile{Reason: reason, Open: open, Pass: pass}}
}

// running maps each instance with a running execution (either machine) to its name. An execution this
// reconciler started names its instance; any other (EventBridge names them with a UUID) is described for its
// input, unless MaxRunning or more are running: then nothing will be started, and nothing is described.
func (h *Handler) running(ctx context.Context, log *slog.Logger, rep *Report) (map[string]string, error) {
	var execs []sfntypes.ExecutionListItem
	for _, m := range []string{h.s.IsolationMachineARN, h.s.ReleaseMachineARN} {
		p := sfn.NewListExecutionsPaginator(h.sfn, &sfn.ListExecutionsInput{StateMachineArn: aws.String(m),
			StatusFilter: sfntypes.ExecutionStatusRunning, MaxResults: 1000})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, steperr.FromAWS("list the running executions of "+m, err)
			}
			execs = append(execs, page.Executions...)
			if len(execs) >= h.s.MaxRunning {
				break
			}
		}
	}
	rep.Running = len(execs)
	out := map[string]string{}
	if rep.Running >= h.s.MaxRunning {
		log.Warn("a storm is being contained: this pass starts nothing", "running", rep.Running, "maxRunning", h.s.MaxRunning)
		return out, nil
	}
	for _, e := range execs {
		name := aws.ToString(e.Name)
		if id, ok := reconcilerInstance(name); ok {
			out[id] = name
			continue
		}
		d, err := h.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: e.ExecutionArn})
		var gone *sfntypes.ExecutionDoesNotExist
		switch {
		case errors.As(err, &gone):
			continue
		case err != nil:
			return nil, steperr.FromAWS("describe execution "+name, err)
		}
		var ev workflow.TagEvent
		if json.Unmarshal([]byte(aws.ToString(d.Input)), &ev) == nil && ev.InstanceID() != "" {
			out[ev.InstanceID()] = name
		}
	}
	return out, nil
}

// reconcilerInstance is the instance a reconciler execution's name carries.
func reconcilerInstance(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, ExecutionPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "-2") // the pass: 2YYY…
	if !ok || !strings.HasPrefix(id, "i-") {
		return "", false
	}
	return id, true
}

// start starts the candidate's execution; an execution of the same name already started (a retried pass) counts
// as started.
func (h *Handler) start(ctx context.Context, c candidate, pass string) (string, error) {
	name := ExecutionPrefix + c.event.InstanceID() + "-" + pass
	input, err := json.Marshal(c.event)
	if err != nil {
		return "", err
	}
	_, err = h.sfn.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(c.machine),
		Name: aws.String(name), Input: aws.String(string(input))})
	var exists *sfntypes.ExecutionAlreadyExists
	if errors.As(err, &exists) {
		return name, nil
	}
	if err != nil {
		return "", steperr.FromAWS("start execution "+name, err)
	}
	return name, nil
}

// keepGroups makes sure every VPC of vpcs has an empty managed isolation group, with Ensure (the workflow's own
// step): created where missing, emptied where it has rules.
func (h *Handler) keepGroups(ctx context.Context, log *slog.Logger, fleet *verify.Fleet, vpcs []string, pass string, rep *Report) error {
	var need []string
	for _, vpc := range vpcs {
		sg, ok := fleet.IsolationGroup(vpc)
		switch {
		case !ok:
			need = append(need, vpc)
		case len(verify.Rules(sg)) > 0:
			log.Warn("isolation group has rules: emptying it", "vpc", vpc, "group", aws.ToString(sg.GroupId), "rules", verify.Rules(sg))
			need = append(need, vpc)
		}
	}
	if len(need) == 0 {
		return nil
	}
	ensure := secgroup.NewEnsure(h.ec2, h.s.Verify.Groups, log)
	ensure.Wait = h.Wait
	out, err := ensure.Handle(ctx, workflow.EnsureGroupsInput{InstanceID: "reconciler", ExecutionName: "reconcile-" + pass, VpcIDs: need})
	for _, g := range out.Groups {
		if g.Created {
			rep.GroupsCreated++
		}
	}
	emptied := map[string]bool{}
	for _, ch := range out.Changes {
		ch.Step = "Reconcile"
		rep.Groups = append(rep.Groups, ch)
		if strings.HasPrefix(ch.Action, "Revoke") {
			emptied[ch.Resource] = true
		}
	}
	created := map[string]bool{}
	for _, g := range out.Groups {
		if g.Created {
			created[g.IsolationGroupID] = true
		}
	}
	for id := range emptied {
		if !created[id] {
			rep.GroupsEmptied++
		}
	}
	slices.SortStableFunc(rep.Groups, func(a, b workflow.Change) int { return cmp.Compare(a.Resource, b.Resource) })
	return err
}
