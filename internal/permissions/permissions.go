// Package permissions derives the IAM actions a function needs from the AWS calls it made, so that the roles in
// template.yaml can be checked against what the code really calls (least privilege: nothing missing, nothing
// extra).
package permissions

import (
	"slices"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// impliedBy are IAM actions that a call needs besides its own action: associating an instance profile passes its
// role (iam:PassRole, Service Authorization Reference); and a GetObject of a missing key answers 404 NoSuchKey
// only to a caller allowed s3:ListBucket on the bucket, 403 AccessDenied otherwise, which the incident steps
// could not tell from a real denial (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html).
var impliedBy = map[string][]string{
	"ec2:AssociateIamInstanceProfile":          {"iam:PassRole"},
	"ec2:ReplaceIamInstanceProfileAssociation": {"iam:PassRole"},
	"s3:GetObject": {"s3:ListBucket"},
}

// iamAction is the IAM action that authorises an API operation, where the two names differ (S3: HeadObject is
// authorised as s3:GetObject; a GetObject of a given version as s3:GetObjectVersion; ListObjectVersions as
// s3:ListBucketVersions).
func iamAction(c sim.Call) string {
	if c.Service == "s3" {
		switch {
		case c.Action == "HeadObject" || c.Action == "GetObject":
			if c.Params.Get("versionId") != "" {
				return "s3:GetObjectVersion"
			}
			return "s3:GetObject"
		case c.Action == "ListObjectVersions":
			return "s3:ListBucketVersions"
		}
	}
	return c.Service + ":" + c.Action
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
		action := iamAction(c)
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
