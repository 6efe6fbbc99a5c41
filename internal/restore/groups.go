// Package restore holds the release's steps that undo the containment: "Restore security groups" puts each ENI
// back on the groups the incident record lists for it, "Restore instance profile" puts the pre-isolation instance
// profile back in place of the isolation profile. Both read the current state first and change only what differs.
package restore

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence/parts"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// GroupsStep is the ASL state name of Groups.
const GroupsStep = "Restore security groups"

// GroupsAPI is the part of the EC2 client Groups uses.
type GroupsAPI interface {
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, opts ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
}

// Groups is the handler of "Restore security groups".
type Groups struct {
	ec2 GroupsAPI
	log *slog.Logger
}

// NewGroups returns the handler. A nil logger logs to slog.Default().
func NewGroups(api GroupsAPI, log *slog.Logger) *Groups {
	if log == nil {
		log = slog.Default()
	}
	return &Groups{ec2: api, log: log}
}

// Handle reads the ENIs attached to the instance now (one call), then sets every recorded ENI whose groups differ
// from the recorded ones back to them, all at once. A recorded ENI no longer attached to the instance is left
// alone (Skipped): it may serve another instance now. An ENI attached since isolation is left on its groups
// (Skipped): the record says nothing about it, and it carries what whoever attached it chose.
func (h *Groups) Handle(ctx context.Context, in workflow.ReleaseInput) (workflow.StepChanges, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", GroupsStep)
	if err := checkGroupsInput(in); err != nil {
		log.Error("refused input", "error", err)
		return workflow.StepChanges{Changes: []workflow.Change{}}, err
	}
	current, err := h.attached(ctx, in.InstanceID)
	if err != nil {
		log.Error("cannot read network interfaces", "error", err)
		return workflow.StepChanges{Changes: []workflow.Change{}}, err
	}

	recorded := in.Incident.PreIsolation.Record.NetworkInterfaces
	ps := make([]parts.Part, 0, len(recorded))
	for _, n := range recorded {
		ps = append(ps, parts.Part{Name: n.ID, Run: func(ctx context.Context, r *parts.Result) error {
			now, ok := current[n.ID]
			if !ok {
				r.Skip("%s: no longer attached to %s; left on its groups", n.ID, in.InstanceID)
				return nil
			}
			if sameGroups(now, n.Groups) {
				return nil
			}
			if _, err := h.ec2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(n.ID), Groups: n.Groups,
			}); err != nil {
				return steperr.FromAWS(fmt.Sprintf("restore groups %s of %s", strings.Join(n.Groups, ","), n.ID), err)
			}
			r.Changed(n.ID, "ModifyNetworkInterfaceAttribute", fmt.Sprintf("groups %s -> %s", strings.Join(now, ","), strings.Join(n.Groups, ",")))
			return nil
		}})
	}
	out, errs := parts.Run(ctx, GroupsStep, ps)
	for _, id := range slices.Sorted(maps.Keys(current)) {
		if !slices.ContainsFunc(recorded, func(n workflow.NetworkInterface) bool { return n.ID == id }) {
			out.Skipped = append(out.Skipped, fmt.Sprintf("%s: attached since isolation (not in the record); left on its groups %s",
				id, strings.Join(current[id], ",")))
		}
	}
	if err := parts.Error(GroupsStep, len(ps), errs); err != nil {
		log.Error("security groups not fully restored", "error", err, "changes", out.Changes, "skipped", out.Skipped)
		return out, err
	}
	log.Info("security groups restored", "changes", out.Changes, "skipped", out.Skipped)
	return out, nil
}

// attached returns the groups of each ENI attached to the instance now, by ENI id.
func (h *Groups) attached(ctx context.Context, instanceID string) (map[string][]string, error) {
	out := map[string][]string{}
	p := ec2.NewDescribeNetworkInterfacesPaginator(h.ec2, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{instanceID}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, steperr.FromAWS("describe network interfaces of "+instanceID, err)
		}
		for _, n := range page.NetworkInterfaces {
			// The filter is the server's job; a wrong answer must not make us change another instance's ENI.
			if n.Attachment == nil || aws.ToString(n.Attachment.InstanceId) != instanceID {
				continue
			}
			groups := []string{}
			for _, g := range n.Groups {
				groups = append(groups, aws.ToString(g.GroupId))
			}
			out[aws.ToString(n.NetworkInterfaceId)] = groups
		}
	}
	return out, nil
}

// sameGroups compares two group lists as sets: an ENI's groups have no order.
func sameGroups(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func checkGroupsInput(in workflow.ReleaseInput) error {
	if err := parts.CheckRelease(GroupsStep, in); err != nil {
		return err
	}
	recorded := in.Incident.PreIsolation.Record.NetworkInterfaces
	if len(recorded) == 0 {
		return &steperr.InvalidInput{Step: GroupsStep, Reason: "the incident's pre-isolation record lists no network interface"}
	}
	seen := map[string]bool{}
	for _, n := range recorded {
		switch {
		case !strings.HasPrefix(n.ID, "eni-"):
			return &steperr.InvalidInput{Step: GroupsStep, Reason: fmt.Sprintf("%q is not a network interface id", n.ID)}
		case seen[n.ID]:
			return &steperr.InvalidInput{Step: GroupsStep, Reason: fmt.Sprintf("network interface %s is recorded twice", n.ID)}
		case len(n.Groups) == 0:
			return &steperr.InvalidInput{Step: GroupsStep, Reason: fmt.Sprintf("the record lists no security group for %s", n.ID)}
		}
		seen[n.ID] = true
		for _, g := range n.Groups {
			if !strings.HasPrefix(g, "sg-") {
				return &steperr.InvalidInput{Step: GroupsStep, Reason: fmt.Sprintf("%q (recorded for %s) is not a security group id", g, n.ID)}
			}
		}
	}
	return nil
}
