package template

// Issue 13, deployment items: names unique per account and region (6), application log level (9), the
// retained bucket policy (10), the stack's roles under their own path (11), names bounded before anything is
// created (14), and StackSets across an Organization (15): the template rendered for two accounts x two regions
// has no name collision.

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// nameScope is where a resource type's names must be unique.
type nameScope string

const (
	scopeRegion    nameScope = "account+region" // Lambda, CloudWatch Logs and alarms, KMS aliases, SNS, SQS, ...
	scopeAccount   nameScope = "account"        // IAM, AWS Chatbot: global services
	scopePartition nameScope = "partition"      // S3 bucket names
)

// namedType is the property that names a resource of a type, where that name must be unique and how long it may
// be. prop "" = the type has no name (CloudFormation or the service identifies it). A type missing here fails
// TestNoNameCollidesAcrossAccountsAndRegions: whoever adds one says where its names must be unique.
type namedType struct {
	prop  string
	scope nameScope
	max   int
}

var namedTypes = map[string]namedType{
	"AWS::Serverless::Function":        {"FunctionName", scopeRegion, 64},
	"AWS::Lambda::Function":            {"FunctionName", scopeRegion, 64},
	"AWS::Logs::LogGroup":              {"LogGroupName", scopeRegion, 512},
	"AWS::CloudWatch::Alarm":           {"AlarmName", scopeRegion, 255},
	"AWS::KMS::Alias":                  {"AliasName", scopeRegion, 256},
	"AWS::SNS::Topic":                  {"TopicName", scopeRegion, 256},
	"AWS::SQS::Queue":                  {"QueueName", scopeRegion, 80},
	"AWS::Events::Rule":                {"Name", scopeRegion, 64},
	"AWS::Serverless::StateMachine":    {"Name", scopeRegion, 80},
	"AWS::StepFunctions::StateMachine": {"StateMachineName", scopeRegion, 80},
	"AWS::Scheduler::Schedule":         {"Name", scopeRegion, 64},
	"AWS::DynamoDB::Table":             {"TableName", scopeRegion, 255},
	// CloudWatch dashboards are global: one name space per account, whatever the region.
	// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html
	"AWS::CloudWatch::Dashboard": {"DashboardName", scopeAccount, 255},
	// AWS Chatbot is a global service: a configuration name is unique in the account, whatever the region.
	// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-chatbot-slackchannelconfiguration.html
	"AWS::Chatbot::SlackChannelConfiguration": {"ConfigurationName", scopeAccount, 128},
	"AWS::IAM::Role":                  {"RoleName", scopeAccount, 64},
	"AWS::IAM::InstanceProfile":       {"InstanceProfileName", scopeAccount, 128},
	"AWS::IAM::ManagedPolicy":         {"ManagedPolicyName", scopeAccount, 128},
	"AWS::S3::Bucket":                 {"BucketName", scopePartition, 63},
	"AWS::KMS::Key":                   {},
	"AWS::Lambda::EventSourceMapping": {},
	"AWS::S3::BucketPolicy":           {},
	"AWS::SNS::TopicPolicy":           {},
	"AWS::SNS::Subscription":          {},
	"AWS::SQS::QueuePolicy":           {},
	"AWS::Lambda::Permission":         {},
	"AWS::Logs::MetricFilter":         {}, // FilterName unset: CloudFormation names it
}

// deployment is one stack: where it runs and with which parameter values.
type deployment struct {
	partition, account, region, stack string
	params                            map[string]string
}

// render resolves a literal, a Ref or a Sub as CloudFormation would for d: parameters, pseudo parameters, and a
// resource of the stack as a name CloudFormation generates (unique to the stack). ok is false for anything
// else (an unresolvable name: the test reports it).
func (d deployment) render(tpl *Template, v any) (string, bool) {
	lookup := func(name string) (string, bool) {
		switch name {
		case "AWS::StackName":
			return d.stack, true
		case "AWS::Region":
			return d.region, true
		case "AWS::AccountId":
			return d.account, true
		case "AWS::Partition":
			return d.partition, true
		case "AWS::URLSuffix":
			return "amazonaws.com", true
		}
		if p, ok := d.params[name]; ok {
			return p, true
		}
		res, _, _ := strings.Cut(name, ".")
		if _, ok := tpl.Resources[res]; ok {
			return fmt.Sprintf("%s-%s-GENERATED", d.stack, res), true
		}
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case map[string]any:
		if ref, ok := v["Ref"].(string); ok && len(v) == 1 {
			return lookup(ref)
		}
		if sub, ok := v["Fn::Sub"].(string); ok && len(v) == 1 {
			ok := true
			out := regexp.MustCompile(`\$\{([^}!]+)\}`).ReplaceAllStringFunc(sub, func(m string) string {
				s, found := lookup(m[2 : len(m)-1])
				ok = ok && found
				return s
			})
			return out, ok
		}
	}
	return "", false
}

// params are the template's parameter defaults with overrides (every condition a name depends on made true).
func params(tpl *Template, overrides map[string]string) map[string]string {
	out := map[string]string{}
	for k, p := range tpl.Parameters {
		out[k] = fmt.Sprint(p["Default"])
	}
	maps.Copy(out, overrides)
	return out
}

// withEverything turns on every optional resource: Slack (the Chatbot configuration), email, the central topic
// and bucket.
var withEverything = map[string]string{
	"SlackWorkspaceId": "T0123ABCD", "SlackChannelId": "C0123ABCD", "NotificationEmail": "soc@example.com",
	"CentralTopicArn":   "arn:aws:sns:eu-west-1:999999999999:ec2-isolation-central",
	"CentralBucketName": "org-ec2-isolation-records", "CentralBucketRegion": "eu-west-1",
}

// stackSetName is how CloudFormation StackSets name the stack of a stack instance: StackSet-<set name>-<uuid>.
func stackSetName(set string, n int) string {
	return fmt.Sprintf("StackSet-%s-%08x-1b2c-4d3e-8f40-%012x", set, n, n)
}

// namesOf renders every named resource of the template for d: scope key -> resource id.
func namesOf(t *testing.T, tpl *Template, d deployment) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(tpl.Resources)) {
		r := tpl.Resources[id]
		nt, known := namedTypes[r.Type]
		if !known {
			t.Errorf("%s: type %s is not in namedTypes: say which property names it and where its names are unique", id, r.Type)
			continue
		}
		raw, named := r.Properties[nt.prop]
		if nt.prop == "" || !named {
			continue // CloudFormation generates a unique name
		}
		name, ok := d.render(tpl, raw)
		if !ok {
			t.Errorf("%s %s = %v: cannot render it", id, nt.prop, raw)
			continue
		}
		if len(name) > nt.max {
			t.Errorf("%s (stack %s): %s %q has %d characters, %s allows %d", id, d.stack, nt.prop, name, len(name), r.Type, nt.max)
		}
		var where string
		switch nt.scope {
		case scopeRegion:
			where = d.partition + "/" + d.account + "/" + d.region
		case scopeAccount:
			where = d.partition + "/" + d.account
		case scopePartition:
			where = d.partition
		}
		// Types that share a namespace (a SAM function is a Lambda function) are keyed by the property.
		key := fmt.Sprintf("%s %s %s=%s", where, strings.TrimPrefix(strings.TrimPrefix(r.Type, "AWS::Serverless::"), "AWS::Lambda::"), nt.prop, name)
		if other, dup := out[key]; dup {
			t.Errorf("%s and %s of one stack are both named %s", other, id, key)
		}
		out[key] = id
	}
	return out
}

// collisions deploys ds and reports every name two stacks would both claim.
func collisions(t *testing.T, tpl *Template, ds []deployment) []string {
	t.Helper()
	owner := map[string]string{}
	var bad []string
	for _, d := range ds {
		for key, id := range namesOf(t, tpl, d) {
			who := fmt.Sprintf("%s (stack %s in %s/%s)", id, d.stack, d.account, d.region)
			if prev, dup := owner[key]; dup {
				bad = append(bad, fmt.Sprintf("%s: %s and %s", key, prev, who))
				continue
			}
			owner[key] = who
		}
	}
	slices.Sort(bad)
	return bad
}

// Items 6 and 15: the same template deployed (a) by StackSets with service-managed permissions to two accounts x
// two regions, one parameter set for all, and (b) by `sam deploy` with one stack name in two regions of one
// account. No name any stack claims may be claimed by another.
func TestNoNameCollidesAcrossAccountsAndRegions(t *testing.T) {
	tpl := load(t)
	p := params(tpl, withEverything)
	var stackSets []deployment
	n := 0
	for _, account := range []string{"111111111111", "222222222222"} {
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			n++
			stackSets = append(stackSets, deployment{"aws", account, region, stackSetName("ec2-isolation", n), p})
		}
	}
	if bad := collisions(t, tpl, stackSets); len(bad) > 0 {
		t.Errorf("StackSets, 2 accounts x 2 regions: %d names collide:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	samDeploy := []deployment{
		{"aws", "111111111111", "us-east-1", "ec2-isolation", p},
		{"aws", "111111111111", "eu-west-1", "ec2-isolation", p},
	}
	if bad := collisions(t, tpl, samDeploy); len(bad) > 0 {
		t.Errorf("one stack name in two regions of one account: %d names collide:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}

// The checker itself: a name built from the stack name alone collides in two regions of one account.
func TestCollisionCheckerFindsAccountWideNames(t *testing.T) {
	tpl, err := Parse([]byte(`
Resources:
  Channel:
    Type: AWS::Chatbot::SlackChannelConfiguration
    Properties:
      ConfigurationName: !Sub ${AWS::StackName}-isolation
`))
	if err != nil {
		t.Fatal(err)
	}
	ds := []deployment{{"aws", "111111111111", "us-east-1", "s", nil}, {"aws", "111111111111", "eu-west-1", "s", nil}}
	if bad := collisions(t, tpl, ds); len(bad) != 1 {
		t.Errorf("collisions = %q, want the configuration name once", bad)
	}
}

// Item 14: every name CloudFormation checks the length of fits, for the longest NamePrefix the parameter allows
// and the longest stack name CloudFormation allows (128: StackSets' names are 47 characters and more), so a
// stack never fails late on a name. The names with a tight limit (functions: 64) are built from NamePrefix,
// whose MaxLength CloudFormation checks before it creates anything; a Rule could not: no rule function measures
// a length (Fn::And, Fn::Contains, Fn::EachMemberEquals, Fn::EachMemberIn, Fn::Equals, Fn::Not, Fn::Or,
// Fn::RefAll, Fn::ValueOf, Fn::ValueOfAll).
func TestNamePrefixBoundsEveryName(t *testing.T) {
	tpl := load(t)
	prefix := tpl.Parameters["NamePrefix"]
	maxLen, _ := prefix["MaxLength"].(int)
	if maxLen == 0 || prefix["AllowedPattern"] == nil {
		t.Fatalf("NamePrefix needs MaxLength and AllowedPattern: %v", prefix)
	}
	long := strings.Repeat("p", maxLen)
	if !regexp.MustCompile(prefix["AllowedPattern"].(string)).MatchString(long) {
		t.Fatalf("NamePrefix's pattern refuses %q", long)
	}
	p := params(tpl, withEverything)
	p["NamePrefix"] = long
	stack := "S" + strings.Repeat("t", 127)
	namesOf(t, tpl, deployment{"aws-us-gov", "111111111111", "us-gov-west-1", stack, p}) // reports names too long
	// The functions must not use the stack name: that is what made a StackSets deployment fail.
	for _, f := range tpl.Functions() {
		if s := subOf(tpl.Resources[f.LogicalID].Properties["FunctionName"]); strings.Contains(s, "AWS::StackName") {
			t.Errorf("%s FunctionName %q depends on the stack name, which nothing bounds below 128", f.LogicalID, s)
		}
	}
}

// Item 9: LogFormat JSON filters application logs at ApplicationLogLevel (default INFO): LOG_LEVEL=debug has an
// effect only if the function's ApplicationLogLevel comes from the same parameter.
func TestApplicationLogLevelFollowsLogLevel(t *testing.T) {
	tpl := load(t)
	lambdaLevels := []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	var allowed []string
	for _, v := range tpl.Parameters["LogLevel"]["AllowedValues"].([]any) {
		allowed = append(allowed, fmt.Sprint(v))
	}
	mappings, _ := tpl.Mappings["LogLevels"].(map[string]any)
	for _, v := range allowed {
		row, _ := mappings[v].(map[string]any)
		if got := row["Application"]; got != strings.ToUpper(v) || !slices.Contains(lambdaLevels, strings.ToUpper(v)) {
			t.Errorf("Mappings.LogLevels.%s.Application = %v, want %s", v, got, strings.ToUpper(v))
		}
	}
	want := map[string]any{"Fn::FindInMap": []any{"LogLevels", map[string]any{"Ref": "LogLevel"}, "Application"}}
	for _, f := range tpl.Functions() {
		props := tpl.Resources[f.LogicalID].Properties
		lc, _ := props["LoggingConfig"].(map[string]any)
		if lc["LogFormat"] != "JSON" {
			t.Errorf("%s LogFormat = %v", f.LogicalID, lc["LogFormat"])
		}
		if !jsonEqual(lc["ApplicationLogLevel"], want) {
			t.Errorf("%s ApplicationLogLevel = %v, want %v", f.LogicalID, lc["ApplicationLogLevel"], want)
		}
		// INFO keeps Lambda's START and REPORT lines (duration, memory, timeouts); WARN would drop them.
		if lc["SystemLogLevel"] != "INFO" {
			t.Errorf("%s SystemLogLevel = %v, want INFO", f.LogicalID, lc["SystemLogLevel"])
		}
		env, _ := props["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if refOf(vars["LOG_LEVEL"]) != "LogLevel" {
			t.Errorf("%s LOG_LEVEL = %v, want the LogLevel parameter", f.LogicalID, vars["LOG_LEVEL"])
		}
	}
}

// Item 10: deleting the stack keeps the evidence bucket (DeletionPolicy Retain) and must keep its policy too:
// without it the retained bucket loses TLS-only and the denial of version deletes.
func TestIncidentBucketPolicyIsRetained(t *testing.T) {
	tpl := load(t)
	for _, id := range []string{"IncidentBucket", "IncidentBucketPolicy"} {
		r := tpl.Resources[id]
		if r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain" {
			t.Errorf("%s: DeletionPolicy %q, UpdateReplacePolicy %q, want Retain and Retain", id, r.DeletionPolicy, r.UpdateReplacePolicy)
		}
	}
}

// Item 11: every role of the stack is under the path /STACK/, which the Deny statements of the roles that write
// IAM name (TestIAMWritesAreConfinedToRevocableRoles): a generated role name starts with a truncated stack name
// when the stack name is long, so a name pattern would miss them.
func TestStackRolesHaveTheStackPath(t *testing.T) {
	tpl := load(t)
	n := 0
	for _, id := range slices.Sorted(maps.Keys(tpl.Resources)) {
		r := tpl.Resources[id]
		if r.Type != "AWS::IAM::Role" {
			continue
		}
		n++
		if got := subOf(r.Properties["Path"]); got != "/${AWS::StackName}/" {
			t.Errorf("role %s Path = %v, want !Sub /${AWS::StackName}/", id, r.Properties["Path"])
		}
		if _, named := r.Properties["RoleName"]; named {
			t.Errorf("role %s has a RoleName: IAM names are account-wide, a second region or account would collide", id)
		}
	}
	if n == 0 {
		t.Fatal("no roles")
	}
	// The functions that write IAM skip the same path with a reason (internal/credentials, STACK_ROLE_PATH).
	for _, id := range []string{"RevokeCredentialsFunction", "LiftCredentialRevocationFunction"} {
		env, _ := tpl.Resources[id].Properties["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if got := subOf(vars["STACK_ROLE_PATH"]); got != "/${AWS::StackName}/" {
			t.Errorf("%s STACK_ROLE_PATH = %v, want !Sub /${AWS::StackName}/", id, vars["STACK_ROLE_PATH"])
		}
	}
}

// Item 15, the member side: the central topic and bucket are optional; when set, the notify role may publish to
// the topic (and use its key through SNS), the record role may write its own account's prefix of the bucket
// only, and the bucket comes with its region (a Rule, checked before anything is created).
func TestCentralTopicAndBucketPermissions(t *testing.T) {
	tpl := load(t)
	for _, p := range []string{"CentralTopicArn", "CentralBucketName", "CentralBucketRegion"} {
		if d := tpl.Parameters[p]["Default"]; d != "" {
			t.Errorf("parameter %s defaults to %v, want empty (optional)", p, d)
		}
	}
	rule := tpl.Rules["CentralBucketNeedsItsRegion"]
	if !jsonEqual(rule["RuleCondition"], map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "CentralBucketName"}, ""}}}}) {
		t.Errorf("rule CentralBucketNeedsItsRegion: RuleCondition %v", rule["RuleCondition"])
	}
	conditional := func(roleID, cond string) []map[string]any {
		r := tpl.Resources[roleID]
		var out []map[string]any
		for _, p := range r.Properties["Policies"].([]any) {
			doc := p.(map[string]any)["PolicyDocument"].(map[string]any)
			for _, s := range doc["Statement"].([]any) {
				m, _ := s.(map[string]any)
				if args, ok := m["Fn::If"].([]any); ok && args[0] == cond {
					st, _ := args[1].(map[string]any)
					out = append(out, st)
				}
			}
		}
		return out
	}
	notify := conditional("NotifyRole", "HasCentralTopic")
	if len(notify) != 2 || !jsonEqual(notify[0]["Resource"], map[string]any{"Ref": "CentralTopicArn"}) || notify[0]["Action"] != "sns:Publish" {
		t.Errorf("NotifyRole's central statements: %v", notify)
	}
	record := conditional("RecordIncidentRole", "HasCentralBucket")
	want := map[string]any{"Fn::Sub": "arn:${AWS::Partition}:s3:::${CentralBucketName}/incidents/${AWS::AccountId}/*"}
	if len(record) != 1 || record[0]["Action"] != "s3:PutObject" || !jsonEqual(record[0]["Resource"], want) {
		t.Errorf("RecordIncidentRole's central statements: %v, want s3:PutObject on %v", record, want)
	}
}

// Item 2, the template half: no ARN, endpoint or console host of either template assumes the aws partition.
// Every ARN is built with ${AWS::Partition}; hosts come from ${AWS::URLSuffix} or the Consoles mapping. The
// literal amazonaws.com stays only in service principals (Principal.Service, iam:PassedToService), which are not
// hosts.
func TestNoPartitionIsHardCoded(t *testing.T) {
	for _, path := range []string{"template.yaml", "organization/security-account.yaml"} {
		tpl, err := Load(root + "/" + path)
		if err != nil {
			t.Fatal(err)
		}
		var walk func(where string, v any, principal bool)
		walk = func(where string, v any, principal bool) {
			switch v := v.(type) {
			case map[string]any:
				for k, e := range v {
					// A Lambda permission's Principal is a service principal too.
					walk(where+"."+k, e, principal || k == "Service" || k == "iam:PassedToService" || k == "Principal")
				}
			case []any:
				for i, e := range v {
					walk(fmt.Sprintf("%s[%d]", where, i), e, principal)
				}
			case string:
				for _, bad := range []string{"arn:aws:", "arn:aws-cn:", "arn:aws-us-gov:", "console.aws.amazon.com"} {
					if strings.Contains(v, bad) && !strings.HasPrefix(where, ".Mappings.Consoles") {
						t.Errorf("%s %s: %q holds %q", path, where, v, bad)
					}
				}
				if strings.Contains(v, "amazonaws.com") && !principal && !strings.HasPrefix(where, ".Mappings.Consoles") {
					t.Errorf("%s %s: %q names a host with amazonaws.com: use ${AWS::URLSuffix}", path, where, v)
				}
			}
		}
		for id, r := range tpl.Resources {
			walk(".Resources."+id, r.Properties, false)
		}
		for id, o := range tpl.Outputs {
			walk(".Outputs."+id, o, false)
		}
		walk(".Mappings", tpl.Mappings, false)
	}
}
