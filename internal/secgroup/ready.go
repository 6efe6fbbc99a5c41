package secgroup

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Names are the group names the mode needs in every VPC: the isolation group's, and in untrack-first mode the
// allow-all group's. "Validate and record" looks them up (filter group-name) at once with the instance.
func (s Settings) Names() []string {
	if s.Mode == ModeUntrackFirst {
		return []string{s.GroupName, s.UntrackGroupName()}
	}
	return []string{s.GroupName}
}

// Usable reports whether sg can be used as it is, with no call: ec2-isolation created it (Managed) and it has
// exactly the rules its role needs: none for the isolation group, all traffic in and out (0.0.0.0/0 and ::/0)
// for the allow-all group. Ensure brings any other group with our names to that state, or refuses it.
func Usable(sg *types.SecurityGroup, untrack bool) bool {
	if !Managed(sg) {
		return false
	}
	if untrack {
		return len(missingAllowAll(sg.IpPermissions)) == 0 && len(missingAllowAll(sg.IpPermissionsEgress)) == 0
	}
	return len(singlePeer(sg.IpPermissions)) == 0 && len(singlePeer(sg.IpPermissionsEgress)) == 0
}

// Ready picks, from groups described by name (in any VPC), the usable ones (Usable) in vpcs, and reports whether
// every VPC has every group the mode needs. found lists, in the order of vpcs, each VPC with at least one usable
// group; a group it lacks has an empty id (Ensure creates or repairs it).
func (s Settings) Ready(vpcs []string, groups []types.SecurityGroup) (found []workflow.VpcGroups, ready bool) {
	byVPC := map[string]*workflow.VpcGroups{}
	for _, sg := range groups {
		vpc := aws.ToString(sg.VpcId)
		var untrack bool
		switch aws.ToString(sg.GroupName) {
		case s.GroupName:
		case s.UntrackGroupName():
			if s.Mode != ModeUntrackFirst {
				continue
			}
			untrack = true
		default:
			continue
		}
		if !Usable(&sg, untrack) {
			continue
		}
		g := byVPC[vpc]
		if g == nil {
			g = &workflow.VpcGroups{VpcID: vpc}
			byVPC[vpc] = g
		}
		if untrack {
			g.UntrackGroupID = aws.ToString(sg.GroupId)
		} else {
			g.IsolationGroupID = aws.ToString(sg.GroupId)
		}
	}
	ready = len(vpcs) > 0
	for _, vpc := range vpcs {
		g := byVPC[vpc]
		if g == nil {
			ready = false
			continue
		}
		found = append(found, *g)
		if g.IsolationGroupID == "" || (s.Mode == ModeUntrackFirst && g.UntrackGroupID == "") {
			ready = false
		}
	}
	return found, ready
}
