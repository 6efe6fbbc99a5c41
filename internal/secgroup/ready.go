package secgroup

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Names are the group names the mode needs in every VPC: the isolation group's, and in untrack-first mode the
// allow-all group's, each also under its derived name (used where a group that is not ours holds the name).
// "Validate and record" looks them up (filter group-name) at once with the instance.
func (s Settings) Names() []string {
	names := []string{s.GroupName, DerivedName(s.GroupName)}
	if s.Mode == ModeUntrackFirst {
		names = append(names, s.UntrackGroupName(), DerivedName(s.UntrackGroupName()))
	}
	return names
}

// Usable reports whether sg can be used as it is, with no call: ec2-isolation created it (Managed) and it has
// exactly the rules its role needs: none at all for the isolation group (any rule, whatever its peer: a CIDR, a
// security group, a prefix list), all traffic in and out (0.0.0.0/0 and ::/0) for the allow-all group. Ensure
// brings any other group of ours with our names to that state.
func Usable(sg *types.SecurityGroup, untrack bool) bool {
	if !Managed(sg) {
		return false
	}
	if untrack {
		return len(missingAllowAll(sg.IpPermissions)) == 0 && len(missingAllowAll(sg.IpPermissionsEgress)) == 0
	}
	return len(sg.IpPermissions) == 0 && len(sg.IpPermissionsEgress) == 0
}

// Ready picks, from groups described by name (in any VPC), the usable ones (Usable) in vpcs, and reports whether
// every VPC has every group the mode needs. found lists, in the order of vpcs, each VPC with at least one usable
// group; a group it lacks has an empty id (Ensure creates or repairs it). A group under a derived name is used
// only where a group that is not ours holds the base name (that group is then the VPC's ForeignGroupID), as
// Ensure does.
func (s Settings) Ready(vpcs []string, groups []types.SecurityGroup) (found []workflow.VpcGroups, ready bool) {
	byName := map[[2]string]*types.SecurityGroup{}
	for i := range groups {
		byName[[2]string{aws.ToString(groups[i].VpcId), aws.ToString(groups[i].GroupName)}] = &groups[i]
	}
	// pick returns the usable group of the role named name in vpc, and the foreign group holding name.
	pick := func(vpc, name string, untrack bool) (id, foreign string) {
		sg := byName[[2]string{vpc, name}]
		if sg != nil && !Managed(sg) {
			foreign = aws.ToString(sg.GroupId)
			sg = byName[[2]string{vpc, DerivedName(name)}]
		}
		if sg != nil && Usable(sg, untrack) {
			id = aws.ToString(sg.GroupId)
		}
		return id, foreign
	}
	ready = len(vpcs) > 0
	for _, vpc := range vpcs {
		g := workflow.VpcGroups{VpcID: vpc}
		var foreign string
		g.IsolationGroupID, foreign = pick(vpc, s.GroupName, false)
		if s.Mode == ModeUntrackFirst {
			g.UntrackGroupID, _ = pick(vpc, s.UntrackGroupName(), true)
		}
		if g.IsolationGroupID != "" {
			g.ForeignGroupID = foreign
		}
		if g.IsolationGroupID == "" || (s.Mode == ModeUntrackFirst && g.UntrackGroupID == "") {
			ready = false
		}
		if g.IsolationGroupID == "" && g.UntrackGroupID == "" {
			continue
		}
		found = append(found, g)
	}
	return found, ready
}
