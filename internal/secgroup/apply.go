package secgroup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// ApplyAPI is the part of the EC2 client Apply uses. ModifyInstanceAttribute is deliberately absent: it fails
// for an instance with several network interfaces; each ENI's groups are set on the ENI.
type ApplyAPI interface {
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, opts ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
}

// Apply is the handler of "Apply isolation security group".
type Apply struct {
	ec2  ApplyAPI
	mode Mode
	log  *slog.Logger
	now  func() time.Time
}

// NewApply returns the handler; mode comes from ModeFromEnv.
func NewApply(client ApplyAPI, mode Mode, log *slog.Logger) *Apply {
	return &Apply{ec2: client, mode: mode, log: log, now: time.Now}
}

const applyStep = "Apply isolation security group"

var (
	instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	groupIDPattern    = regexp.MustCompile(`^sg-[0-9a-f]{1,32}$`)
	eniIDPattern      = regexp.MustCompile(`^eni-[0-9a-f]{1,32}$`)
)

// eni is one network interface of the instance and what Apply does to it.
type eni struct {
	id, vpc     string
	deviceIndex int32
	before      []string
	groups      workflow.VpcGroups
	attached    bool   // DescribeNetworkInterfaces listed it attached to the instance
	tried       bool   // this run set its groups (or tried to)
	untracked   bool   // untrack-first: the allow-all group was applied first
	changed     bool   // the isolation group was applied
	uncovered   bool   // attached since Validate, in a VPC without a group in the input: left as it is
	untrackErr  error  // untrack-first: the allow-all group could not be applied first
	err         error  // the isolation group could not be applied
	notOwned    string // DescribeNetworkInterfaces: requester-managed, by whom (issue 13 item 4)
}

func (e *eni) isolated() bool { return slices.Equal(e.before, []string{e.groups.IsolationGroupID}) }

// Handle makes the isolation group of its VPC the only group of every ENI attached to the instance. The round
// trips: the ENIs of Validate's record whose groups differ are modified at once, without describing them first,
// while a DescribeNetworkInterfaces runs beside them to catch an ENI attached (or a group changed) since; only
// then is such an ENI modified too. Untrack-first mode puts the ENIs on the allow-all group first, all at once,
// then on the isolation group. Without a record (an older input), and on a retry or a redrive, the Describe comes
// first. An ENI the input (or the Describe) shows on exactly its isolation group gets no call.
//
// The record's ENIs are trusted as Validate described them: one detached since is still modified (to the
// quarantine group: more containment, never less), one deleted since is left out. An ENI attached since in a VPC
// without a group in the input is reported unchanged ("Verify containment" contains it). A group gone since it
// was given is GroupMissing (the definition runs Ensure again), never retried here.
func (h *Apply) Handle(ctx context.Context, in workflow.ApplyGroupsInput) (workflow.ApplyGroupsOutput, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", applyStep)
	groups, known, err := h.checkInput(in)
	if err != nil {
		log.Error("invalid input", "error", err)
		return workflow.ApplyGroupsOutput{}, err
	}
	ch := newChanges(applyStep, h.now)

	// Round 1: the record's ENIs, beside the Describe.
	var (
		described []*eni
		descErr   error
		wg        sync.WaitGroup
	)
	wg.Go(func() { described, descErr = h.describe(ctx, in.InstanceID) })
	var first []*eni
	for _, e := range known {
		// A retry or a redrive waits for the Describe: the first run may have isolated them (in untrack-first
		// mode, modifying them blindly again would reopen them to the allow-all group for a moment).
		if !e.isolated() && !in.Again() {
			first = append(first, e)
		}
	}
	h.isolate(ctx, ch, first)
	wg.Wait()
	if descErr != nil {
		err := steperr.FromAWS("describe network interfaces of "+in.InstanceID, descErr)
		log.Error("describe network interfaces", "error", err, "modified", ch.list())
		return workflow.ApplyGroupsOutput{}, err
	}

	// Round 2: what the Describe shows that round 1 did not cover: an ENI attached since Validate, or one the
	// record showed isolated whose groups changed since.
	all := slices.Clone(known)
	byID := map[string]*eni{}
	for _, e := range known {
		byID[e.id] = e
	}
	var second []*eni
	for _, d := range described {
		e, ok := byID[d.id]
		if !ok {
			g, ok := groups[d.vpc]
			switch {
			case !ok && in.Record == nil:
				// An older input names the groups alone: one that lacks the ENI's VPC is bad input, refused
				// before changing anything.
				err := &steperr.InvalidInput{Step: applyStep, Reason: fmt.Sprintf("network interface %s of %s is in %s, which has no isolation group in the input", d.id, in.InstanceID, d.vpc)}
				log.Error("network interface without isolation group", "error", err, "modified", ch.list())
				return workflow.ApplyGroupsOutput{}, err
			case !ok:
				// Attached since Validate and record, in a VPC whose group was never ensured: contain every other
				// ENI rather than fail them all; this one is reported as it is (After == Before, not Changed), and
				// "Verify containment" ensures its VPC's group and contains it.
				log.Warn("network interface attached since Validate and record in a VPC without isolation group: left to Verify containment",
					"eni", d.id, "vpc", d.vpc, "groups", d.before)
				d.uncovered = true
			default:
				d.groups = g
			}
			e = d
			byID[d.id] = e
			all = append(all, e)
		}
		e.attached = true
		if d.notOwned != "" {
			// An AWS service's interface: EC2 refuses to change it (round 1 may have tried, from the record, which
			// cannot tell); the rest of the instance is contained all the same, and this one is named open.
			e.notOwned, e.before = d.notOwned, d.before
			log.Warn("network interface managed by an AWS service: left open", "eni", e.id, "requester", d.notOwned, "error", e.err)
			continue
		}
		if !e.uncovered && !e.tried && !slices.Equal(d.before, []string{e.groups.IsolationGroupID}) {
			e.before = d.before
			second = append(second, e)
		}
	}
	h.isolate(ctx, ch, second)

	out := workflow.ApplyGroupsOutput{NetworkInterfaces: []workflow.AppliedInterface{}}
	var failed []*eni
	var errs []error
	for _, e := range all {
		if !e.attached && (!e.tried || steperr.Code(e.err) == "InvalidNetworkInterfaceID.NotFound") {
			// No longer the instance's: detached (and not changed by this run), or deleted.
			log.Info("network interface of the record no longer attached", "eni", e.id, "error", e.err)
			continue
		}
		a := workflow.AppliedInterface{ID: e.id, VpcID: e.vpc, Before: e.before, After: e.before}
		switch {
		case e.notOwned != "":
			out.NotOwned = append(out.NotOwned, workflow.NotOwnedInterface{ID: e.id, VpcID: e.vpc, Groups: e.before,
				Reason: fmt.Sprintf("requester-managed by %s: EC2 does not let the account change its security groups", e.notOwned)})
			continue
		case e.err != nil:
			if h.mode == ModeUntrackFirst && e.untracked {
				e.err = fmt.Errorf("%w (the ENI is left on the allow-all group %s until a retry)", e.err, e.groups.UntrackGroupID)
			}
			failed = append(failed, e)
			errs = append(errs, fmt.Errorf("apply isolation group %s to %s: %w", e.groups.IsolationGroupID, e.id, e.err))
		case e.changed:
			a.After, a.Changed = []string{e.groups.IsolationGroupID}, true
		}
		if e.untrackErr != nil && e.err == nil {
			// Contained, but the tracked connections of this ENI may survive: nothing a retry can fix now.
			log.Warn("allow-all group not applied first: tracked connections may survive", "eni", e.id, "error", e.untrackErr)
		}
		out.NetworkInterfaces = append(out.NetworkInterfaces, a)
	}
	if len(errs) > 0 {
		err := applyError(failed, len(out.NetworkInterfaces), errs, in.Rerun)
		log.Error("apply isolation security group", "error", err, "failed", len(errs), "enis", len(out.NetworkInterfaces), "modified", ch.list())
		return workflow.ApplyGroupsOutput{}, err
	}
	if len(out.NetworkInterfaces) == 0 {
		// A terminated instance has no ENI left; there is nothing to contain and nothing a retry would change.
		err := &steperr.InstanceNotIsolatable{InstanceID: in.InstanceID, Reason: "no network interface is attached (terminated?)"}
		log.Error("no network interfaces", "error", err)
		return workflow.ApplyGroupsOutput{}, err
	}
	slices.SortFunc(out.NetworkInterfaces, func(a, b workflow.AppliedInterface) int {
		return cmp.Or(cmp.Compare(byID[a.ID].deviceIndex, byID[b.ID].deviceIndex), cmp.Compare(a.ID, b.ID))
	})
	out.Changes = ch.list()
	log.Info("isolation security group applied", "networkInterfaces", out.NetworkInterfaces)
	return out, nil
}

// isolate puts enis on their isolation group, all at once; in untrack-first mode on the allow-all group first
// (all at once), which turns the ENIs' tracked flows into untracked ones that the isolation group then drops.
// Until the second call the ENIs accept any traffic: the two calls follow each other at once.
func (h *Apply) isolate(ctx context.Context, ch *changes, enis []*eni) {
	if len(enis) == 0 {
		return
	}
	for _, e := range enis {
		e.tried = true
	}
	if h.mode == ModeUntrackFirst {
		var first []*eni
		for _, e := range enis {
			if !slices.Equal(e.before, []string{e.groups.UntrackGroupID}) {
				first = append(first, e)
			}
		}
		modifyAll(ctx, h.ec2, first, func(e *eni) string { return e.groups.UntrackGroupID }, func(e *eni, err error) {
			if e.untrackErr = err; err == nil {
				e.untracked = true
				ch.add(e.id, "ModifyNetworkInterfaceAttribute", fmt.Sprintf("groups %s -> %s (allow-all first: untracks connections)",
					strings.Join(e.before, ","), e.groups.UntrackGroupID))
			}
		})
	}
	// Every ENI gets the isolation group, including one the allow-all group could not be applied to: containment
	// must not depend on the untracking.
	modifyAll(ctx, h.ec2, enis, func(e *eni) string { return e.groups.IsolationGroupID }, func(e *eni, err error) {
		if e.err = err; err == nil {
			e.changed = true
			from := strings.Join(e.before, ",")
			if e.untracked {
				from = e.groups.UntrackGroupID
			}
			ch.add(e.id, "ModifyNetworkInterfaceAttribute", fmt.Sprintf("groups %s -> %s", from, e.groups.IsolationGroupID))
		}
	})
}

// visibleAttempts bounds how long Apply takes InvalidGroup.NotFound for a group this execution's Ensure just
// created as "not visible yet" (GroupNotVisible, retried by the state machine) rather than "deleted": the
// definition's retries of GroupNotVisible (1 s, doubling, full jitter) wait about 12 s on average over the first
// five, where EC2's eventual consistency is normally a second.
const visibleAttempts = 5

// applyError is the step's error for the ENIs that failed, naming every failed ENI. EC2 answers
// InvalidGroup.NotFound ("The specified security group does not exist",
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) both for a group too new to be
// visible (eventual consistency) and for one deleted since: only a group this execution just created can be the
// former, and only for the first attempts; otherwise the group is gone, GroupMissing, which the state machine
// sends back to Ensure (retrying Apply with the same input would fail the same way, and so would a redrive).
// Other failures: the first failure's classification.
func applyError(failed []*eni, total int, errs []error, rerun workflow.Rerun) error {
	for _, e := range failed {
		if steperr.Code(e.err) != "InvalidGroup.NotFound" {
			continue
		}
		if e.groups.Created && rerun.RedriveCount == 0 && rerun.Attempt < visibleAttempts {
			return &steperr.GroupNotVisible{VpcID: e.vpc, GroupName: e.groups.IsolationGroupID}
		}
		return &steperr.GroupMissing{VpcID: e.vpc, GroupID: e.groups.IsolationGroupID}
	}
	op := applyStep
	if len(errs) > 1 {
		op = fmt.Sprintf("%s (%d of %d network interfaces failed)", applyStep, len(errs), total)
	}
	return steperr.FromAWS(op, errors.Join(errs...))
}

// modifyAll sets the groups of all enis at once, one concurrent call per ENI; done gets each call's result (it
// runs concurrently, each call on its own ENI).
func modifyAll(ctx context.Context, client ApplyAPI, enis []*eni, group func(*eni) string, done func(*eni, error)) {
	var wg sync.WaitGroup
	for _, e := range enis {
		wg.Go(func() {
			_, err := client.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(e.id),
				Groups:             []string{group(e)},
			})
			done(e, err)
		})
	}
	wg.Wait()
}

// checkInput returns the groups by VPC, and the record's ENIs (none without a record) with their groups. The
// groups are the input's Groups, else Ensure's output (Ensured), else, on the warm path, the ones Validate found.
func (h *Apply) checkInput(in workflow.ApplyGroupsInput) (map[string]workflow.VpcGroups, []*eni, error) {
	bad := func(format string, a ...any) error {
		return &steperr.InvalidInput{Step: applyStep, Reason: fmt.Sprintf(format, a...)}
	}
	if !instanceIDPattern.MatchString(in.InstanceID) {
		return nil, nil, bad("instanceId %q is not an instance id", in.InstanceID)
	}
	if in.Record != nil && in.Record.InstanceID != in.InstanceID {
		return nil, nil, bad("the record is of instance %q, not of %s", in.Record.InstanceID, in.InstanceID)
	}
	list := in.Groups
	switch {
	case len(list) > 0:
	case in.Ensured != nil:
		list = in.Ensured.Groups
	case in.Record != nil && in.Record.GroupsReady:
		list = in.Record.IsolationGroups
	}
	if len(list) == 0 {
		return nil, nil, bad("no isolation group for instance %s", in.InstanceID)
	}
	groups := map[string]workflow.VpcGroups{}
	for _, g := range list {
		switch {
		case !vpcIDPattern.MatchString(g.VpcID):
			return nil, nil, bad("%q is not a VPC id", g.VpcID)
		case !groupIDPattern.MatchString(g.IsolationGroupID):
			return nil, nil, bad("isolation group %q of %s is not a security group id", g.IsolationGroupID, g.VpcID)
		case h.mode == ModeUntrackFirst && !groupIDPattern.MatchString(g.UntrackGroupID):
			return nil, nil, bad("connection tracking mode is %s but the allow-all group of %s is %q (is %s the same for both functions?)",
				ModeUntrackFirst, g.VpcID, g.UntrackGroupID, EnvConnectionTracking)
		}
		if prev, dup := groups[g.VpcID]; dup && prev != g {
			return nil, nil, bad("two different group sets for %s", g.VpcID)
		}
		groups[g.VpcID] = g
	}
	if in.Record == nil {
		return groups, nil, nil
	}
	var known []*eni
	seen := map[string]bool{}
	for _, n := range in.Record.NetworkInterfaces {
		switch {
		case !eniIDPattern.MatchString(n.ID):
			return nil, nil, bad("%q is not a network interface id", n.ID)
		case seen[n.ID]:
			return nil, nil, bad("network interface %s is twice in the record", n.ID)
		}
		seen[n.ID] = true
		g, ok := groups[n.VpcID]
		if !ok {
			// Refuse before changing anything if an ENI's VPC has no isolation group.
			return nil, nil, bad("network interface %s of %s is in %q, which has no isolation group in the input", n.ID, in.InstanceID, n.VpcID)
		}
		before := slices.Clone(n.Groups)
		if before == nil {
			before = []string{}
		}
		known = append(known, &eni{id: n.ID, vpc: n.VpcID, deviceIndex: n.DeviceIndex, before: before, groups: g})
	}
	return groups, known, nil
}

// describe returns the ENIs attached to the instance, by device index.
func (h *Apply) describe(ctx context.Context, instanceID string) ([]*eni, error) {
	var enis []*eni
	p := ec2.NewDescribeNetworkInterfacesPaginator(h.ec2, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{instanceID}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, n := range page.NetworkInterfaces {
			e := &eni{id: aws.ToString(n.NetworkInterfaceId), vpc: aws.ToString(n.VpcId), before: []string{}}
			if aws.ToBool(n.RequesterManaged) {
				e.notOwned = cmp.Or(aws.ToString(n.RequesterId), "an AWS service")
			}
			if n.Attachment != nil {
				e.deviceIndex = aws.ToInt32(n.Attachment.DeviceIndex)
			}
			for _, g := range n.Groups {
				e.before = append(e.before, aws.ToString(g.GroupId))
			}
			enis = append(enis, e)
		}
	}
	slices.SortFunc(enis, func(a, b *eni) int {
		return cmp.Or(cmp.Compare(a.deviceIndex, b.deviceIndex), cmp.Compare(a.id, b.id))
	})
	return enis, nil
}
