package verify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// repair contains again what rb shows open: the isolation groups first (an ENI must not be moved onto a group
// that still has rules, nor onto one that does not exist yet), then the ENIs, then the profile. It returns the
// errors of the repairs that failed; the next read-back says what they left open.
func (v *verification) repair(ctx context.Context, rb *readBack, problems []problem) []error {
	var errs []error
	target := maps.Clone(rb.iso)

	// A VPC of an attached ENI without a usable isolation group, or whose group has rules: Ensure's own code
	// (looked up by name, created with its description and managed tag and its default egress revoked, or emptied
	// of every rule; a name taken by another execution meanwhile is used), run as a rerun so that it reads first.
	var vpcs []string
	for _, vpc := range rb.vpcs() {
		sg, ok := rb.groups[rb.iso[vpc]]
		if !ok || len(rules(sg.IpPermissions, false))+len(rules(sg.IpPermissionsEgress, true)) > 0 {
			vpcs = append(vpcs, vpc)
		}
	}
	if len(vpcs) > 0 {
		out, err := v.ensure.Handle(ctx, workflow.EnsureGroupsInput{InstanceID: v.in.InstanceID, ExecutionName: v.in.ExecutionName,
			VpcIDs: vpcs, Rerun: workflow.Rerun{Attempt: 1}})
		if err != nil {
			v.log.Error("ensure isolation groups", "vpcs", vpcs, "error", err)
			errs = append(errs, err)
		} else {
			v.adopt(out.Changes)
			for _, g := range out.Groups {
				target[g.VpcID] = g.IsolationGroupID
				v.known[g.VpcID] = workflow.VpcGroups{VpcID: g.VpcID, IsolationGroupID: g.IsolationGroupID, ForeignGroupID: g.ForeignGroupID}
			}
		}
	}

	// Every ENI not on exactly its VPC's isolation group goes on it, all at once. In untrack-first mode too: see
	// Handle (the allow-all group is for the first containment of tracked flows only).
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, e := range rb.enis {
		want := target[e.vpc]
		if want == "" || slices.Equal(e.groups, []string{want}) {
			continue
		}
		wg.Go(func() {
			if err := v.modify(ctx, e, want); err != nil {
				v.log.Error("put network interface on its isolation group", "eni", e.id, "group", want, "error", err)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	if slices.ContainsFunc(problems, func(p problem) bool { return p.profile }) {
		errs = append(errs, v.repairProfile(ctx)...)
	}
	return errs
}

// modify makes group the only group of the ENI, again while EC2 does not know a group just created (bounded by
// Wait, then GroupNotVisible, which the state machine retries: the next attempt reads again).
func (v *verification) modify(ctx context.Context, e iface, group string) error {
	for attempt := 0; ; attempt++ {
		_, err := v.h.ec2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(e.id), Groups: []string{group},
		})
		switch code := steperr.Code(err); {
		case err == nil:
			v.change(e.id, "ModifyNetworkInterfaceAttribute", fmt.Sprintf("groups %s -> %s", strings.Join(e.groups, ","), group))
			v.log.Info("put network interface on its isolation group", "eni", e.id, "before", e.groups, "group", group)
			return nil
		case code == "InvalidNetworkInterfaceID.NotFound":
			// Deleted since the read-back: nothing left to contain on it; the next read-back no longer lists it.
			return nil
		case code != "InvalidGroup.NotFound":
			return steperr.FromAWS(fmt.Sprintf("put %s (%s) on its isolation group %s", e.id, strings.Join(e.groups, ", "), group), err)
		}
		if attempt+1 >= v.h.Wait.Attempts {
			return &steperr.GroupNotVisible{VpcID: e.vpc, GroupName: group}
		}
		if err := v.h.pause(ctx, attempt); err != nil {
			return err
		}
	}
}

// repairProfile gives the instance the isolation profile and nothing else, with the profile steps' own code:
// Attach (associate it, or replace another profile by it in one call), then Disassociate (any other profile
// still associated). An association changing state makes them answer AssociationPending: it settles (bounded
// wait) before the next read-back.
func (v *verification) repairProfile(ctx context.Context) []error {
	in := workflow.InstanceInput{InstanceID: v.in.InstanceID, ExecutionName: v.in.ExecutionName, Reason: Step}
	var errs []error
	attached, err := v.h.attach.Handle(ctx, in)
	if err == nil {
		v.adopt(attached.Changes)
	} else if !pending(err) {
		errs = append(errs, err)
	}
	removed, err := v.h.disassociate.Handle(ctx, in)
	if err == nil {
		v.adopt(removed.Changes)
	} else if !pending(err) {
		errs = append(errs, err)
	}
	if err := v.settle(ctx); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func pending(err error) bool {
	var ap *steperr.AssociationPending
	return errors.As(err, &ap)
}

// settle waits (bounded by Wait) until no association of the instance is changing state, but the isolation
// profile's associating (which counts as attached). If one still is, the next read-back reports it.
func (v *verification) settle(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		as, err := profile.Associations(ctx, v.h.ec2, v.in.InstanceID)
		if err != nil {
			return err
		}
		busy := slices.ContainsFunc(as, func(a types.IamInstanceProfileAssociation) bool {
			iso := profile.IsProfile(profile.ProfileARN(a), v.h.s.Profile.IsolationProfileName)
			return a.State == types.IamInstanceProfileAssociationStateDisassociating ||
				(!iso && a.State == types.IamInstanceProfileAssociationStateAssociating)
		})
		if !busy || attempt+1 >= v.h.Wait.Attempts {
			return nil
		}
		if err := v.h.pause(ctx, attempt); err != nil {
			return err
		}
	}
}

// noteAdded lists, before anything changes them, the ENIs attached since "Validate and record" (not in its
// record) with their groups: as "Apply isolation security group" found them (its Before, the earliest
// observation) or as read back now. Groups holding an isolation artifact (a group ec2-isolation manages: an
// isolation or allow-all group) are not a pre-isolation observation: such an ENI is not listed. Without a record
// nothing can be told apart, and nothing is listed.
func (v *verification) noteAdded(ctx context.Context, rb *readBack) error {
	if v.in.Record == nil {
		return nil
	}
	recorded := map[string]bool{}
	for _, n := range v.in.Record.NetworkInterfaces {
		recorded[n.ID] = true
	}
	before := map[string][]string{}
	if v.in.Apply != nil {
		for _, a := range v.in.Apply.NetworkInterfaces {
			if len(a.Before) > 0 {
				before[a.ID] = a.Before
			}
		}
	}
	type fresh struct {
		iface
		observed []string
	}
	var news []fresh
	for _, e := range rb.enis {
		if recorded[e.id] || v.added[e.id] {
			continue
		}
		obs, ok := before[e.id]
		if !ok {
			obs = e.groups
		}
		news = append(news, fresh{e, slices.Clone(obs)})
	}
	if len(news) == 0 {
		return nil
	}

	ours := map[string]bool{}
	for _, g := range v.allKnown() {
		ours[g.IsolationGroupID], ours[g.UntrackGroupID] = true, true
	}
	for _, id := range rb.iso {
		ours[id] = true
	}
	for _, id := range v.in.Record.ManagedGroups { // every managed group Validate saw
		ours[id] = true
	}
	delete(ours, "")
	var unknown []string
	for _, n := range news {
		for _, g := range n.observed {
			if sg, ok := rb.groups[g]; ok {
				ours[g] = ours[g] || secgroup.Managed(&sg)
			} else if !ours[g] {
				unknown = append(unknown, g)
			}
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		sgs, err := describeGroups(ctx, v.h.ec2, types.Filter{Name: aws.String("group-id"), Values: slices.Compact(unknown)})
		if err != nil {
			return steperr.FromAWS("describe the security groups of a network interface attached since Validate and record", err)
		}
		for _, sg := range sgs {
			if secgroup.Managed(&sg) {
				ours[aws.ToString(sg.GroupId)] = true
			}
		}
	}
	for _, n := range news {
		v.added[n.id] = true
		if slices.ContainsFunc(n.observed, func(g string) bool { return ours[g] }) {
			v.log.Warn("network interface attached since Validate and record already carries an isolation group: not a pre-isolation observation",
				"eni", n.id, "groups", n.observed)
			continue
		}
		slices.Sort(n.observed)
		v.addedList = append(v.addedList, workflow.NetworkInterface{ID: n.id, VpcID: n.vpc, SubnetID: n.subnet,
			DeviceIndex: n.deviceIndex, Groups: n.observed})
		v.log.Info("network interface attached since Validate and record", "eni", n.id, "vpc", n.vpc, "groups", n.observed)
	}
	return nil
}

// allKnown are every isolation and allow-all group this execution's input names.
func (v *verification) allKnown() []workflow.VpcGroups {
	var out []workflow.VpcGroups
	if v.in.Record != nil {
		out = append(out, v.in.Record.IsolationGroups...)
	}
	if v.in.Groups != nil {
		out = append(out, v.in.Groups.Groups...)
	}
	for _, g := range v.known {
		out = append(out, g)
	}
	return out
}
