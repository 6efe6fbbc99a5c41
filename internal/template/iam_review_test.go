package template

// Checks of template.yaml against what IAM and the other services do on a real account, which neither cfn-lint nor
// the simulator (it does not evaluate IAM) can see. The IAM tables below are copied from the Service Authorization
// Reference (SAR): https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html and the
// pages of IAM, SNS, Lambda, Step Functions, CloudWatch Logs and X-Ray. A new action in a role must be added here,
// from the SAR, before this test passes.

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sarResource is one resource type an action authorises.
type sarResource struct {
	typ      string   // "service:type", e.g. "ec2:security-group"
	required bool     // marked * in the SAR
	inCall   bool     // the code's request carries this resource, so an Allow statement must cover it
	keys     []string // condition keys of this action and resource type, as the SAR lists them
}

// sarAction is one action: the resource types it authorises (none: Resource must be "*") and its dependent
// actions.
type sarAction struct {
	resources []sarResource
	dependent []string
}

var (
	sarInstanceKeys = []string{"aws:ResourceTag/${TagKey}", "ec2:AvailabilityZone", "ec2:AvailabilityZoneId",
		"ec2:CpuOptionsAmdSevSnp", "ec2:EbsOptimized", "ec2:InstanceAutoRecovery", "ec2:InstanceBandwidthWeighting",
		"ec2:InstanceID", "ec2:InstanceMarketType", "ec2:InstanceMetadataTags", "ec2:InstanceProfile",
		"ec2:InstanceType", "ec2:ManagedResourceOperator", "ec2:MetadataHttpEndpoint",
		"ec2:MetadataHttpPutResponseHopLimit", "ec2:MetadataHttpTokens", "ec2:PlacementGroup", "ec2:ProductCode",
		"ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:RootDeviceType", "ec2:Tenancy"}
	sarProfileChangeKeys = append(slices.Clone(sarInstanceKeys), "ec2:NewInstanceProfile")
	sarGroupKeys         = []string{"aws:ResourceTag/${TagKey}", "ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:SecurityGroupID", "ec2:Vpc"}
	sarGroupRuleKeys     = []string{"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:Region"}
	sarCreateTagsKeys    = []string{"aws:RequestTag/${TagKey}", "aws:ResourceTag/${TagKey}", "aws:TagKeys", "ec2:CreateAction", "ec2:Region", "ec2:ResourceTag/${TagKey}"}
	sarNoResources       = sarAction{}
)

var sarActions = map[string]sarAction{
	"ec2:DescribeInstances":                      sarNoResources,
	"ec2:DescribeIamInstanceProfileAssociations": sarNoResources,
	"ec2:DescribeSecurityGroups":                 sarNoResources,
	"ec2:DescribeNetworkInterfaces":              sarNoResources,
	"ec2:DescribeSnapshots":                      sarNoResources,
	"ec2:DescribeInstanceAttribute": {resources: []sarResource{
		{typ: "ec2:instance", required: true, inCall: true, keys: sarInstanceKeys}}},
	"ec2:DisassociateIamInstanceProfile": {resources: []sarResource{
		{typ: "ec2:instance", required: true, inCall: true, keys: sarInstanceKeys}}},
	"ec2:AssociateIamInstanceProfile": {
		resources: []sarResource{{typ: "ec2:instance", required: true, inCall: true, keys: sarProfileChangeKeys}},
		dependent: []string{"iam:PassRole"}},
	"ec2:ReplaceIamInstanceProfileAssociation": {
		resources: []sarResource{{typ: "ec2:instance", required: true, inCall: true, keys: sarProfileChangeKeys}},
		dependent: []string{"iam:PassRole"}},
	"ec2:CreateSecurityGroup": {resources: []sarResource{
		{typ: "ec2:security-group", required: true, inCall: true, keys: []string{"aws:RequestTag/${TagKey}", "aws:TagKeys", "ec2:Region", "ec2:SecurityGroupID"}},
		// Not required, but our request names the VPC (VpcId).
		{typ: "ec2:vpc", inCall: true, keys: []string{"aws:ResourceTag/${TagKey}", "ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:Tenancy", "ec2:VpcID"}}}},
	"ec2:CreateTags": {resources: []sarResource{
		{typ: "ec2:security-group", keys: append(slices.Clone(sarCreateTagsKeys), "ec2:SecurityGroupID", "ec2:Vpc")},
		{typ: "ec2:snapshot", keys: sarCreateTagsKeys}}},
	"ec2:RevokeSecurityGroupIngress": {resources: []sarResource{
		{typ: "ec2:security-group", required: true, inCall: true, keys: sarGroupKeys}}},
	"ec2:RevokeSecurityGroupEgress": {resources: []sarResource{
		{typ: "ec2:security-group", required: true, inCall: true, keys: sarGroupKeys}}},
	// security-group-rule is enforced only when the request has TagSpecifications; ours has none.
	"ec2:AuthorizeSecurityGroupIngress": {resources: []sarResource{
		{typ: "ec2:security-group", required: true, inCall: true, keys: sarGroupKeys},
		{typ: "ec2:security-group-rule", keys: sarGroupRuleKeys}}},
	"ec2:AuthorizeSecurityGroupEgress": {resources: []sarResource{
		{typ: "ec2:security-group", required: true, inCall: true, keys: sarGroupKeys},
		{typ: "ec2:security-group-rule", keys: sarGroupRuleKeys}}},
	// Optional types that our request still carries: the instance the ENI is attached to, its subnet, the groups.
	"ec2:ModifyNetworkInterfaceAttribute": {resources: []sarResource{
		{typ: "ec2:instance", inCall: true, keys: sarInstanceKeys},
		{typ: "ec2:network-interface", required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}",
			"ec2:Attribute", "ec2:Attribute/${AttributeName}", "ec2:AvailabilityZone", "ec2:ManagedResourceOperator",
			"ec2:NetworkInterfaceID", "ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:Subnet", "ec2:Vpc"}},
		{typ: "ec2:security-group", inCall: true, keys: sarGroupKeys},
		{typ: "ec2:subnet", inCall: true, keys: []string{"aws:ResourceTag/${TagKey}", "ec2:AvailabilityZone",
			"ec2:AvailabilityZoneId", "ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:Vpc"}}}},
	"ec2:CreateSnapshots": {resources: []sarResource{
		{typ: "ec2:instance", required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}",
			"ec2:AvailabilityZone", "ec2:CpuOptionsAmdSevSnp", "ec2:EbsOptimized", "ec2:InstanceBandwidthWeighting",
			"ec2:InstanceID", "ec2:InstanceProfile", "ec2:InstanceType", "ec2:PlacementGroup", "ec2:Region",
			"ec2:ResourceTag/${TagKey}", "ec2:RootDeviceType", "ec2:Tenancy"}},
		{typ: "ec2:snapshot", required: true, inCall: true, keys: []string{"aws:RequestTag/${TagKey}", "aws:TagKeys",
			"ec2:Location", "ec2:OutpostArn", "ec2:ParentVolume", "ec2:Region", "ec2:SnapshotID",
			"ec2:SourceAvailabilityZone", "ec2:SourceOutpostArn", "ec2:VolumeSize"}},
		{typ: "ec2:volume", required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}", "ec2:Encrypted",
			"ec2:Region", "ec2:ResourceTag/${TagKey}", "ec2:VolumeID", "ec2:VolumeInitializationRate",
			"ec2:VolumeIops", "ec2:VolumeSize", "ec2:VolumeThroughput", "ec2:VolumeType"}}}},
	"iam:PassRole": {resources: []sarResource{
		{typ: "iam:role", required: true, inCall: true, keys: []string{"iam:AssociatedResourceArn", "iam:PassedToService"}}}},
	// Issue 7. Where keys is nil, the SAR's condition keys are not copied: no statement of the template puts a
	// condition on that action (a condition added later fails the check until its keys are copied here).
	"ec2:ModifyInstanceAttribute": {resources: []sarResource{
		{typ: "ec2:instance", required: true, inCall: true, keys: sarInstanceKeys},
		// Issue 13 item 12: with BlockDeviceMappings (each volume's DeleteOnTermination) the call may authorise the
		// volumes too.
		{typ: "ec2:volume", inCall: true}}},
	"iam:GetInstanceProfile": {resources: []sarResource{{typ: "iam:instance-profile", required: true, inCall: true}}},
	"iam:GetRolePolicy":      {resources: []sarResource{{typ: "iam:role", required: true, inCall: true}}},
	"iam:PutRolePolicy": {resources: []sarResource{
		{typ: "iam:role", required: true, inCall: true, keys: []string{"iam:PermissionsBoundary"}}}},
	"iam:DeleteRolePolicy": {resources: []sarResource{
		{typ: "iam:role", required: true, inCall: true, keys: []string{"iam:PermissionsBoundary"}}}},
	"s3:GetObject":  {resources: []sarResource{{typ: "s3:object", required: true, inCall: true}}},
	"s3:PutObject":  {resources: []sarResource{{typ: "s3:object", required: true, inCall: true}}},
	"s3:ListBucket": {resources: []sarResource{{typ: "s3:bucket", required: true, inCall: true}}},
	"autoscaling:DescribeAutoScalingInstances": sarNoResources,
	"autoscaling:DescribeAutoScalingGroups":    sarNoResources,
	"autoscaling:DetachInstances": {resources: []sarResource{{typ: "autoscaling:autoScalingGroup", required: true,
		inCall: true, keys: []string{"autoscaling:ResourceTag/${TagKey}", "aws:ResourceTag/${TagKey}"}}}},
	"autoscaling:AttachInstances": {resources: []sarResource{{typ: "autoscaling:autoScalingGroup", required: true,
		inCall: true, keys: []string{"autoscaling:ResourceTag/${TagKey}", "aws:ResourceTag/${TagKey}"}}}},
	"autoscaling:SetInstanceProtection": {resources: []sarResource{{typ: "autoscaling:autoScalingGroup", required: true,
		inCall: true, keys: []string{"autoscaling:ResourceTag/${TagKey}", "aws:ResourceTag/${TagKey}"}}}},
	"elasticloadbalancing:DescribeTargetGroups": sarNoResources,
	"elasticloadbalancing:DescribeTargetHealth": sarNoResources,
	"elasticloadbalancing:RegisterTargets": {resources: []sarResource{{typ: "elasticloadbalancing:targetgroup",
		required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}"}}}},
	"elasticloadbalancing:DeregisterTargets": {resources: []sarResource{{typ: "elasticloadbalancing:targetgroup",
		required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}"}}}},
	"sns:Publish": {resources: []sarResource{
		{typ: "sns:topic", required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}"}}}},
	"lambda:InvokeFunction": {resources: []sarResource{
		{typ: "lambda:function", required: true, inCall: true}}},
	// Lambda's poller of an SQS event source, with the function's role.
	// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html
	"sqs:ReceiveMessage": {resources: []sarResource{
		{typ: "sqs:queue", required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}"}}}},
	"sqs:DeleteMessage": {resources: []sarResource{
		{typ: "sqs:queue", required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}"}}}},
	"sqs:GetQueueAttributes": {resources: []sarResource{
		{typ: "sqs:queue", required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}"}}}},
	// The isolation state machine's "Queue instance settings" (issue 16), with the state machine's role.
	"sqs:SendMessage": {resources: []sarResource{
		{typ: "sqs:queue", required: true, inCall: true, keys: []string{"aws:ResourceTag/${TagKey}"}}}},
	"states:StartExecution": {resources: []sarResource{
		{typ: "states:stateMachine", required: true, inCall: true}}},
	"states:ListExecutions": {resources: []sarResource{
		{typ: "states:stateMachine", required: true, inCall: true}}},
	"states:DescribeExecution": {resources: []sarResource{
		{typ: "states:execution", required: true, inCall: true}}},
	"logs:CreateLogStream": {resources: []sarResource{
		{typ: "logs:log-group", required: true, inCall: true}}},
	"logs:PutLogEvents": {resources: []sarResource{
		{typ: "logs:log-stream", required: true, inCall: true}}},
	// Log delivery (Step Functions logging) and X-Ray have no resource-level permissions.
	"logs:CreateLogDelivery":        sarNoResources,
	"logs:GetLogDelivery":           sarNoResources,
	"logs:UpdateLogDelivery":        sarNoResources,
	"logs:DeleteLogDelivery":        sarNoResources,
	"logs:ListLogDeliveries":        sarNoResources,
	"logs:PutResourcePolicy":        sarNoResources,
	"logs:DescribeResourcePolicies": sarNoResources,
	"logs:DescribeLogGroups":        sarNoResources,
	"xray:PutTraceSegments":         sarNoResources,
	"xray:PutTelemetryRecords":      sarNoResources,
	"xray:GetSamplingRules":         sarNoResources,
	"xray:GetSamplingTargets":       sarNoResources,
}

// sarTagOnCreate: create calls our code makes with TagSpecifications, and the type they create. Tag-on-create is
// authorised as ec2:CreateTags on the new resource, with ec2:CreateAction = the create action.
var sarTagOnCreate = map[string]string{
	"ec2:CreateSecurityGroup": "ec2:security-group",
	"ec2:CreateSnapshots":     "ec2:snapshot",
}

// arnOwnedElsewhere: EC2 resource types whose ARN can carry another account than the caller's: a subnet shared
// through AWS RAM, and its VPC, belong to the VPC owner.
var arnOwnedElsewhere = map[string]bool{"vpc": true, "subnet": true}

// arnMayBeElsewhere: types whose ARN may name this account or any (issue 13 item 13): the release puts back the
// pre-isolation security groups, which in a shared VPC may belong to the VPC owner; the isolation groups are this
// account's own.
var arnMayBeElsewhere = map[string]bool{"security-group": true}

var subARN = regexp.MustCompile(`^arn:\$\{AWS::Partition\}:([a-z0-9-]+):(\$\{AWS::Region\}|[^:]*):(\$\{AWS::AccountId\}|[^:]*):(.+)$`)

// policyResource is what one Resource entry of a statement designates.
type policyResource struct {
	any   bool     // "*"
	types []string // "service:type"
}

// resolveResource maps one Resource entry to the resource types it designates, checking the ARN format of
// !Sub ARNs; problems are reported through bad.
func resolveResource(tpl *Template, v any, bad func(string, ...any)) policyResource {
	if v == "*" {
		return policyResource{any: true}
	}
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["Fn::Sub"].(string); ok {
			// Objects of a bucket of the template: "${Bucket.Arn}/prefix/*".
			if bucket, rest, found := strings.Cut(strings.TrimPrefix(s, "${"), ".Arn}/"); found && strings.HasPrefix(s, "${") {
				if tpl.Resources[bucket].Type != "AWS::S3::Bucket" || rest == "" {
					bad("Resource %q: not the objects of a bucket of the template", s)
				}
				return policyResource{types: []string{"s3:object"}}
			}
			parts := subARN.FindStringSubmatch(s)
			if parts == nil {
				bad("Resource %q is not arn:${AWS::Partition}:SERVICE:REGION:ACCOUNT:RESOURCE", s)
				return policyResource{}
			}
			service, region, account, res := parts[1], parts[2], parts[3], parts[4]
			switch service {
			case "iam":
				// IAM is global: no region in its ARNs.
				typ, _, found := strings.Cut(res, "/")
				if region != "" || account != "${AWS::AccountId}" || !found || (typ != "role" && typ != "instance-profile") {
					bad("Resource %q: want arn:${AWS::Partition}:iam::${AWS::AccountId}:role|instance-profile/...", s)
				}
				return policyResource{types: []string{"iam:" + typ}}
			case "states":
				// An execution of one of the stack's state machines: execution:${Machine.Name}:*.
				typ, _, _ := strings.Cut(res, ":")
				if region != "${AWS::Region}" || account != "${AWS::AccountId}" || typ != "execution" {
					bad("Resource %q: want this region and account's execution:MACHINE:*", s)
				}
				return policyResource{types: []string{"states:" + typ}}
			case "autoscaling", "elasticloadbalancing":
				if region != "${AWS::Region}" || account != "${AWS::AccountId}" {
					bad("Resource %q: want this region and account", s)
				}
				typ := res
				if i := strings.IndexAny(res, ":/"); i >= 0 {
					typ = res[:i]
				}
				return policyResource{types: []string{service + ":" + typ}}
			}
			if region != "${AWS::Region}" {
				bad("Resource %q: region %q, want ${AWS::Region}", s, region)
			}
			typ, _, found := strings.Cut(res, "/")
			if service != "ec2" || !found {
				bad("Resource %q: only EC2 TYPE/ID ARNs are expected in !Sub", s)
				return policyResource{}
			}
			switch {
			case typ == "snapshot" && account != "":
				bad("Resource %q: snapshot ARNs have no account (arn:PARTITION:ec2:REGION::snapshot/ID)", s)
			case arnOwnedElsewhere[typ] && account != "*":
				bad("Resource %q: a %s ARN carries its owner's account, another account for a shared VPC: use * as the account", s, typ)
			case arnMayBeElsewhere[typ] && account == "*":
			case typ != "snapshot" && !arnOwnedElsewhere[typ] && account != "${AWS::AccountId}":
				bad("Resource %q: account %q, want ${AWS::AccountId}", s, account)
			}
			return policyResource{types: []string{"ec2:" + typ}}
		}
		if id, ok := GetAttResource(v, "Arn"); ok {
			switch tpl.Resources[id].Type {
			case "AWS::IAM::Role":
				return policyResource{types: []string{"iam:role"}}
			case "AWS::Serverless::Function":
				return policyResource{types: []string{"lambda:function"}}
			case "AWS::Logs::LogGroup":
				// The Arn attribute ends in ":*": the group and its streams.
				return policyResource{types: []string{"logs:log-group", "logs:log-stream"}}
			case "AWS::S3::Bucket":
				return policyResource{types: []string{"s3:bucket"}}
			case "AWS::SQS::Queue":
				return policyResource{types: []string{"sqs:queue"}}
			}
		}
		if id, ok := m["Ref"].(string); ok && len(m) == 1 {
			switch tpl.Resources[id].Type {
			case "AWS::SNS::Topic":
				return policyResource{types: []string{"sns:topic"}}
			case "AWS::Serverless::StateMachine":
				return policyResource{types: []string{"states:stateMachine"}}
			}
		}
	}
	bad("Resource %v: cannot tell what it designates", v)
	return policyResource{}
}

// normalKey is a condition key as the SAR spells it, lower-cased: a tag key becomes ${TagKey}.
func normalKey(k string) string {
	k = strings.ToLower(k)
	for _, p := range []string{"aws:requesttag/", "aws:resourcetag/", "ec2:resourcetag/"} {
		if strings.HasPrefix(k, p) {
			return p + "${tagkey}"
		}
	}
	if strings.HasPrefix(k, "ec2:attribute/") {
		return "ec2:attribute/${attributename}"
	}
	return k
}

// globalKey: aws: keys present in every request context (aws:SourceAccount, aws:SecureTransport, ...), unlike the
// tag keys, which exist only for the resource types the SAR lists them for.
func globalKey(k string) bool {
	k = normalKey(k)
	return strings.HasPrefix(k, "aws:") && !strings.HasPrefix(k, "aws:requesttag/") &&
		!strings.HasPrefix(k, "aws:resourcetag/") && k != "aws:tagkeys"
}

// requiredKeys are the condition keys a statement needs in the request context: a key absent from the context
// fails its condition unless the operator is ...IfExists or Null "true".
func requiredKeys(cond map[string]any) []string {
	var keys []string
	for op, kv := range cond {
		m, _ := kv.(map[string]any)
		for k, v := range m {
			if strings.HasSuffix(op, "IfExists") || (op == "Null" && fmt.Sprint(v) == "true") {
				continue
			}
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// iamReviewProblems checks every Allow statement of every AWS::IAM::Role against sarActions.
func iamReviewProblems(tpl *Template) []string {
	var problems []string
	for _, roleID := range slices.Sorted(maps.Keys(tpl.Resources)) {
		if tpl.Resources[roleID].Type != "AWS::IAM::Role" {
			continue
		}
		policies, err := tpl.RolePolicies(roleID)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		// covered[action][type]: some Allow statement of the role lets action act on type.
		covered := map[string]map[string]bool{}
		// tagOnCreate[type]: CreateTags on type is allowed, with ec2:CreateAction (if constrained) values.
		type createTags struct {
			any     bool
			actions []string
		}
		tagging := map[string]*createTags{}
		for _, name := range slices.Sorted(maps.Keys(policies)) {
			for i, st := range policies[name] {
				if st.Effect != "Allow" {
					continue
				}
				where := fmt.Sprintf("role %s policy %s statement %d", roleID, name, i)
				bad := func(format string, a ...any) {
					problems = append(problems, where+": "+fmt.Sprintf(format, a...))
				}
				resources := make([]policyResource, 0, len(st.Resource))
				for _, r := range st.Resource {
					resources = append(resources, resolveResource(tpl, r, bad))
				}
				keys := requiredKeys(st.Condition)
				for _, action := range st.Action {
					sar, ok := sarActions[action]
					if !ok {
						bad("%s is not in sarActions: add its resource types and condition keys from the Service Authorization Reference", action)
						continue
					}
					if covered[action] == nil {
						covered[action] = map[string]bool{}
					}
					if len(sar.resources) == 0 {
						if len(resources) != 1 || !resources[0].any {
							bad("%s has no resource-level permissions: only Resource \"*\" matches it, this statement never does", action)
						}
						for _, k := range keys {
							if !globalKey(k) {
								bad("%s has no resource types, so condition key %s is never in its request context", action, k)
							}
						}
						continue
					}
					byType := map[string]sarResource{}
					for _, r := range sar.resources {
						byType[r.typ] = r
					}
					var types []string
					for _, pr := range resources {
						if pr.any {
							types = append(types, slices.Collect(maps.Keys(byType))...)
							continue
						}
						n := 0
						for _, t := range pr.types {
							if _, ok := byType[t]; ok {
								types = append(types, t)
								n++
							}
						}
						if n == 0 && len(pr.types) > 0 {
							bad("%s does not authorise %v: this Resource entry is dead for it", action, pr.types)
						}
					}
					slices.Sort(types)
					for _, t := range slices.Compact(types) {
						supported := map[string]bool{}
						for _, k := range byType[t].keys {
							supported[normalKey(k)] = true
						}
						ok := true
						for _, k := range keys {
							if !globalKey(k) && !supported[normalKey(k)] {
								bad("%s on %s: condition key %s is not in that resource type's context (SAR), so the request is denied; put the condition on a statement without %s", action, t, k, t)
								ok = false
							}
						}
						if ok {
							covered[action][t] = true
						}
						if action == "ec2:CreateTags" {
							ct := tagging[t]
							if ct == nil {
								ct = &createTags{}
								tagging[t] = ct
							}
							if v, ok := conditionValue(st.Condition, "StringEquals", "ec2:CreateAction"); ok {
								ct.actions = append(ct.actions, v...)
							} else {
								ct.any = true
							}
						}
					}
				}
			}
		}
		for _, action := range slices.Sorted(maps.Keys(covered)) {
			sar := sarActions[action]
			for _, r := range sar.resources {
				if r.inCall && !covered[action][r.typ] {
					problems = append(problems, fmt.Sprintf("role %s: %s is allowed, but no statement allows it on %s, which the call carries: every call is denied", roleID, action, r.typ))
				}
			}
			for _, dep := range sar.dependent {
				if _, ok := covered[dep]; !ok {
					problems = append(problems, fmt.Sprintf("role %s: %s needs %s as well (dependent action)", roleID, action, dep))
				}
			}
			if typ, ok := sarTagOnCreate[action]; ok {
				ct := tagging[typ]
				if ct == nil || (!ct.any && !slices.Contains(ct.actions, strings.TrimPrefix(action, "ec2:"))) {
					problems = append(problems, fmt.Sprintf("role %s: %s tags on create: it needs ec2:CreateTags on %s with ec2:CreateAction %s", roleID, action, typ, strings.TrimPrefix(action, "ec2:")))
				}
			}
		}
	}
	return problems
}

// conditionValue returns the values of key under op (a string or a list of strings).
func conditionValue(cond map[string]any, op, key string) ([]string, bool) {
	m, _ := cond[op].(map[string]any)
	for k, v := range m {
		if !strings.EqualFold(k, key) {
			continue
		}
		switch v := v.(type) {
		case string:
			return []string{v}, true
		case []any:
			var out []string
			for _, e := range v {
				out = append(out, fmt.Sprint(e))
			}
			return out, true
		}
		return []string{fmt.Sprint(v)}, true
	}
	return nil, false
}

func TestIAMReviewRolesAgainstServiceAuthorizationReference(t *testing.T) {
	for _, p := range iamReviewProblems(load(t)) {
		t.Error(p)
	}
}

// The checker itself: each mistake it exists for is reported.
func TestIAMReviewCheckerFindsMistakes(t *testing.T) {
	role := func(statements string) string {
		return `
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
` + statements
	}
	sg := `!Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/*`
	vpc := `!Sub arn:${AWS::Partition}:ec2:${AWS::Region}:*:vpc/*`
	tags := `
              - Effect: Allow
                Action: ec2:CreateTags
                Resource: ` + sg + `
                Condition: { StringEquals: { "ec2:CreateAction": CreateSecurityGroup } }
`
	for name, tc := range map[string]struct{ statements, want string }{
		"request tag condition on a statement that also covers the vpc": {`
              - Effect: Allow
                Action: ec2:CreateSecurityGroup
                Resource:
                  - ` + sg + `
                  - ` + vpc + `
                Condition: { StringEquals: { "aws:RequestTag/ec2-isolation:managed": "true" } }
` + tags, "ec2:CreateSecurityGroup on ec2:vpc: condition key aws:RequestTag/ec2-isolation:managed is not in that resource type's context"},
		"vpc not covered": {`
              - Effect: Allow
                Action: ec2:CreateSecurityGroup
                Resource: ` + sg + `
` + tags, "no statement allows it on ec2:vpc"},
		"no tag-on-create permission": {`
              - Effect: Allow
                Action: ec2:CreateSecurityGroup
                Resource:
                  - ` + sg + `
                  - ` + vpc + `
`, "it needs ec2:CreateTags on ec2:security-group with ec2:CreateAction CreateSecurityGroup"},
		"tag-on-create for another action": {`
              - Effect: Allow
                Action: ec2:CreateSecurityGroup
                Resource:
                  - ` + sg + `
                  - ` + vpc + `
              - Effect: Allow
                Action: ec2:CreateTags
                Resource: ` + sg + `
                Condition: { StringEquals: { "ec2:CreateAction": RunInstances } }
`, "it needs ec2:CreateTags on ec2:security-group with ec2:CreateAction CreateSecurityGroup"},
		"vpc pinned to this account": {`
              - Effect: Allow
                Action: ec2:CreateSecurityGroup
                Resource:
                  - ` + sg + `
                  - !Sub "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc/*"
` + tags, "a vpc ARN carries its owner's account"},
		"describe on an ARN": {`
              - Effect: Allow
                Action: ec2:DescribeInstances
                Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*
`, "ec2:DescribeInstances has no resource-level permissions"},
		"snapshot ARN with an account": {`
              - Effect: Allow
                Action: ec2:CreateTags
                Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:snapshot/*
`, "snapshot ARNs have no account"},
		"association without PassRole": {`
              - Effect: Allow
                Action: ec2:AssociateIamInstanceProfile
                Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*
`, "needs iam:PassRole as well"},
		"resource type the action does not authorise": {`
              - Effect: Allow
                Action: ec2:RevokeSecurityGroupEgress
                Resource:
                  - ` + sg + `
                  - !Sub "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group-rule/*"
`, "does not authorise [ec2:security-group-rule]"},
		"action missing from the table": {`
              - Effect: Allow
                Action: ec2:TerminateInstances
                Resource: "*"
`, "ec2:TerminateInstances is not in sarActions"},
		"resource tag condition on a service without resource types": {`
              - Effect: Allow
                Action: xray:PutTraceSegments
                Resource: "*"
                Condition: { StringEquals: { "aws:ResourceTag/team": "x" } }
`, "condition key aws:ResourceTag/team is never in its request context"},
	} {
		t.Run(name, func(t *testing.T) {
			tpl, err := Parse([]byte(role(tc.statements)))
			if err != nil {
				t.Fatal(err)
			}
			problems := iamReviewProblems(tpl)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems %q, want one containing %q", problems, tc.want)
			}
		})
	}

	// And a correct policy passes: IfExists and Null "true" need no key in the context.
	tpl, err := Parse([]byte(role(`
              - Effect: Allow
                Action: ec2:CreateSecurityGroup
                Resource:
                  - ` + sg + `
                  - ` + vpc + `
                Condition: { StringEqualsIfExists: { "aws:RequestTag/team": "x" }, "Null": { "aws:RequestTag/owner": "true" } }
` + tags)))
	if err != nil {
		t.Fatal(err)
	}
	if problems := iamReviewProblems(tpl); len(problems) > 0 {
		t.Errorf("a correct policy has problems: %q", problems)
	}
}

// resourceProps returns the properties of a resource of the given type, failing the test otherwise.
func resourceProps(t *testing.T, tpl *Template, id, typ string) map[string]any {
	t.Helper()
	r, ok := tpl.Resources[id]
	if !ok || r.Type != typ {
		t.Fatalf("%s is not a %s of the template", id, typ)
	}
	return r.Properties
}

func refOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["Ref"].(string)
	return s
}

func subOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["Fn::Sub"].(string)
	return s
}

// Each function logs to the log group its role may write to (a mismatch loses every log line silently), and that
// group is /aws/lambda/<function name>, where Lambda's console and `sam logs` (which ignores LoggingConfig) look.
func TestIAMReviewFunctionLogGroups(t *testing.T) {
	tpl := load(t)
	names := map[string]string{}
	// Function names have at most 64 characters: NamePrefix's MaxLength is what CloudFormation checks before it
	// creates anything (issue 13, item 14; a stack name cannot be checked, see TestNamePrefixBoundsEveryName).
	maxPrefix, _ := tpl.Parameters["NamePrefix"]["MaxLength"].(int)
	if maxPrefix == 0 {
		t.Fatal("parameter NamePrefix has no MaxLength")
	}
	for _, f := range tpl.Functions() {
		fn := subOf(tpl.Resources[f.LogicalID].Properties["FunctionName"])
		if want := "${NamePrefix}-" + f.Dir; fn != want {
			t.Errorf("%s FunctionName = %v, want !Sub %s", f.LogicalID, tpl.Resources[f.LogicalID].Properties["FunctionName"], want)
		}
		if n := maxPrefix + len("-"+f.Dir); n > 64 {
			t.Errorf("%s: a %d-character NamePrefix makes a %d-character function name (Lambda allows 64)", f.LogicalID, maxPrefix, n)
		}
		lc, _ := tpl.Resources[f.LogicalID].Properties["LoggingConfig"].(map[string]any)
		group := refOf(lc["LogGroup"])
		props := resourceProps(t, tpl, group, "AWS::Logs::LogGroup")
		if got, want := subOf(props["LogGroupName"]), "/aws/lambda/"+fn; got != want {
			t.Errorf("%s logs to %q, want %q (its default log group)", f.LogicalID, got, want)
		}
		if other, dup := names[group]; dup {
			t.Errorf("%s and %s share log group %s", f.LogicalID, other, group)
		}
		names[group] = f.LogicalID
		policies, err := tpl.RolePolicies(f.Role)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range policies["logs"] {
			for _, r := range st.Resource {
				if got, _ := GetAttResource(r, "Arn"); got != group {
					t.Errorf("role %s may write to %v, but %s logs to %s", f.Role, r, f.LogicalID, group)
				}
			}
		}
	}
	for smID := range stateMachines {
		sm := resourceProps(t, tpl, smID, "AWS::Serverless::StateMachine")
		logging, _ := sm["Logging"].(map[string]any)
		dests, _ := logging["Destinations"].([]any)
		checkVendedLogGroups(t, tpl, dests)
	}
}

func checkVendedLogGroups(t *testing.T, tpl *Template, dests []any) {
	for _, d := range dests {
		lg, _ := d.(map[string]any)["CloudWatchLogsLogGroup"].(map[string]any)
		id, _ := GetAttResource(lg["LogGroupArn"], "Arn")
		name := subOf(resourceProps(t, tpl, id, "AWS::Logs::LogGroup")["LogGroupName"])
		// Step Functions writes through CloudWatch Logs log delivery; under /aws/vendedlogs/ the log group resource
		// policy it maintains does not grow with each log group (its size is limited).
		if !strings.HasPrefix(name, "/aws/vendedlogs/states/") {
			t.Errorf("state machine log group %q is not under /aws/vendedlogs/states/", name)
		}
	}
}

// The state machine role has exactly what Step Functions documents for logging and X-Ray.
// https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html,
// https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html
func TestIAMReviewStateMachineRole(t *testing.T) {
	tpl := load(t)
	for smID := range stateMachines {
		t.Run(smID, func(t *testing.T) { checkStateMachineRole(t, tpl, smID) })
	}
}

func checkStateMachineRole(t *testing.T, tpl *Template, smID string) {
	sm := resourceProps(t, tpl, smID, "AWS::Serverless::StateMachine")
	if _, ok := sm["Policies"]; ok {
		t.Error("the state machine has SAM Policies as well as a Role")
	}
	roleID, _ := GetAttResource(sm["Role"], "Arn")
	role := resourceProps(t, tpl, roleID, "AWS::IAM::Role")
	trust, _ := json.Marshal(role["AssumeRolePolicyDocument"])
	if !strings.Contains(string(trust), `"Service":"states.amazonaws.com"`) {
		t.Errorf("state machine role trust policy %s", trust)
	}
	policies, err := tpl.RolePolicies(roleID)
	if err != nil {
		t.Fatal(err)
	}
	var onStar []string
	for _, stmts := range policies {
		for _, st := range stmts {
			if st.Effect == "Allow" && cmp.Equal(st.Resource, []any{"*"}) {
				onStar = append(onStar, st.Action...)
			}
		}
	}
	slices.Sort(onStar)
	want := []string{
		"logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
		"logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
		"xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
	}
	if diff := cmp.Diff(want, onStar); diff != "" {
		t.Errorf("state machine role actions on * (-want +got):\n%s", diff)
	}
}

// EventBridge starts the release with the target's role, and sends an isolation event to the admission queue
// (issue 16), whose policy lets the isolation rule (only) send, with no role (an SQS target takes none:
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html); both dead-letter to a queue
// whose policy lets this rule (only) send.
func TestIAMReviewRuleTargetAndDeadLetterQueue(t *testing.T) {
	tpl := load(t)
	for _, ruleID := range []string{"IsolationRule", "ReleaseRule"} {
		t.Run(ruleID, func(t *testing.T) { checkRuleTarget(t, tpl, ruleID) })
	}
}

func checkRuleTarget(t *testing.T, tpl *Template, ruleID string) {
	rule := resourceProps(t, tpl, ruleID, "AWS::Events::Rule")
	targets, _ := rule["Targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("targets %v", targets)
	}
	target, _ := targets[0].(map[string]any)
	if q, ok := GetAttResource(target["Arn"], "Arn"); ok && tpl.Resources[q].Type == "AWS::SQS::Queue" {
		if _, ok := target["RoleArn"]; ok {
			t.Errorf("the SQS target %s has a RoleArn", q)
		}
		if !queueLetsRuleSend(t, tpl, q, ruleID) {
			t.Errorf("no queue policy lets %s send to its target %s (aws:SourceArn = the rule)", ruleID, q)
		}
		dlq, _ := target["DeadLetterConfig"].(map[string]any)
		if d, _ := GetAttResource(dlq["Arn"], "Arn"); !queueLetsRuleSend(t, tpl, d, ruleID) {
			t.Errorf("no queue policy lets EventBridge dead-letter to %s", d)
		}
		return
	}
	roleID, _ := GetAttResource(target["RoleArn"], "Arn")
	role := resourceProps(t, tpl, roleID, "AWS::IAM::Role")
	trust, _ := json.Marshal(role["AssumeRolePolicyDocument"])
	if !strings.Contains(string(trust), `"Service":"events.amazonaws.com"`) {
		t.Errorf("rule target role trust policy %s", trust)
	}
	policies, err := tpl.RolePolicies(roleID)
	if err != nil {
		t.Fatal(err)
	}
	starts := false
	for _, stmts := range policies {
		for _, st := range stmts {
			if st.Effect == "Allow" && slices.Contains(st.Action, "states:StartExecution") {
				starts = slices.ContainsFunc(st.Resource, func(r any) bool { return cmp.Equal(r, target["Arn"]) })
			}
		}
	}
	if !starts {
		t.Errorf("role %s may not states:StartExecution the target %v", roleID, target["Arn"])
	}

	dlq, _ := target["DeadLetterConfig"].(map[string]any)
	queue, _ := GetAttResource(dlq["Arn"], "Arn")
	if !queueLetsRuleSend(t, tpl, queue, ruleID) {
		t.Errorf("no queue policy lets EventBridge dead-letter to %s (sqs:SendMessage with aws:SourceArn = the rule)", queue)
	}
}

// queueLetsRuleSend: a queue policy of the queue allows sqs:SendMessage with aws:SourceArn =
// the rule.
func queueLetsRuleSend(t *testing.T, tpl *Template, queue, ruleID string) bool {
	for _, r := range tpl.Resources {
		if r.Type != "AWS::SQS::QueuePolicy" {
			continue
		}
		queues, _ := r.Properties["Queues"].([]any)
		if len(queues) != 1 || refOf(queues[0]) != queue {
			continue
		}
		doc, _ := r.Properties["PolicyDocument"].(map[string]any)
		stmts, err := Statements(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range stmts {
			raw, _ := json.Marshal(st)
			if st.Effect == "Allow" && slices.Contains(st.Action, "sqs:SendMessage") &&
				strings.Contains(string(raw), `"aws:SourceArn":{"Fn::GetAtt":["`+ruleID+`","Arn"]}`) {
				return true
			}
		}
	}
	return false
}

// statementsOf returns the statements of a resource policy property.
func statementsOf(t *testing.T, props map[string]any, key string) []map[string]any {
	t.Helper()
	doc, _ := props[key].(map[string]any)
	list, _ := doc["Statement"].([]any)
	var out []map[string]any
	for _, s := range list {
		m, _ := s.(map[string]any)
		out = append(out, m)
	}
	return out
}

func actionsOf(st map[string]any) []string {
	var out []string
	for _, a := range asList(st["Action"]) {
		out = append(out, fmt.Sprint(a))
	}
	return out
}

// Alarms publish to the KMS-encrypted topic only if the topic policy lets the CloudWatch service principal publish
// for that alarm (aws:SourceArn) and the key policy lets it use the key; the notify function (no kms: actions in
// its role) publishes through the key policy's statement for the account's principals via SNS.
func TestIAMReviewNotificationsReachTheEncryptedTopic(t *testing.T) {
	tpl := load(t)
	topic := resourceProps(t, tpl, "NotificationTopic", "AWS::SNS::Topic")
	keyID := refOf(topic["KmsMasterKeyId"])
	key := resourceProps(t, tpl, keyID, "AWS::KMS::Key")

	var cloudwatchKey, viaSNS bool
	for _, st := range statementsOf(t, key, "KeyPolicy") {
		actions := actionsOf(st)
		if st["Effect"] != "Allow" || !slices.Contains(actions, "kms:GenerateDataKey*") || !slices.Contains(actions, "kms:Decrypt") {
			continue
		}
		principal, _ := json.Marshal(st["Principal"])
		cond, _ := json.Marshal(st["Condition"])
		switch {
		case string(principal) == `{"Service":"cloudwatch.amazonaws.com"}`:
			cloudwatchKey = true
		case string(principal) == `{"AWS":"*"}` &&
			strings.Contains(string(cond), `"kms:ViaService":{"Fn::Sub":"sns.${AWS::Region}.${AWS::URLSuffix}"}`) &&
			strings.Contains(string(cond), `"kms:CallerAccount":{"Ref":"AWS::AccountId"}`):
			viaSNS = true
		}
	}
	if !cloudwatchKey {
		t.Error("the topic's key policy does not let cloudwatch.amazonaws.com use the key: alarm notifications are dropped")
	}
	if !viaSNS {
		t.Error("the topic's key policy does not let the account's principals use the key through SNS: the notify function cannot publish")
	}

	var pattern *regexp.Regexp
	for id, r := range tpl.Resources {
		if r.Type != "AWS::SNS::TopicPolicy" {
			continue
		}
		for _, st := range statementsOf(t, r.Properties, "PolicyDocument") {
			principal, _ := json.Marshal(st["Principal"])
			if st["Effect"] != "Allow" || string(principal) != `{"Service":"cloudwatch.amazonaws.com"}` || !slices.Contains(actionsOf(st), "sns:Publish") {
				continue
			}
			cond, _ := st["Condition"].(map[string]any)
			like, _ := cond["ArnLike"].(map[string]any)
			src := subOf(like["aws:SourceArn"])
			if src == "" {
				t.Fatalf("topic policy %s: CloudWatch statement without an ArnLike aws:SourceArn !Sub", id)
			}
			quoted := regexp.QuoteMeta(src)
			quoted = strings.ReplaceAll(quoted, `\*`, `.*`)
			pattern = regexp.MustCompile("^" + quoted + "$")
		}
	}
	if pattern == nil {
		t.Fatal("no topic policy lets cloudwatch.amazonaws.com publish")
	}
	alarms := 0
	for id, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		alarms++
		name := subOf(r.Properties["AlarmName"])
		arn := "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:" + name
		if name == "" || !pattern.MatchString(arn) {
			t.Errorf("alarm %s (AlarmName %v) is not allowed to publish by the topic policy's aws:SourceArn %s", id, r.Properties["AlarmName"], pattern)
		}
	}
	if alarms == 0 {
		t.Error("no alarms")
	}
}

// The Slack channel: every required property, a role Chatbot can assume, and a deny-all guardrail that exists.
func TestIAMReviewChatbotChannel(t *testing.T) {
	tpl := load(t)
	ch := resourceProps(t, tpl, "SlackChannel", "AWS::Chatbot::SlackChannelConfiguration")
	for _, p := range []string{"ConfigurationName", "IamRoleArn", "SlackChannelId", "SlackWorkspaceId"} {
		if ch[p] == nil {
			t.Errorf("SlackChannel has no %s (required)", p)
		}
	}
	if got := ch["GuardrailPolicies"]; !cmp.Equal(got, []any{map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSDenyAll"}}) {
		t.Errorf("GuardrailPolicies = %v, want the AWS managed AWSDenyAll", got)
	}
	if !cmp.Equal(ch["SnsTopicArns"], []any{map[string]any{"Ref": "NotificationTopic"}}) {
		t.Errorf("SnsTopicArns = %v", ch["SnsTopicArns"])
	}
	roleID, _ := GetAttResource(ch["IamRoleArn"], "Arn")
	role := resourceProps(t, tpl, roleID, "AWS::IAM::Role")
	trust, _ := json.Marshal(role["AssumeRolePolicyDocument"])
	if !strings.Contains(string(trust), `"Service":"chatbot.amazonaws.com"`) {
		t.Errorf("Chatbot role trust policy %s", trust)
	}
	if tpl.Resources[roleID].Condition != tpl.Resources["SlackChannel"].Condition {
		t.Errorf("Chatbot role condition %q, channel condition %q", tpl.Resources[roleID].Condition, tpl.Resources["SlackChannel"].Condition)
	}
}

// Lambda refuses a reservation that leaves fewer than 100 unreserved concurrent executions; the parameter's largest
// value must still deploy on the default quota of 1,000.
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
func TestIAMReviewReservedConcurrencyFitsTheDefaultQuota(t *testing.T) {
	tpl := load(t)
	p := tpl.Parameters["FunctionConcurrency"]
	maxValue, ok := p["MaxValue"].(int)
	if !ok {
		t.Fatalf("FunctionConcurrency MaxValue = %v", p["MaxValue"])
	}
	n := 0
	for _, f := range tpl.Functions() {
		if _, ok := tpl.Resources[f.LogicalID].Properties["ReservedConcurrentExecutions"]; ok {
			n++
		}
	}
	if n == 0 || n*maxValue > 1000-100 {
		t.Errorf("%d reserving functions x FunctionConcurrency MaxValue %d = %d reserved: more than the 900 a default account can reserve", n, maxValue, n*maxValue)
	}
	if p["MinValue"] != 0 {
		t.Errorf("FunctionConcurrency MinValue = %v, want 0 (no reservation, for small quotas)", p["MinValue"])
	}
}

// Both profile steps name the isolation profile by name (Ref of an instance profile is its name); the attach
// role's conditions use its ARN.
func TestIAMReviewIsolationProfileSettings(t *testing.T) {
	tpl := load(t)
	for _, id := range []string{"AttachIsolationProfileFunction", "DisassociateProfileFunction", "RestoreInstanceProfileFunction"} {
		env, _ := tpl.Resources[id].Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if got := refOf(vars["ISOLATION_PROFILE_NAME"]); got == "" || tpl.Resources[got].Type != "AWS::IAM::InstanceProfile" {
			t.Errorf("%s ISOLATION_PROFILE_NAME = %v, want !Ref <the isolation instance profile>", id, vars["ISOLATION_PROFILE_NAME"])
		}
	}
}

// tagEvent is a "Tag Change on Resource" event shaped like the real ones: changed-tag-keys lists the keys added,
// changed or removed; tags holds all the resource's tags after the change.
func tagEvent(service, resourceType string, changed []string, tags map[string]string) map[string]any {
	ch := make([]any, 0, len(changed))
	for _, c := range changed {
		ch = append(ch, c)
	}
	tg := map[string]any{}
	for k, v := range tags {
		tg[k] = v
	}
	return map[string]any{
		"version": "0", "id": "ffd8a6fe-32f8-ef66-c85c-111111111111", "detail-type": "Tag Change on Resource",
		"source": "aws.tag", "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
		"resources": []any{"arn:aws:ec2:us-east-1:123456789012:" + resourceType + "/i-0a1b2c3d4e5f60718"},
		"detail": map[string]any{
			"changed-tag-keys": ch, "service": service, "resource-type": resourceType, "version": 3.0, "tags": tg,
		},
	}
}

// The rule fires when the key is set to the value, and on nothing else a responder or automation does.
func TestIAMReviewRuleOnRealisticTagEvents(t *testing.T) {
	tpl := load(t)
	for _, kv := range [][2]string{{"Isolate", "true"}, {"security:quarantine", "now please"}} {
		key, value := kv[0], kv[1]
		params := map[string]string{"IsolationTagKey": key, "IsolationTagValue": value}
		sub := subOf(tpl.Resources["IsolationRule"].Properties["EventPattern"])
		rendered := regexp.MustCompile(`\$\{([^}]+)\}`).ReplaceAllStringFunc(sub, func(m string) string {
			return params[m[2:len(m)-1]]
		})
		var pattern map[string]any
		if err := json.Unmarshal([]byte(rendered), &pattern); err != nil {
			t.Fatalf("pattern for %s=%s: %v", key, value, err)
		}
		for name, tc := range map[string]struct {
			event map[string]any
			want  bool
		}{
			"tag set":                         {tagEvent("ec2", "instance", []string{key}, map[string]string{key: value, "Name": "web-1"}), true},
			"tag set with other tags":         {tagEvent("ec2", "instance", []string{"Owner", key}, map[string]string{key: value, "Owner": "soc"}), true},
			"tag changed to the value":        {tagEvent("ec2", "instance", []string{key}, map[string]string{key: value}), true},
			"release value":                   {tagEvent("ec2", "instance", []string{key}, map[string]string{key: "false"}), false},
			"tag removed":                     {tagEvent("ec2", "instance", []string{key}, map[string]string{"Name": "web-1"}), false},
			"other tag of an isolated one":    {tagEvent("ec2", "instance", []string{"Name"}, map[string]string{key: value, "Name": "web-2"}), false},
			"value in another case":           {tagEvent("ec2", "instance", []string{key}, map[string]string{key: strings.ToUpper(value)}), false},
			"key in another case":             {tagEvent("ec2", "instance", []string{strings.ToLower(key) + "X"}, map[string]string{strings.ToLower(key) + "X": value}), false},
			"volume tagged":                   {tagEvent("ec2", "volume", []string{key}, map[string]string{key: value}), false},
			"another service's resource":      {tagEvent("rds", "db", []string{key}, map[string]string{key: value}), false},
			"value as a prefix of another":    {tagEvent("ec2", "instance", []string{key}, map[string]string{key: value + "x"}), false},
			"other detail-type, same payload": {withField(tagEvent("ec2", "instance", []string{key}, map[string]string{key: value}), "detail-type", "Invalid Effective Tag Policy"), false},
		} {
			if got := matches(pattern, tc.event); got != tc.want {
				t.Errorf("%s=%s, %s: rule fires %v, want %v", key, value, name, got, tc.want)
			}
		}
	}
}

func withField(ev map[string]any, k string, v any) map[string]any {
	ev[k] = v
	return ev
}

// Resource policies name no principal created by this stack: SNS, SQS and KMS validate the principals of a policy
// and reject an IAM role created moments before in the same deployment (not yet visible to them), and within
// the account the role's own policy is enough anyway.
func TestIAMReviewResourcePoliciesNameNoNewPrincipals(t *testing.T) {
	tpl := load(t)
	policyProps := map[string]string{
		"AWS::SNS::TopicPolicy": "PolicyDocument",
		"AWS::SQS::QueuePolicy": "PolicyDocument",
		"AWS::KMS::Key":         "KeyPolicy",
		"AWS::S3::BucketPolicy": "PolicyDocument",
	}
	n := 0
	for _, id := range slices.Sorted(maps.Keys(tpl.Resources)) {
		prop, ok := policyProps[tpl.Resources[id].Type]
		if !ok {
			continue
		}
		n++
		for i, st := range statementsOf(t, tpl.Resources[id].Properties, prop) {
			p, _ := st["Principal"].(map[string]any)
			for _, v := range asList(p["AWS"]) {
				ref, _ := GetAttResource(v, "Arn")
				if ref == "" {
					ref = refOf(v)
				}
				if typ := tpl.Resources[ref].Type; strings.HasPrefix(typ, "AWS::IAM::") {
					t.Errorf("%s statement %d names %s (%s) as principal", id, i, ref, typ)
				}
			}
		}
	}
	if n < 3 {
		t.Errorf("found %d resource policies, want the topic, queue and key policies", n)
	}
}
