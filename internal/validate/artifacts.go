package validate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// tagManaged marks the groups ec2-isolation created (internal/secgroup tags them on create).
const tagManaged = "ec2-isolation:managed"

func managedIDs(groups []types.SecurityGroup) []string {
	var ids []string
	for _, g := range groups {
		if slices.ContainsFunc(g.Tags, func(t types.Tag) bool {
			return aws.ToString(t.Key) == tagManaged && aws.ToString(t.Value) == "true"
		}) {
			ids = append(ids, aws.ToString(g.GroupId))
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// artifacts names what in the record is already the isolation's doing: an ENI carrying a managed group (the
// isolation group or the allow-all group, in any position), or the isolation profile associated. profileName
// empty: the profile is not checked.
func artifacts(rec workflow.Record, profileName string) []string {
	managed := map[string]bool{}
	for _, id := range rec.ManagedGroups {
		managed[id] = true
	}
	for _, g := range rec.IsolationGroups {
		for _, id := range []string{g.IsolationGroupID, g.UntrackGroupID} {
			if id != "" {
				managed[id] = true
			}
		}
	}
	var out []string
	for _, n := range rec.NetworkInterfaces {
		for _, g := range n.Groups {
			if managed[g] {
				out = append(out, fmt.Sprintf("%s carries the isolation group %s", n.ID, g))
			}
		}
	}
	if a := rec.ProfileAssociation; a != nil && IsProfile(a.ProfileARN, profileName) {
		out = append(out, fmt.Sprintf("the isolation profile %s is associated (%s)", a.ProfileARN, a.State))
	}
	return out
}

// IsProfile reports whether an instance profile ARN (arn:…:instance-profile/<path><name>) names the profile
// called name. Instance profile names are case-insensitive in IAM.
func IsProfile(arn, name string) bool {
	if name == "" {
		return false
	}
	_, res, ok := strings.Cut(arn, ":instance-profile/")
	return ok && strings.EqualFold(res[strings.LastIndex(res, "/")+1:], name)
}
