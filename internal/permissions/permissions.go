// Package permissions derives the IAM actions a function needs from the AWS calls it made, so that the roles in
// template.yaml can be checked against what the code really calls (least privilege: nothing missing, nothing
// extra).
package permissions

import (
	"slices"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// impliedBy are IAM actions that a call needs besides its own action, per the Service Authorization Reference:
// associating an instance profile passes its role (iam:PassRole).
var impliedBy = map[string][]string{
	"ec2:AssociateIamInstanceProfile":          {"iam:PassRole"},
	"ec2:ReplaceIamInstanceProfileAssociation": {"iam:PassRole"},
}

// Required returns, per caller, the sorted IAM actions its calls need: the call's own action; ec2:CreateTags for
// a create call with TagSpecification (tag-on-create is authorised as ec2:CreateTags); the actions in impliedBy.
// DryRun calls count: they need the same permission.
func Required(calls []sim.Call) map[string][]string {
	sets := map[string]map[string]bool{}
	add := func(caller, action string) {
		if sets[caller] == nil {
			sets[caller] = map[string]bool{}
		}
		sets[caller][action] = true
	}
	for _, c := range calls {
		action := c.Service + ":" + c.Action
		add(c.Caller, action)
		for _, a := range impliedBy[action] {
			add(c.Caller, a)
		}
		if c.Service == "ec2" && tagsOnCreate(c) {
			add(c.Caller, "ec2:CreateTags")
		}
	}
	out := map[string][]string{}
	for caller, set := range sets {
		for a := range set {
			out[caller] = append(out[caller], a)
		}
		slices.Sort(out[caller])
	}
	return out
}

func tagsOnCreate(c sim.Call) bool {
	for k := range c.Params {
		if strings.HasPrefix(k, "TagSpecification.") {
			return true
		}
	}
	return false
}
