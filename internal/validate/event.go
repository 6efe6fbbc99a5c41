package validate

import (
	"fmt"
	"github.com/ec2-isolation/ec2-isolation/internal/partition"
	"regexp"
	"slices"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The event the EventBridge rule matches (SPEC "The isolation workflow").
const (
	eventSource       = "aws.tag"
	eventDetailType   = "Tag Change on Resource"
	eventService      = "ec2"
	eventResourceType = "instance"
)

var (
	// instanceARNPattern: arn:PARTITION:ec2:REGION:ACCOUNT:instance/ID; the id is checked separately so the
	// error can say which part is wrong.
	instanceARNPattern = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):ec2:([^:]*):([^:]*):instance/(.*)$`)
	// Instance ids are i- and 8 (older) or 17 lowercase hex digits.
	instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	accountPattern    = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern     = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]+$`)
)

// Target is the instance an event designates.
type Target struct {
	ARN, Partition, Region, Account, InstanceID string
}

// ParseEvent (also used by the release workflow, with the release value) checks that ev is a tag change of an EC2 instance in region that sets key to value, and returns
// the instance. Every refusal is a steperr.InvalidEvent that names what was wrong.
func ParseEvent(ev workflow.TagEvent, s Settings, region string) (Target, error) {
	invalid := func(format string, args ...any) (Target, error) {
		return Target{}, &steperr.InvalidEvent{Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case ev.Source != eventSource:
		return invalid("source is %q, want %q", ev.Source, eventSource)
	case ev.DetailType != eventDetailType:
		return invalid("detail-type is %q, want %q", ev.DetailType, eventDetailType)
	case ev.Detail.Service != eventService:
		return invalid("detail.service is %q, want %q", ev.Detail.Service, eventService)
	case ev.Detail.ResourceType != eventResourceType:
		return invalid("detail.resource-type is %q, want %q", ev.Detail.ResourceType, eventResourceType)
	case !accountPattern.MatchString(ev.Account):
		return invalid("account %q is not a 12-digit account id", ev.Account)
	case !regionPattern.MatchString(ev.Region):
		return invalid("region %q is not a region name", ev.Region)
	case ev.Region != region:
		return invalid("region is %s, but this stack acts in %s", ev.Region, region)
	case len(ev.Resources) != 1:
		return invalid("%d resources, want exactly one instance ARN", len(ev.Resources))
	}
	arn := ev.Resources[0]
	m := instanceARNPattern.FindStringSubmatch(arn)
	if m == nil {
		return invalid("resource %q is not an EC2 instance ARN", arn)
	}
	t := Target{ARN: arn, Partition: m[1], Region: m[2], Account: m[3], InstanceID: m[4]}
	switch {
	case t.Partition != partitionOf(region):
		return invalid("resource %s is in partition %q, but this stack acts in %q", arn, t.Partition, partitionOf(region))
	case t.Account != ev.Account:
		return invalid("resource %s is in account %q, the event in %s", arn, t.Account, ev.Account)
	case t.Region != ev.Region:
		return invalid("resource %s is in region %q, the event in %s", arn, t.Region, ev.Region)
	case !instanceIDPattern.MatchString(t.InstanceID):
		return invalid("resource %s: %q is not an instance id", arn, t.InstanceID)
	case !slices.Contains(ev.Detail.ChangedTagKeys, s.TagKey):
		return invalid("tag %s is not among the changed tag keys %q", s.TagKey, ev.Detail.ChangedTagKeys)
	}
	if v, ok := ev.Detail.Tags[s.TagKey]; !ok {
		return invalid("instance %s no longer has tag %s", t.InstanceID, s.TagKey)
	} else if v != s.TagValue {
		return invalid("tag %s of instance %s is %q, want %q", s.TagKey, t.InstanceID, v, s.TagValue)
	}
	return t, nil
}

// partitionOf is the AWS partition of a region: events of a region carry ARNs of its partition.
func partitionOf(region string) string { return partition.Of(region) }
