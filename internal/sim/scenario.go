package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Scenario seeds the simulated account. It is also the JSON scenario file read by LoadScenario (see
// docs/scenario.md and testdata/scenario.json). In the file, durations are Go duration strings ("200ms", "2s")
// and an unknown field anywhere is an error.
//
//	{
//	  "account": "123456789012", "region": "us-east-1",
//	  "vpcs": [{"id": "vpc-0a1", "cidr": "10.0.0.0/16", "ipv6Cidr": "2600:1f18::/56"}],
//	  "subnets": [{"id": "subnet-0a1", "vpcId": "vpc-0a1", "availabilityZone": "us-east-1a", "cidr": "10.0.1.0/24"}],
//	  "securityGroups": [{"id": "sg-0a1", "vpcId": "vpc-0a1", "name": "web", "description": "web tier",
//	      "ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidr": "203.0.113.0/24"}],
//	      "egress": [{"protocol": "-1", "cidr": "0.0.0.0/0"}]}],
//	  "instanceProfiles": [{"name": "web", "role": "web-role"},
//	      {"name": "isolation", "role": "isolation-role", "visibleAfter": "2s"}],
//	  "instances": [{"id": "i-0123456789abcdef0", "subnetId": "subnet-0a1", "profile": "web",
//	      "networkInterfaces": [{"id": "eni-0a1", "subnetId": "subnet-0a1", "deviceIndex": 0, "groups": ["sg-0a1"]}],
//	      "volumes": [{"id": "vol-0a1", "deviceName": "/dev/xvda", "sizeGiB": 8, "deleteOnTermination": true}]}],
//	  "roles": [{"name": "web-role", "path": "/", "inlinePolicies": {"data": {"Version": "2012-10-17", "Statement": [...]}},
//	      "attachedPolicies": ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]}],
//	  "targetGroups": [{"name": "web", "vpcId": "vpc-0a1", "port": 443, "targets": [{"id": "i-0123456789abcdef0"}]}],
//	  "autoScalingGroups": [{"name": "web-asg", "minSize": 1, "maxSize": 3, "desiredCapacity": 1,
//	      "instances": [{"id": "i-0123456789abcdef0"}], "targetGroupArns": ["web"]}],
//	  "buckets": [{"name": "incidents-123456789012", "versioning": true}],
//	  "topics": [{"name": "isolation"}],
//	  "behaviour": {"associationSettle": "300ms", "groupVisibilityDelay": "200ms", "snapshotCompleteAfter": "1s",
//	      "targetDeregistrationDelay": "300ms"},
//	  "faults": {"latency": {"default": "5ms"}, "tokenBuckets": {"enabled": true},
//	      "errors": [{"action": "ModifyNetworkInterfaceAttribute", "code": "InternalError", "status": 500, "firstCalls": 1}]}
//	}
type Scenario struct {
	Account          string             `json:"account"` // default 123456789012
	Region           string             `json:"region"`  // default us-east-1
	VPCs             []VPC              `json:"vpcs"`
	Subnets          []Subnet           `json:"subnets"`
	SecurityGroups   []SecurityGroup    `json:"securityGroups"`
	InstanceProfiles []InstanceProfile  `json:"instanceProfiles"`
	Instances        []Instance         `json:"instances"`
	Topics           []Topic            `json:"topics"`
	Roles            []Role             `json:"roles,omitempty"`
	Buckets          []S3Bucket         `json:"buckets,omitempty"`
	TargetGroups     []TargetGroup      `json:"targetGroups,omitempty"`
	AutoScaling      []AutoScalingGroup `json:"autoScalingGroups,omitempty"`
	Behaviour        Behaviour          `json:"behaviour"`
	Faults           Faults             `json:"faults"`
	// Organization is the AWS Organizations id (o-...) of the account, "" for none (issue 13, item 15).
	Organization string `json:"organization,omitempty"`
	// Callers are the principals of other accounts that call this one, by access key id (AWSConfig's caller),
	// with their account and organization: what resource policies see. Any other access key is this account's.
	Callers map[string]Caller `json:"callers,omitempty"`
	// Queues are the SQS standard queues (issue 16: the evidence queue), sqs.go.
	Queues []Queue `json:"queues,omitempty"`
}

// VPC of the scenario. Every VPC also gets its "default" security group (as in AWS) unless the scenario
// declares a group named "default" in it.
type VPC struct {
	ID       string            `json:"id"`
	CIDR     string            `json:"cidr"`
	IPv6CIDR string            `json:"ipv6Cidr,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
}

// Subnet of a VPC.
type Subnet struct {
	ID               string            `json:"id"`
	VpcID            string            `json:"vpcId"`
	AvailabilityZone string            `json:"availabilityZone"` // default <region>a
	CIDR             string            `json:"cidr"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// SecurityGroup of a VPC. Ingress and Egress nil means AWS's defaults for a new group: no ingress, and egress
// to all destinations (0.0.0.0/0, plus ::/0 when the VPC has an IPv6 CIDR). An empty, non-nil list means none.
type SecurityGroup struct {
	ID          string            `json:"id"`
	VpcID       string            `json:"vpcId"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Ingress     []Rule            `json:"ingress"`
	Egress      []Rule            `json:"egress"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// Rule is one security group rule: a protocol ("-1" = all, "tcp", "udp", "icmp", or a number), a port range
// (ignored for "-1") and exactly one peer: an IPv4 CIDR, an IPv6 CIDR, a security group or a prefix list.
type Rule struct {
	Protocol string `json:"protocol"`
	FromPort int32  `json:"fromPort,omitempty"`
	ToPort   int32  `json:"toPort,omitempty"`
	CIDR     string `json:"cidr,omitempty"`
	IPv6CIDR string `json:"ipv6Cidr,omitempty"`
	GroupID  string `json:"groupId,omitempty"`
	// PrefixListID is a managed prefix list (pl-…) as the peer
	// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_PrefixListId.html). The simulated account has
	// no prefix list resources: any well-formed id is accepted.
	PrefixListID string `json:"prefixListId,omitempty"`
	Description  string `json:"description,omitempty"`
}

// InstanceProfile is an IAM instance profile EC2 can associate. VisibleAfter models IAM's eventual consistency:
// until that long after the server starts, EC2 rejects the profile as if it did not exist.
type InstanceProfile struct {
	Name         string        `json:"name"`
	ARN          string        `json:"arn,omitempty"` // default arn:aws:iam::<account>:instance-profile/<name>
	Role         string        `json:"role,omitempty"`
	VisibleAfter time.Duration `json:"visibleAfter,omitempty"`
}

// Instance of the scenario.
type Instance struct {
	ID    string `json:"id"`
	State string `json:"state,omitempty"` // pending | running (default) | stopping | stopped | shutting-down | terminated
	// SubnetID empty and no NetworkInterfaces: the instance is in no VPC (EC2-Classic). With a SubnetID and no
	// NetworkInterfaces the instance gets one primary ENI in that subnet with the VPC's default group.
	SubnetID string `json:"subnetId,omitempty"`
	// Profile names an InstanceProfile; the instance starts with an association in AssociationState.
	Profile          string `json:"profile,omitempty"`
	AssociationState string `json:"associationState,omitempty"` // associated (default) | associating
	// DisableAPITermination is termination protection.
	DisableAPITermination bool `json:"disableApiTermination,omitempty"`
	// InstanceLifecycle is "spot" for a Spot Instance (DescribeInstances' instanceLifecycle), empty for On-Demand.
	// EC2 refuses termination protection for Spot Instances.
	InstanceLifecycle string             `json:"instanceLifecycle,omitempty"`
	ShutdownBehavior  string             `json:"shutdownBehavior,omitempty"` // stop (default) | terminate
	InstanceType      string             `json:"instanceType,omitempty"`     // default t3.micro
	ImageID           string             `json:"imageId,omitempty"`          // default ami-0abcdef1234567890
	Tags              map[string]string  `json:"tags,omitempty"`
	NetworkInterfaces []NetworkInterface `json:"networkInterfaces,omitempty"`
	Volumes           []Volume           `json:"volumes,omitempty"`
}

// NetworkInterface attached to an instance. Its subnet may be in another VPC of the same Availability Zone
// (multi-VPC ENI attachment).
type NetworkInterface struct {
	ID          string   `json:"id"`
	SubnetID    string   `json:"subnetId"`
	DeviceIndex int32    `json:"deviceIndex"`
	Groups      []string `json:"groups"`
	PrivateIP   string   `json:"privateIp,omitempty"`
	// RequesterManaged marks an interface an AWS service created and manages (an ECS awsvpc task's, issue 13
	// item 4): its security groups cannot be changed (see modifyNetworkInterfaceAttribute). RequesterID is that
	// service's principal, e.g. "ecs.amazonaws.com".
	RequesterManaged bool   `json:"requesterManaged,omitempty"`
	RequesterID      string `json:"requesterId,omitempty"`
	// InterfaceType is "interface" (default), "efa", "trunk", …: reported as DescribeInstances and
	// DescribeNetworkInterfaces report it.
	InterfaceType string `json:"interfaceType,omitempty"`
}

// Volume is an EBS volume attached to an instance. The first volume is the root (boot) volume.
type Volume struct {
	ID                  string            `json:"id"`
	DeviceName          string            `json:"deviceName"`
	SizeGiB             int32             `json:"sizeGiB,omitempty"` // default 8
	DeleteOnTermination bool              `json:"deleteOnTermination,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
}

// Topic is an SNS topic: arn:aws:sns:<region>:<account>:<name>.
type Topic struct {
	Name string `json:"name"`
	// Policy is the topic's access policy (resource policy; see resourcepolicy.go), "" for none.
	Policy PolicyDocument `json:"policy,omitempty"`
}

// Role is an IAM role. A role an instance profile names but the scenario does not declare exists with path "/"
// and no policies.
type Role struct {
	Name string `json:"name"`
	Path string `json:"path,omitempty"` // default "/"; ARN arn:aws:iam::<account>:role<path><name>
	// AssumeRolePolicyDocument: default, EC2 may assume the role.
	AssumeRolePolicyDocument PolicyDocument `json:"assumeRolePolicyDocument,omitempty"`
	// InlinePolicies: policy name -> document.
	InlinePolicies map[string]PolicyDocument `json:"inlinePolicies,omitempty"`
	// AttachedPolicies: managed policy ARNs (arn:aws:iam::aws:policy/ReadOnlyAccess).
	AttachedPolicies []string `json:"attachedPolicies,omitempty"`
}

// PolicyDocument is an IAM policy's JSON text. In a scenario file it may be written as a JSON object or as a
// string holding the JSON.
type PolicyDocument string

func (d *PolicyDocument) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*d = PolicyDocument(s)
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	*d = PolicyDocument(buf.String())
	return nil
}

// TargetGroup is an ELBv2 target group of instance targets.
type TargetGroup struct {
	Name       string   `json:"name"`
	ARN        string   `json:"arn,omitempty"` // default arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<16 hex>
	VpcID      string   `json:"vpcId"`
	Port       int32    `json:"port"`
	Protocol   string   `json:"protocol,omitempty"`   // default HTTP
	TargetType string   `json:"targetType,omitempty"` // instance (default; the only type simulated)
	Targets    []Target `json:"targets,omitempty"`
}

// Target is a registered instance target; Port 0 means the target group's port.
type Target struct {
	ID   string `json:"id"`
	Port int32  `json:"port,omitempty"`
}

// AutoScalingGroup is an Auto Scaling group of scenario instances.
type AutoScalingGroup struct {
	Name            string                `json:"name"`
	MinSize         int32                 `json:"minSize"`
	MaxSize         int32                 `json:"maxSize"`
	DesiredCapacity int32                 `json:"desiredCapacity"`
	Instances       []AutoScalingInstance `json:"instances,omitempty"`
	// TargetGroupARNs: ARNs, or names, of the scenario's target groups. The group registers nothing by itself
	// at start: list the targets in the target groups.
	TargetGroupARNs []string `json:"targetGroupArns,omitempty"`
}

// AutoScalingInstance is a member of an Auto Scaling group.
type AutoScalingInstance struct {
	ID                   string `json:"id"`
	LifecycleState       string `json:"lifecycleState,omitempty"` // InService (default) | Standby | Pending | Terminating ...
	ProtectedFromScaleIn bool   `json:"protectedFromScaleIn,omitempty"`
}

// S3Bucket is an S3 bucket of the account (path-style addressing only).
type S3Bucket struct {
	Name       string `json:"name"`
	Versioning bool   `json:"versioning,omitempty"` // versioning Enabled; otherwise never enabled
	// Policy is the bucket policy (see resourcepolicy.go), "" for none.
	Policy PolicyDocument `json:"policy,omitempty"`
}

// Behaviour sets the delays of AWS's asynchronous and eventually consistent behaviours.
type Behaviour struct {
	// AssociationSettle: associating -> associated and disassociating -> disassociated after this long.
	AssociationSettle time.Duration `json:"associationSettle,omitempty"`
	// GroupVisibilityDelay: a new security group is invisible to Describe and unknown to every action for this long.
	GroupVisibilityDelay time.Duration `json:"groupVisibilityDelay,omitempty"`
	// SnapshotCompleteAfter: a snapshot is pending for this long, then completed.
	SnapshotCompleteAfter time.Duration `json:"snapshotCompleteAfter,omitempty"`
	// TargetDeregistrationDelay: a deregistered target drains this long, then is gone (0: gone at once).
	TargetDeregistrationDelay time.Duration `json:"targetDeregistrationDelay,omitempty"`
}

// Faults injected into the API: latency, EC2 request throttling and errors.
type Faults struct {
	Latency      Latency      `json:"latency,omitempty"`
	TokenBuckets TokenBuckets `json:"tokenBuckets,omitempty"`
	Errors       []ErrorFault `json:"errors,omitempty"`
	// Seed makes the random draws of Errors[].Rate reproducible (0: a fixed default seed).
	Seed uint64 `json:"seed,omitempty"`
	// Keyed draws each Rate from the seed, the rule, the caller, the action and how many matching calls that
	// caller made of that action before, instead of from one sequence shared by all calls: concurrent callers
	// then meet the same faults whatever order their calls arrive in.
	Keyed bool `json:"keyed,omitempty"`
}

// Latency delays every answer by Default, or by Actions[action] for that action.
type Latency struct {
	Default time.Duration            `json:"default,omitempty"`
	Actions map[string]time.Duration `json:"actions,omitempty"`
}

// TokenBuckets is EC2's request rate limiting (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html):
// each EC2 action has its own bucket; a request takes one token or is refused with RequestLimitExceeded.
// By default the bucket sizes are the documented ones (non-mutating 100/20 per second, unfiltered and
// unpaginated Describe 50/10, mutating 50/5, and the uncategorized actions' own sizes such as
// ModifyNetworkInterfaceAttribute 100/5, CreateTags 100/10). Mutating and NonMutating, when set, replace the
// sizes of every action of that category; Actions replaces one action's. Shared puts all actions of a category
// into one bucket instead of one per action.
type TokenBuckets struct {
	Enabled     bool              `json:"enabled"`
	Mutating    Bucket            `json:"mutating,omitempty"`
	NonMutating Bucket            `json:"nonMutating,omitempty"`
	Actions     map[string]Bucket `json:"actions,omitempty"`
	Shared      bool              `json:"shared,omitempty"`
}

// Bucket is a token bucket: Capacity tokens at most, refilled at RefillPerSecond. Zero Capacity means "not set".
type Bucket struct {
	Capacity        float64 `json:"capacity"`
	RefillPerSecond float64 `json:"refillPerSecond"`
}

// ErrorFault injects an error answer into the calls it matches.
type ErrorFault struct {
	Action  string `json:"action"`            // action name, or "*" / "" for every action
	Service string `json:"service,omitempty"` // "ec2" | "sns" | "s3" | "iam" | "autoscaling" | "elasticloadbalancing" | "sqs" | "" (all)
	Caller  string `json:"caller,omitempty"`  // access key id, "" for any
	Code    string `json:"code"`              // e.g. InternalError, Unavailable, RequestLimitExceeded
	Status  int    `json:"status,omitempty"`  // HTTP status; default 500 for InternalError/Unavailable-like codes, else 400
	Message string `json:"message,omitempty"`
	// Rate is the probability (0..1) that a matching call fails; 0 with FirstCalls and Count both 0 means always.
	Rate float64 `json:"rate,omitempty"`
	// FirstCalls fails the first N calls of each matching (caller, action), then lets the rest through.
	FirstCalls int `json:"firstCalls,omitempty"`
	// Count caps the number of injections of this fault (0 = unlimited).
	Count int `json:"count,omitempty"`
	// Timeout, when positive, makes a matching call time out instead of answering Code (which may then be
	// empty): the server sends no answer, holds the request for Timeout (the simulator's time) or until the
	// client gives up, then closes the connection. A client whose per-attempt timeout is shorter sees its own
	// timeout; one whose timeout is longer sees the connection closed.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Applied (with Timeout) carries the action out before withholding the answer: the change is made but the
	// client never learns it, as when a response is lost. Without it the action is not carried out.
	Applied bool `json:"applied,omitempty"`
}

// LoadScenario reads a JSON scenario file strictly: an unknown field or a malformed duration is an error, and
// the scenario must be consistent (see Scenario).
func LoadScenario(path string) (Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := ParseScenario(data)
	if err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

// ParseScenario decodes a JSON scenario strictly (as LoadScenario) and validates it.
func ParseScenario(data []byte) (Scenario, error) {
	var sc Scenario
	if err := strictDecode(data, &sc); err != nil {
		return Scenario{}, err
	}
	if err := sc.validate(); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the scenario object")
	}
	return nil
}

// duration decodes a Go duration string.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"200ms\": %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// The types with time.Duration fields decode them from duration strings; their other fields decode strictly.

func (p *InstanceProfile) UnmarshalJSON(b []byte) error {
	type plain InstanceProfile
	var v struct {
		plain
		VisibleAfter duration `json:"visibleAfter"`
	}
	if err := strictDecode(b, &v); err != nil {
		return fmt.Errorf("instance profile: %w", err)
	}
	*p = InstanceProfile(v.plain)
	p.VisibleAfter = time.Duration(v.VisibleAfter)
	return nil
}

func (p InstanceProfile) MarshalJSON() ([]byte, error) {
	type plain InstanceProfile
	return json.Marshal(struct {
		plain
		VisibleAfter duration `json:"visibleAfter,omitempty"`
	}{plain(p), duration(p.VisibleAfter)})
}

func (bh *Behaviour) UnmarshalJSON(b []byte) error {
	var v struct {
		AssociationSettle         duration `json:"associationSettle"`
		GroupVisibilityDelay      duration `json:"groupVisibilityDelay"`
		SnapshotCompleteAfter     duration `json:"snapshotCompleteAfter"`
		TargetDeregistrationDelay duration `json:"targetDeregistrationDelay"`
	}
	if err := strictDecode(b, &v); err != nil {
		return fmt.Errorf("behaviour: %w", err)
	}
	*bh = Behaviour{time.Duration(v.AssociationSettle), time.Duration(v.GroupVisibilityDelay), time.Duration(v.SnapshotCompleteAfter),
		time.Duration(v.TargetDeregistrationDelay)}
	return nil
}

func (bh Behaviour) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AssociationSettle         duration `json:"associationSettle"`
		GroupVisibilityDelay      duration `json:"groupVisibilityDelay"`
		SnapshotCompleteAfter     duration `json:"snapshotCompleteAfter"`
		TargetDeregistrationDelay duration `json:"targetDeregistrationDelay,omitempty"`
	}{duration(bh.AssociationSettle), duration(bh.GroupVisibilityDelay), duration(bh.SnapshotCompleteAfter),
		duration(bh.TargetDeregistrationDelay)})
}

func (l *Latency) UnmarshalJSON(b []byte) error {
	var v struct {
		Default duration            `json:"default"`
		Actions map[string]duration `json:"actions"`
	}
	if err := strictDecode(b, &v); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	*l = Latency{Default: time.Duration(v.Default)}
	if v.Actions != nil {
		l.Actions = map[string]time.Duration{}
		for k, d := range v.Actions {
			l.Actions[k] = time.Duration(d)
		}
	}
	return nil
}

func (l Latency) MarshalJSON() ([]byte, error) {
	acts := map[string]duration{}
	for k, d := range l.Actions {
		acts[k] = duration(d)
	}
	return json.Marshal(struct {
		Default duration            `json:"default"`
		Actions map[string]duration `json:"actions,omitempty"`
	}{duration(l.Default), acts})
}

// The types holding the ones above decode strictly too: a custom UnmarshalJSON inside would otherwise not see
// the outer decoder's DisallowUnknownFields.

func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	var v plain
	if err := strictDecode(b, &v); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	*f = Faults(v)
	return nil
}

func (e *ErrorFault) UnmarshalJSON(b []byte) error {
	type plain ErrorFault
	var v struct {
		plain
		Timeout duration `json:"timeout"`
	}
	if err := strictDecode(b, &v); err != nil {
		return fmt.Errorf("error fault: %w", err)
	}
	*e = ErrorFault(v.plain)
	e.Timeout = time.Duration(v.Timeout)
	return nil
}

func (e ErrorFault) MarshalJSON() ([]byte, error) {
	type plain ErrorFault
	return json.Marshal(struct {
		plain
		Timeout duration `json:"timeout,omitempty"`
	}{plain(e), duration(e.Timeout)})
}

func (t *TokenBuckets) UnmarshalJSON(b []byte) error {
	type plain TokenBuckets
	var v plain
	if err := strictDecode(b, &v); err != nil {
		return fmt.Errorf("tokenBuckets: %w", err)
	}
	*t = TokenBuckets(v)
	return nil
}

func (in *Instance) UnmarshalJSON(b []byte) error {
	type plain Instance
	var v plain
	if err := strictDecode(b, &v); err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	*in = Instance(v)
	return nil
}
