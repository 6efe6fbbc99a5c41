package secgroup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"

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
}

// NewApply returns the handler; mode comes from ModeFromEnv.
func NewApply(client ApplyAPI, mode Mode, log *slog.Logger) *Apply {
	return &Apply{ec2: client, mode: mode, log: log}
}

const applyStep = "Apply isolation security group"

var (
	instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	groupIDPattern    = regexp.MustCompile(`^sg-[0-9a-f]{1,32}$`)
)

// eni is one network interface of the instance and what Apply does to it.
type eni struct {
	id, vpc     string
	deviceIndex int32
	before      []string
	groups      workflow.VpcGroups
	untrackErr  error // untrack-first: the allow-all group could not be applied first
	err         error // the isolation group could not be applied
}

// Handle makes the isolation group of its VPC the only group of every ENI attached to the instance. The round
// trips: one Describe, then all ENIs modified at once (untrack-first: all to the allow-all group at once, then
// all to the isolation group at once). ENIs already on exactly their isolation group are left alone.
func (h *Apply) Handle(ctx context.Context, in workflow.ApplyGroupsInput) (workflow.ApplyGroupsOutput, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", applyStep)
	groups, err := h.checkInput(in)
	if err != nil {
		log.Error("invalid input", "error", err)
		return workflow.ApplyGroupsOutput{}, err
	}
	enis, err := h.describe(ctx, in.InstanceID)
	if err != nil {
		err = steperr.FromAWS("describe network interfaces of "+in.InstanceID, err)
		log.Error("describe network interfaces", "error", err)
		return workflow.ApplyGroupsOutput{}, err
	}
	if len(enis) == 0 {
		// A terminated instance has no ENI left; there is nothing to contain and nothing a retry would change.
		err := &steperr.InstanceNotIsolatable{InstanceID: in.InstanceID, Reason: "no network interface is attached (terminated?)"}
		log.Error("no network interfaces", "error", err)
		return workflow.ApplyGroupsOutput{}, err
	}
	// Refuse before changing anything if an ENI's VPC has no isolation group.
	for _, e := range enis {
		g, ok := groups[e.vpc]
		if !ok {
			err := &steperr.InvalidInput{Step: applyStep, Reason: fmt.Sprintf("network interface %s of %s is in %s, which has no isolation group in the input", e.id, in.InstanceID, e.vpc)}
			log.Error("invalid input", "error", err)
			return workflow.ApplyGroupsOutput{}, err
		}
		e.groups = g
	}

	var todo []*eni
	for _, e := range enis {
		if !slices.Equal(e.before, []string{e.groups.IsolationGroupID}) {
			todo = append(todo, e)
		}
	}
	if h.mode == ModeUntrackFirst {
		// Turn the ENIs' tracked flows into untracked ones, so that the isolation group then drops them. Until the
		// second call the ENIs accept any traffic: keep the two calls as close as possible.
		var first []*eni
		for _, e := range todo {
			if !slices.Equal(e.before, []string{e.groups.UntrackGroupID}) {
				first = append(first, e)
			}
		}
		modifyAll(ctx, h.ec2, first, func(e *eni) string { return e.groups.UntrackGroupID }, func(e *eni, err error) { e.untrackErr = err })
	}
	// Every ENI gets the isolation group, including one the allow-all group could not be applied to: containment
	// must not depend on the untracking.
	modifyAll(ctx, h.ec2, todo, func(e *eni) string { return e.groups.IsolationGroupID }, func(e *eni, err error) { e.err = err })

	out := workflow.ApplyGroupsOutput{NetworkInterfaces: make([]workflow.AppliedInterface, 0, len(enis))}
	var errs []error
	for _, e := range enis {
		a := workflow.AppliedInterface{ID: e.id, VpcID: e.vpc, Before: e.before, After: e.before}
		switch {
		case e.err != nil:
			if h.mode == ModeUntrackFirst && e.untrackErr == nil {
				e.err = fmt.Errorf("%w (the ENI is left on the allow-all group %s until a retry)", e.err, e.groups.UntrackGroupID)
			}
			errs = append(errs, fmt.Errorf("apply isolation group %s to %s: %w", e.groups.IsolationGroupID, e.id, e.err))
		case slices.Contains(todo, e):
			a.After, a.Changed = []string{e.groups.IsolationGroupID}, true
		}
		if e.untrackErr != nil && e.err == nil {
			// Contained, but the tracked connections of this ENI may survive: nothing a retry can fix now.
			log.Warn("allow-all group not applied first: tracked connections may survive", "eni", e.id, "error", e.untrackErr)
		}
		out.NetworkInterfaces = append(out.NetworkInterfaces, a)
	}
	if len(errs) > 0 {
		err := applyError(enis, errs)
		log.Error("apply isolation security group", "error", err, "failed", len(errs), "enis", len(enis))
		return workflow.ApplyGroupsOutput{}, err
	}
	log.Info("isolation security group applied", "networkInterfaces", out.NetworkInterfaces)
	return out, nil
}

// applyError is the step's error for the ENIs that failed: GroupNotVisible when EC2 did not know a group yet
// (the state machine retries), else the first failure's classification, naming every failed ENI.
func applyError(enis []*eni, errs []error) error {
	for _, e := range enis {
		if e.err != nil && steperr.Code(e.err) == "InvalidGroup.NotFound" {
			return &steperr.GroupNotVisible{VpcID: e.vpc, GroupName: e.groups.IsolationGroupID}
		}
	}
	op := applyStep
	if len(errs) > 1 {
		op = fmt.Sprintf("%s (%d of %d network interfaces failed)", applyStep, len(errs), len(enis))
	}
	return steperr.FromAWS(op, errors.Join(errs...))
}

// modifyAll sets the groups of all enis at once, one concurrent call per ENI.
func modifyAll(ctx context.Context, client ApplyAPI, enis []*eni, group func(*eni) string, fail func(*eni, error)) {
	var wg sync.WaitGroup
	for _, e := range enis {
		wg.Go(func() {
			_, err := client.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(e.id),
				Groups:             []string{group(e)},
			})
			if err != nil {
				fail(e, err)
			}
		})
	}
	wg.Wait()
}

// checkInput returns the groups by VPC.
func (h *Apply) checkInput(in workflow.ApplyGroupsInput) (map[string]workflow.VpcGroups, error) {
	bad := func(format string, a ...any) error {
		return &steperr.InvalidInput{Step: applyStep, Reason: fmt.Sprintf(format, a...)}
	}
	if !instanceIDPattern.MatchString(in.InstanceID) {
		return nil, bad("instanceId %q is not an instance id", in.InstanceID)
	}
	if len(in.Groups) == 0 {
		return nil, bad("no isolation group for instance %s", in.InstanceID)
	}
	groups := map[string]workflow.VpcGroups{}
	for _, g := range in.Groups {
		switch {
		case !vpcIDPattern.MatchString(g.VpcID):
			return nil, bad("%q is not a VPC id", g.VpcID)
		case !groupIDPattern.MatchString(g.IsolationGroupID):
			return nil, bad("isolation group %q of %s is not a security group id", g.IsolationGroupID, g.VpcID)
		case h.mode == ModeUntrackFirst && !groupIDPattern.MatchString(g.UntrackGroupID):
			return nil, bad("connection tracking mode is %s but the allow-all group of %s is %q (is %s the same for both functions?)",
				ModeUntrackFirst, g.VpcID, g.UntrackGroupID, EnvConnectionTracking)
		}
		if prev, dup := groups[g.VpcID]; dup && prev != g {
			return nil, bad("two different group sets for %s", g.VpcID)
		}
		groups[g.VpcID] = g
	}
	return groups, nil
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
