package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Amazon EC2 Auto Scaling (awsquery, version 2011-01-01): groups of existing instances with their target
// groups. Detaching and attaching take effect at once (no Detaching/Pending states). The simulator never
// launches or terminates instances: a group detached from without decrementing stays below its desired
// capacity (AWS would launch a replacement).

var autoscalingHandlers = map[string]handler{
	"DescribeAutoScalingGroups":    describeAutoScalingGroups,
	"DescribeAutoScalingInstances": describeAutoScalingInstances,
	"DetachInstances":              detachInstances,
	"AttachInstances":              attachInstances,
}

type asGroup struct {
	name, arn         string
	min, max, desired int32
	instances         []*asInstance
	targetGroups      []string // ARNs
	created           time.Time
}

type asInstance struct {
	id, lifecycle string
	protected     bool
}

func (a *Account) groupOfInstance(id string) (*asGroup, *asInstance) {
	for _, g := range a.asGroups.all() {
		for _, in := range g.instances {
			if in.id == id {
				return g, in
			}
		}
	}
	return nil, nil
}

type xASGInstance struct {
	InstanceID           string `xml:"InstanceId"`
	InstanceType         string `xml:"InstanceType"`
	AvailabilityZone     string `xml:"AvailabilityZone"`
	LifecycleState       string `xml:"LifecycleState"`
	HealthStatus         string `xml:"HealthStatus"`
	ProtectedFromScaleIn bool   `xml:"ProtectedFromScaleIn"`
}

type xAutoScalingGroup struct {
	AutoScalingGroupName   string         `xml:"AutoScalingGroupName"`
	AutoScalingGroupARN    string         `xml:"AutoScalingGroupARN"`
	MinSize                int32          `xml:"MinSize"`
	MaxSize                int32          `xml:"MaxSize"`
	DesiredCapacity        int32          `xml:"DesiredCapacity"`
	DefaultCooldown        int32          `xml:"DefaultCooldown"`
	AvailabilityZones      []string       `xml:"AvailabilityZones>member"`
	LoadBalancerNames      []string       `xml:"LoadBalancerNames>member"`
	TargetGroupARNs        []string       `xml:"TargetGroupARNs>member"`
	HealthCheckType        string         `xml:"HealthCheckType"`
	HealthCheckGracePeriod int32          `xml:"HealthCheckGracePeriod"`
	Instances              []xASGInstance `xml:"Instances>member"`
	CreatedTime            string         `xml:"CreatedTime"`
	VPCZoneIdentifier      string         `xml:"VPCZoneIdentifier"`
}

type describeAutoScalingGroupsResult struct {
	AutoScalingGroups []xAutoScalingGroup `xml:"AutoScalingGroups>member"`
	NextToken         string              `xml:"NextToken,omitempty"`
}

type xAutoScalingInstanceDetails struct {
	InstanceID           string `xml:"InstanceId"`
	AutoScalingGroupName string `xml:"AutoScalingGroupName"`
	InstanceType         string `xml:"InstanceType"`
	AvailabilityZone     string `xml:"AvailabilityZone"`
	LifecycleState       string `xml:"LifecycleState"`
	HealthStatus         string `xml:"HealthStatus"`
	ProtectedFromScaleIn bool   `xml:"ProtectedFromScaleIn"`
}

type describeAutoScalingInstancesResult struct {
	AutoScalingInstances []xAutoScalingInstanceDetails `xml:"AutoScalingInstances>member"`
	NextToken            string                        `xml:"NextToken,omitempty"`
}

type xActivity struct {
	ActivityID           string `xml:"ActivityId"`
	AutoScalingGroupName string `xml:"AutoScalingGroupName"`
	Description          string `xml:"Description"`
	Cause                string `xml:"Cause"`
	StartTime            string `xml:"StartTime"`
	StatusCode           string `xml:"StatusCode"`
	Progress             int32  `xml:"Progress"`
	Details              string `xml:"Details"`
}

type detachInstancesResult struct {
	Activities []xActivity `xml:"Activities>member"`
}

func (a *Account) asgInstanceXML(in *asInstance) xASGInstance {
	x := xASGInstance{InstanceID: in.id, LifecycleState: in.lifecycle, HealthStatus: "Healthy", ProtectedFromScaleIn: in.protected}
	if inst := a.instances.get(in.id); inst != nil {
		x.InstanceType, x.AvailabilityZone = inst.itype, inst.az
	}
	return x
}

func (a *Account) asgXML(g *asGroup) xAutoScalingGroup {
	x := xAutoScalingGroup{AutoScalingGroupName: g.name, AutoScalingGroupARN: g.arn, MinSize: g.min, MaxSize: g.max,
		DesiredCapacity: g.desired, DefaultCooldown: 300, TargetGroupARNs: slices.Clone(g.targetGroups),
		HealthCheckType: "EC2", HealthCheckGracePeriod: 300, CreatedTime: ts(g.created)}
	var subnets []string
	for _, in := range g.instances {
		x.Instances = append(x.Instances, a.asgInstanceXML(in))
		if inst := a.instances.get(in.id); inst != nil {
			if !slices.Contains(x.AvailabilityZones, inst.az) {
				x.AvailabilityZones = append(x.AvailabilityZones, inst.az)
			}
			if inst.subnetID != "" && !slices.Contains(subnets, inst.subnetID) {
				subnets = append(subnets, inst.subnetID)
			}
		}
	}
	if len(x.AvailabilityZones) == 0 {
		x.AvailabilityZones = []string{a.region + "a"}
	}
	x.VPCZoneIdentifier = strings.Join(subnets, ",")
	return x
}

// pageToken applies Auto Scaling's MaxRecords/NextToken pagination (the token is the index of the next item).
func pageToken[T any](req *request, items []T, maxDefault, maxLimit int) ([]T, string, *apiError) {
	from := 0
	if m := req.p.str("NextToken"); m != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "asg-page-"))
		if err != nil || n < 0 || n > len(items) {
			return nil, "", errf(400, "InvalidNextToken", "The token '%s' is invalid.", m)
		}
		from = n
	}
	size := maxDefault
	if v := req.p.str("MaxRecords"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return nil, "", errf(400, "ValidationError", "1 validation error detected: Value '%s' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to %d", v, maxLimit)
		}
		size = n
	}
	to := min(from+size, len(items))
	if to < len(items) {
		return items[from:to], "asg-page-" + strconv.Itoa(to), nil
	}
	return items[from:to], "", nil
}

// describeAutoScalingGroups: names that match no group are left out, as in AWS (no error).
func describeAutoScalingGroups(a *Account, req *request) (any, *apiError) {
	names := req.p.strs("AutoScalingGroupNames", "member")
	var all []xAutoScalingGroup
	for _, g := range a.asGroups.all() {
		if len(names) > 0 && !slices.Contains(names, g.name) {
			continue
		}
		all = append(all, a.asgXML(g))
	}
	items, next, err := pageToken(req, all, 50, 100)
	if err != nil {
		return nil, err
	}
	return &describeAutoScalingGroupsResult{AutoScalingGroups: items, NextToken: next}, nil
}

// describeAutoScalingInstances: instances in no group are left out (an empty answer for an instance that is in
// no group), as in AWS.
func describeAutoScalingInstances(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("InstanceIds", "member")
	var all []xAutoScalingInstanceDetails
	for _, g := range a.asGroups.all() {
		for _, in := range g.instances {
			if len(ids) > 0 && !slices.Contains(ids, in.id) {
				continue
			}
			x := a.asgInstanceXML(in)
			all = append(all, xAutoScalingInstanceDetails{InstanceID: x.InstanceID, AutoScalingGroupName: g.name,
				InstanceType: x.InstanceType, AvailabilityZone: x.AvailabilityZone, LifecycleState: x.LifecycleState,
				HealthStatus: x.HealthStatus, ProtectedFromScaleIn: x.ProtectedFromScaleIn})
		}
	}
	items, next, err := pageToken(req, all, 50, 50)
	if err != nil {
		return nil, err
	}
	return &describeAutoScalingInstancesResult{AutoScalingInstances: items, NextToken: next}, nil
}

func (a *Account) asgParam(req *request) (*asGroup, *apiError) {
	name := req.p.str("AutoScalingGroupName")
	if name == "" {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null")
	}
	g := a.asGroups.get(name)
	if g == nil {
		return nil, errf(400, "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
	}
	return g, nil
}

// detachInstances removes instances from a group: ShouldDecrementDesiredCapacity is required; true lowers the
// desired capacity (not below the minimum), false keeps it. Each instance is deregistered from the group's target
// groups (on the target group's port: the registration the group made), as Auto Scaling does.
func detachInstances(a *Account, req *request) (any, *apiError) {
	g, err := a.asgParam(req)
	if err != nil {
		return nil, err
	}
	dec := req.p.str("ShouldDecrementDesiredCapacity")
	if dec == "" {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'shouldDecrementDesiredCapacity' failed to satisfy constraint: Member must not be null")
	}
	decrement, perr := parseBoolParam(dec, "ShouldDecrementDesiredCapacity")
	if perr != nil {
		return nil, errf(400, "ValidationError", "Invalid value %q for ShouldDecrementDesiredCapacity", dec)
	}
	ids := req.p.strs("InstanceIds", "member")
	if len(ids) == 0 {
		return nil, errf(400, "ValidationError", "The instance ID list must not be empty")
	}
	if len(ids) > 20 {
		return nil, errf(400, "ValidationError", "The number of instances must not exceed 20")
	}
	for _, id := range ids {
		in := asgMember(g, id)
		if in == nil {
			return nil, errf(400, "ValidationError", "The instance %s is not part of Auto Scaling group %s.", id, g.name)
		}
		if in.lifecycle != "InService" && in.lifecycle != "Standby" {
			return nil, errf(400, "ValidationError", "The instance %s is not in InService or Standby.", id)
		}
	}
	if decrement && g.desired-int32(len(ids)) < g.min {
		return nil, errf(400, "ValidationError", "The number of instances in the group (%d) would be less than the minimum size of the group (%d) after detaching %d instance(s) and decrementing the desired capacity.",
			g.desired, g.min, len(ids))
	}
	out := &detachInstancesResult{}
	now := a.clock.Now()
	for _, id := range ids {
		g.instances = slices.DeleteFunc(g.instances, func(in *asInstance) bool { return in.id == id })
		for _, arn := range g.targetGroups {
			if tg := a.targetGroups.get(arn); tg != nil {
				a.deregister(tg, id, tg.port)
			}
		}
		cause := fmt.Sprintf("At %s instance %s was detached in response to a user request.", now.UTC().Format(time.RFC3339), id)
		if decrement {
			cause += fmt.Sprintf(" Shrinking the capacity from %d to %d.", g.desired, g.desired-1)
			g.desired--
		}
		out.Activities = append(out.Activities, xActivity{ActivityID: uuidFrom(a.newID("act")), AutoScalingGroupName: g.name,
			Description: "Detaching EC2 instance: " + id, Cause: cause, StartTime: ts(now), StatusCode: "InProgress",
			Progress: 50, Details: fmt.Sprintf(`{"Subnet ID":"%s","Availability Zone":"%s"}`, a.instances.get(id).subnetID, a.instances.get(id).az)})
	}
	return out, nil
}

func asgMember(g *asGroup, id string) *asInstance {
	for _, in := range g.instances {
		if in.id == id {
			return in
		}
	}
	return nil
}

// attachInstances adds running instances to a group, raising the desired capacity by their number (refused
// beyond the maximum size), and registers them with the group's target groups on each target group's port.
func attachInstances(a *Account, req *request) (any, *apiError) {
	g, err := a.asgParam(req)
	if err != nil {
		return nil, err
	}
	ids := req.p.strs("InstanceIds", "member")
	if len(ids) > 20 {
		return nil, errf(400, "ValidationError", "The number of instances must not exceed 20")
	}
	for _, id := range ids {
		inst := a.instances.get(id)
		if inst == nil {
			return nil, errf(400, "ValidationError", "Instance Id not found - No managed instance found for instance ID: %s", id)
		}
		if inst.state != "running" {
			return nil, errf(400, "ValidationError", "Instance %s is not in correct state.", id)
		}
		if other, _ := a.groupOfInstance(id); other != nil {
			return nil, errf(400, "ValidationError", "The instance %s is already part of the Auto Scaling group %s.", id, other.name)
		}
	}
	if g.desired+int32(len(ids)) > g.max {
		return nil, errf(400, "ValidationError", "Cannot update group %s: the desired capacity (%d) after attaching %d instance(s) would exceed the maximum size of the group (%d).",
			g.name, g.desired, len(ids), g.max)
	}
	for _, id := range ids {
		g.instances = append(g.instances, &asInstance{id: id, lifecycle: "InService"})
		g.desired++
		for _, arn := range g.targetGroups {
			if tg := a.targetGroups.get(arn); tg != nil {
				tg.register(id, tg.port)
			}
		}
	}
	return nil, nil
}

// uuidFrom shapes an id like "act-0123456789abcdef0" into a UUID-looking activity id.
func uuidFrom(id string) string {
	h := strings.TrimPrefix(id, "act-0")
	h = (h + "00000000000000000000000000000000")[:32]
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ---- for tests (call inside Server.Update) ----

// AutoScalingGroupState is a group's capacity and members.
type AutoScalingGroupState struct {
	Name                      string
	MinSize, MaxSize, Desired int32
	Instances                 []string // ids, in attach order
	TargetGroupARNs           []string
}

// AutoScalingGroup returns a group's state (ok false when there is no such group).
func (a *Account) AutoScalingGroup(name string) (AutoScalingGroupState, bool) {
	g := a.asGroups.get(name)
	if g == nil {
		return AutoScalingGroupState{}, false
	}
	st := AutoScalingGroupState{Name: g.name, MinSize: g.min, MaxSize: g.max, Desired: g.desired,
		TargetGroupARNs: slices.Clone(g.targetGroups)}
	for _, in := range g.instances {
		st.Instances = append(st.Instances, in.id)
	}
	return st, true
}
