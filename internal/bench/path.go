package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// PathResult is one row of the containment path: how many sequential AWS round trips and how much simulated time
// from the start (execution start, or the article's Lambda invocation) until every ENI of the instance carries
// only the isolation group.
type PathResult struct {
	Label      string
	ENIs       int
	RoundTrips int
	Time       time.Duration
	// Calls is every AWS call up to that moment (all branches).
	Calls int
	// Refused says why containment did not happen (the article's ModifyInstanceAttribute on a multi-ENI instance).
	Refused string
	// Transitions and Invocations of the whole execution (product rows), for the cost.
	Transitions int
	Invocations []invocation
	Status      asl.Status
}

// eniState is an ENI's groups after the run, with the names of those groups.
type eniState struct {
	id, vpc string
	groups  []string
	names   []string
}

// readENIs reads the instance's ENIs and their groups' names back through the SDK.
func readENIs(ctx context.Context, c *ec2.Client, id string) ([]eniState, error) {
	out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if err != nil {
		return nil, fmt.Errorf("describe ENIs of %s: %w", id, err)
	}
	var enis []eniState
	for _, ni := range out.NetworkInterfaces {
		e := eniState{id: aws.ToString(ni.NetworkInterfaceId), vpc: aws.ToString(ni.VpcId)}
		for _, g := range ni.Groups {
			e.groups = append(e.groups, aws.ToString(g.GroupId))
			e.names = append(e.names, aws.ToString(g.GroupName))
		}
		slices.Sort(e.groups)
		enis = append(enis, e)
	}
	sort.Slice(enis, func(i, j int) bool { return enis[i].id < enis[j].id })
	return enis, nil
}

// isolated: every ENI carries exactly one group, named groupName.
func isolated(enis []eniState, groupName string) bool {
	if len(enis) == 0 {
		return false
	}
	for _, e := range enis {
		if len(e.names) != 1 || e.names[0] != groupName {
			return false
		}
	}
	return true
}

// containingCall is the index of the call after which every ENI carried its final groups: for each ENI the first
// successful call that set exactly those groups (ModifyNetworkInterfaceAttribute on the ENI, or
// ModifyInstanceAttribute on the instance for its only ENI), and of those the one answered last. -1 if an ENI
// never got them from a call (it had them from the start).
func containingCall(calls []sim.Call, instance string, enis []eniState) int {
	last := -1
	for _, e := range enis {
		found := -1
		for i, c := range calls {
			if c.ErrorCode != "" || c.HTTPStatus != 200 || c.DryRun {
				continue
			}
			var set []string
			switch {
			case c.Action == "ModifyNetworkInterfaceAttribute" && c.Params.Get("NetworkInterfaceId") == e.id:
				set = indexed(c.Params, "SecurityGroupId")
			case c.Action == "ModifyInstanceAttribute" && c.Params.Get("InstanceId") == instance && len(enis) == 1:
				set = indexed(c.Params, "GroupId")
			default:
				continue
			}
			slices.Sort(set)
			if slices.Equal(set, e.groups) {
				found = i
				break
			}
		}
		if found < 0 {
			return -1
		}
		if last < 0 || calls[found].End.After(calls[last].End) {
			last = found
		}
	}
	return last
}

// indexed returns the values of a Query API list parameter (Name.1, Name.2, ...).
func indexed(p map[string][]string, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := p[fmt.Sprintf("%s.%d", name, i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

// pathCalls says which calls lie on the execution's path to calls[target]: the calls made by the invocations
// of the Task states that led to the target's state in the history (its chain of PreviousEventID, which follows
// a Parallel branch back to the state before the Parallel), each within its invocation's time. A call of another
// branch that merely ended earlier is not a predecessor.
func pathCalls(e *asl.Execution, names map[string]string, calls []sim.Call, target int) func(int) bool {
	events := e.History.Events()
	byID := map[int64]asl.Event{}
	next := map[int64]asl.Event{} // the event that followed each one in its chain
	for _, ev := range events {
		byID[ev.ID] = ev
		if ev.PreviousEventID != 0 {
			next[ev.PreviousEventID] = ev
		}
	}
	t := calls[target]
	// The target's own task: the latest TaskStarted of its function before it.
	var own asl.Event
	for _, ev := range events {
		if ev.Type == asl.TaskStarted && names[ev.Resource] == t.Caller && !ev.Timestamp.After(t.Start) {
			own = ev
		}
	}
	type window struct {
		caller   string
		from, to time.Time
	}
	var windows []window
	for cur, ok := own, own.ID != 0; ok; cur, ok = byID[cur.PreviousEventID] {
		if cur.Type != asl.TaskStarted {
			continue
		}
		w := window{caller: names[cur.Resource], from: cur.Timestamp, to: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
		if n, ok := next[cur.ID]; ok && cur.ID != own.ID {
			w.to = n.Timestamp
		}
		windows = append(windows, w)
	}
	return func(i int) bool {
		c := calls[i]
		for _, w := range windows {
			if c.Caller == w.caller && !c.Start.Before(w.from) && !c.End.After(w.to) {
				return true
			}
		}
		return false
	}
}

func spans(calls []sim.Call) []Span {
	out := make([]Span, len(calls))
	for i, c := range calls {
		out[i] = Span{Start: c.Start, End: c.End}
	}
	return out
}

// productPath isolates one instance (a copy of the base instance with enis ENIs) with the real workflow; warm
// first isolates the base instance so that the isolation groups exist in its VPCs.
func (b *bench) productPath(ctx context.Context, warm bool, enis int) (PathResult, error) {
	sc, err := b.baseScenario()
	if err != nil {
		return PathResult{}, err
	}
	target := cloneInstance(sc.Instances[0], 1, enis, "")
	sc.Instances = append(sc.Instances, target)
	sc = withLatency(sc, b.opts.Latency, false)
	h, err := newHarness(harnessConfig{Scenario: sc, Factor: 1, Costs: b.opts.Costs, Env: b.env})
	if err != nil {
		return PathResult{}, err
	}
	defer h.Close()
	res := PathResult{Label: label("product", warm), ENIs: len(target.NetworkInterfaces)}
	if warm {
		ev, err := tagEvent(b.opts.Event, sc, sc.Instances[0].ID)
		if err != nil {
			return res, err
		}
		if e := h.start(ctx, "bench-warm-up", ev); e.Status != asl.StatusSucceeded {
			return res, fmt.Errorf("warm-up isolation of %s: %s %s: %s", sc.Instances[0].ID, e.Status, e.Error, e.Cause)
		}
		h.srv.ResetCalls()
		h.mu.Lock()
		h.invocations = nil
		h.mu.Unlock()
	}
	ev, err := tagEvent(b.opts.Event, sc, target.ID)
	if err != nil {
		return res, err
	}
	e := h.start(ctx, "bench-path", ev)
	res.Status, res.Transitions, res.Invocations = e.Status, transitions(e), h.recorded()
	if e.Status != asl.StatusSucceeded {
		return res, fmt.Errorf("isolation of %s: %s %s: %s", target.ID, e.Status, e.Error, e.Cause)
	}
	calls := h.srv.Calls()
	enisAfter, err := readENIs(ctx, ec2.NewFromConfig(h.srv.AWSConfig("bench-check")), target.ID)
	if err != nil {
		return res, err
	}
	if !isolated(enisAfter, b.groupName()) {
		return res, fmt.Errorf("%s is not isolated after the execution: %+v", target.ID, enisAfter)
	}
	i := containingCall(calls, target.ID, enisAfter)
	if i < 0 {
		return res, errors.New("no call set the isolation group")
	}
	res.RoundTrips = RoundTrips(spans(calls), i, pathCalls(e, h.names, calls, i))
	res.Time = calls[i].End.Sub(e.StartTime)
	for _, c := range calls {
		if !c.Start.After(calls[i].End) {
			res.Calls++
		}
	}
	return res, nil
}

func label(who string, warm bool) string {
	if warm {
		return who + ", warm VPC"
	}
	return who + ", cold VPC"
}

// articlePath runs the article's Lambda function as it is written: one invocation making its calls one after the
// other (describe instance, describe profile associations, disassociate, associate, describe groups, create group,
// revoke egress, modify instance attribute with the group). warm first runs it for another single-ENI instance in
// the same VPC, which creates the group.
//
// As written, AssociateIamInstanceProfile right after DisassociateIamInstanceProfile is refused (IncorrectState:
// the old association is still disassociating) and the function ends before touching the network. patient
// retries that call every 100 ms until EC2 takes it, so that the rest of the order can be measured.
func (b *bench) articlePath(ctx context.Context, warm, patient bool, enis int) (PathResult, error) {
	sc, err := b.baseScenario()
	if err != nil {
		return PathResult{}, err
	}
	target := cloneInstance(sc.Instances[0], 1, enis, "")
	warmup := cloneInstance(sc.Instances[0], 2, 1, "")
	sc.Instances = append(sc.Instances, target, warmup)
	sc = withLatency(sc, b.opts.Latency, false)
	clock := newVirtualClock(1)
	defer clock.Close()
	srv, err := sim.Start(sc, sim.WithClock(clock))
	if err != nil {
		return PathResult{}, err
	}
	defer srv.Close()
	client := ec2.NewFromConfig(srv.AWSConfig("article"))
	who := "article as written"
	if patient {
		who = "article, Associate retried until accepted"
	}
	res := PathResult{Label: label(who, warm), ENIs: len(target.NetworkInterfaces)}
	art := func(id string) error { return b.article(ctx, client, clock, id, patient) }
	if warm {
		// The warm-up must get as far as the group.
		if err := b.article(ctx, client, clock, warmup.ID, true); err != nil {
			return res, fmt.Errorf("article warm-up on %s: %w", warmup.ID, err)
		}
		srv.ResetCalls()
	}
	start := clock.Now()
	clock.Sleep(b.opts.Costs.Invoke)
	err = art(target.ID)
	calls := srv.Calls()
	res.Calls = len(calls)
	if err != nil {
		res.Refused = err.Error()
		return res, nil
	}
	enisAfter, err := readENIs(ctx, ec2.NewFromConfig(srv.AWSConfig("bench-check")), target.ID)
	if err != nil {
		return res, err
	}
	if !isolated(enisAfter, b.groupName()) {
		return res, fmt.Errorf("article: %s is not isolated: %+v", target.ID, enisAfter)
	}
	i := containingCall(calls, target.ID, enisAfter)
	if i < 0 {
		return res, errors.New("article: no call set the isolation group")
	}
	res.RoundTrips = RoundTrips(spans(calls), i, func(j int) bool { return calls[j].Caller == "article" })
	res.Time = calls[i].End.Sub(start)
	return res, nil
}

// short is an SDK error as EC2 gave it: code and message.
func short(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s refused: %s: %s", op, ae.ErrorCode(), ae.ErrorMessage())
	}
	return fmt.Errorf("%s: %w", op, err)
}

// article is the article's function body, call for call.
func (b *bench) article(ctx context.Context, c *ec2.Client, clock sim.Clock, id string, patient bool) error {
	d, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return short("DescribeInstances", err)
	}
	if len(d.Reservations) == 0 || len(d.Reservations[0].Instances) == 0 {
		return fmt.Errorf("instance %s not found", id)
	}
	vpc := aws.ToString(d.Reservations[0].Instances[0].VpcId)
	a, err := c.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}})
	if err != nil {
		return short("DescribeIamInstanceProfileAssociations", err)
	}
	for _, as := range a.IamInstanceProfileAssociations {
		if as.State != ec2types.IamInstanceProfileAssociationStateAssociated {
			continue
		}
		if _, err := c.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{
			AssociationId: as.AssociationId}); err != nil {
			return short("DisassociateIamInstanceProfile", err)
		}
	}
	for attempt := 0; ; attempt++ {
		_, err := c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(id),
			IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String(b.profileName())}})
		if err == nil {
			break
		}
		var ae smithy.APIError
		if !patient || attempt >= 50 || !errors.As(err, &ae) || ae.ErrorCode() != "IncorrectState" {
			return short("AssociateIamInstanceProfile", err)
		}
		clock.Sleep(100 * time.Millisecond)
	}
	g, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("group-name"), Values: []string{b.groupName()}},
		{Name: aws.String("vpc-id"), Values: []string{vpc}}}})
	if err != nil {
		return short("DescribeSecurityGroups", err)
	}
	var group string
	if len(g.SecurityGroups) > 0 {
		group = aws.ToString(g.SecurityGroups[0].GroupId)
	} else {
		cg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(b.groupName()),
			Description: aws.String("isolation"), VpcId: aws.String(vpc)})
		if err != nil {
			return short("CreateSecurityGroup", err)
		}
		group = aws.ToString(cg.GroupId)
		if _, err := c.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(group),
			IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("-1"),
				IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
			return short("RevokeSecurityGroupEgress", err)
		}
	}
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		Groups: []string{group}}); err != nil {
		return short("ModifyInstanceAttribute", err)
	}
	return nil
}
