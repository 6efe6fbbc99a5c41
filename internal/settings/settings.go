// Package settings resolves the workflow's settings for the commands that run it from a responder's machine (run,
// release, status, preflight, record, cleanup): the flags first, then the deployed stack's outputs and parameters,
// then template.yaml's defaults; and who the caller is.
package settings

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// DefaultStack is the stack name `sam deploy` uses (samconfig.toml).
const DefaultStack = "ec2-isolation"

// Outputs and parameters of template.yaml that the local commands read.
const (
	OutputGroupName   = "IsolationSecurityGroupName"
	OutputProfileName = "IsolationInstanceProfileName"
	OutputTopicARN    = "NotificationTopicArn"
	OutputBucket      = "IncidentBucketName"
	ParamTagKey       = "IsolationTagKey"
	ParamTagValue     = "IsolationTagValue"
	ParamTracking     = "ConnectionTracking"
)

// Names are the settings the workflow's functions get from the stack.
type Names struct {
	GroupName   string `json:"groupName"`
	ProfileName string `json:"profileName"`
	TopicARN    string `json:"topicArn"`
	// IncidentBucket holds the incident records (the stack's versioned bucket).
	IncidentBucket string `json:"incidentBucket"`
	TagKey         string `json:"tagKey"`
	TagValue       string `json:"tagValue"`
	// Tracking is the connection tracking mode (secgroup.ModeDirect or ModeUntrackFirst).
	Tracking secgroup.Mode `json:"connectionTracking"`
	// Settings are the stack's other parameters, by the environment variable that carries them (e.g.
	// REVOCABLE_ROLES, KEEP_VOLUMES); those absent keep template.yaml's defaults.
	Settings map[string]string `json:"settings,omitempty"`
}

// Env is the functions' environment for these names, as template.yaml sets it.
func (n Names) Env() map[string]string {
	env := stackenv.Defaults()
	maps.Copy(env, n.Settings)
	maps.Copy(env, map[string]string{
		"TAG_KEY": n.TagKey, "TAG_VALUE": n.TagValue,
		"ISOLATION_GROUP_NAME": n.GroupName, "ISOLATION_PROFILE_NAME": n.ProfileName,
		"CONNECTION_TRACKING": string(n.Tracking), "TOPIC_ARN": n.TopicARN, "INCIDENT_BUCKET": n.IncidentBucket,
	})
	return env
}

// Complete says whether the names the workflow cannot do without are all set.
func (n Names) Complete() bool {
	return n.GroupName != "" && n.ProfileName != "" && n.TopicARN != "" && n.IncidentBucket != ""
}

// settingParams maps the stack parameters that only switch or scope a step to their environment variables.
var settingParams = map[string]string{
	"ReleaseTagValue":             "RELEASE_TAG_VALUE",
	"RevocableRoles":              "REVOCABLE_ROLES",
	"RevokeCredentials":           "REVOKE_CREDENTIALS",
	"EnableTerminationProtection": "ENABLE_TERMINATION_PROTECTION",
	"StopOnShutdown":              "STOP_ON_SHUTDOWN",
	"KeepVolumes":                 "KEEP_VOLUMES",
	"DetachFromAutoScaling":       "DETACH_AUTO_SCALING",
	"DeregisterFromTargetGroups":  "DEREGISTER_TARGETS",
}

// ErrNoStack is Resolve's error when the stack does not exist (errors.Is): the commands then look for the no-stack
// mode's resources (isolation run --create-prerequisites).
var ErrNoStack = errors.New("does not exist")

// StackAPI is the part of the CloudFormation client Resolve uses.
type StackAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, opts ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// Resolve fills what flags leaves empty from the deployed stack's outputs and parameters; it reads the stack only
// when something is missing. The stack's tag key and value and tracking mode replace defaults only where flags
// has none. It returns where the names came from ("flags" or "stack NAME").
func Resolve(ctx context.Context, api StackAPI, stack string, flags Names) (Names, string, error) {
	n := flags
	if n.Complete() && n.TagKey != "" && n.TagValue != "" && n.Tracking != "" {
		return n, "flags", nil
	}
	out, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		if n.Complete() {
			// Only defaults were missing.
			return withDefaults(n), "flags", nil
		}
		if steperr.Code(err) == "ValidationError" && strings.Contains(err.Error(), "does not exist") {
			return n, "", fmt.Errorf("stack %s %w in this account and region: deploy it, or pass --group-name, --profile-name, --topic-arn and --incident-bucket", stack, ErrNoStack)
		}
		return n, "", fmt.Errorf("read the outputs of stack %s (cloudformation:DescribeStacks): %w", stack, err)
	}
	if len(out.Stacks) == 0 {
		return n, "", fmt.Errorf("stack %s not found", stack)
	}
	st := out.Stacks[0]
	outputs := map[string]string{}
	for _, o := range st.Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	params := map[string]string{}
	for _, p := range st.Parameters {
		params[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	fill := func(v *string, from string) {
		if *v == "" {
			*v = from
		}
	}
	fill(&n.GroupName, outputs[OutputGroupName])
	fill(&n.ProfileName, outputs[OutputProfileName])
	fill(&n.TopicARN, outputs[OutputTopicARN])
	fill(&n.IncidentBucket, outputs[OutputBucket])
	for param, env := range settingParams {
		if v, ok := params[param]; ok {
			if n.Settings == nil {
				n.Settings = map[string]string{}
			}
			if _, set := n.Settings[env]; !set {
				n.Settings[env] = v
			}
		}
	}
	fill(&n.TagKey, params[ParamTagKey])
	fill(&n.TagValue, params[ParamTagValue])
	if n.Tracking == "" {
		n.Tracking = secgroup.Mode(params[ParamTracking])
	}
	n = withDefaults(n)
	if !n.Complete() {
		var missing []string
		for k, v := range map[string]string{OutputGroupName: n.GroupName, OutputProfileName: n.ProfileName, OutputTopicARN: n.TopicARN, OutputBucket: n.IncidentBucket} {
			if v == "" {
				missing = append(missing, k)
			}
		}
		return n, "", fmt.Errorf("stack %s (%s) lacks the outputs %s: pass them as flags", stack, st.StackStatus, strings.Join(missing, ", "))
	}
	return n, "stack " + stack, nil
}

// Defaults of template.yaml's parameters.
const (
	DefaultTagKey   = "Isolate"
	DefaultTagValue = "true"
)

func withDefaults(n Names) Names {
	if n.TagKey == "" {
		n.TagKey = DefaultTagKey
	}
	if n.TagValue == "" {
		n.TagValue = DefaultTagValue
	}
	if n.Tracking == "" {
		n.Tracking = secgroup.ModeDirect
	}
	return n
}

// IdentityAPI is the part of the STS client Identify uses.
type IdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Identity is who the configured credentials are.
type Identity struct {
	Account string `json:"account"`
	ARN     string `json:"arn"`
	// Partition of the ARN: aws, aws-cn, aws-us-gov.
	Partition string `json:"partition"`
}

// Identify asks STS who the caller is.
func Identify(ctx context.Context, api IdentityAPI) (Identity, error) {
	out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("who am I (sts:GetCallerIdentity): %w", err)
	}
	id := Identity{Account: aws.ToString(out.Account), ARN: aws.ToString(out.Arn), Partition: "aws"}
	if parts := strings.SplitN(id.ARN, ":", 3); len(parts) == 3 && parts[0] == "arn" && parts[1] != "" {
		id.Partition = parts[1]
	}
	if id.Account == "" {
		return id, errors.New("sts:GetCallerIdentity returned no account")
	}
	return id, nil
}
