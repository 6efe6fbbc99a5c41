package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Elastic Load Balancing v2 (awsquery, version 2015-12-01, signing name elasticloadbalancing): target groups of
// instance targets. A registered target is healthy at once. A deregistered target drains for
// Behaviour.TargetDeregistrationDelay (state draining, reason Target.DeregistrationInProgress), then is gone;
// with no delay it is gone at once. A target is an (instance id, port) pair: a port not given means the target
// group's port, as in ELB.

var elbv2Handlers = map[string]handler{
	"DescribeTargetGroups": describeTargetGroups,
	"DescribeTargetHealth": describeTargetHealth,
	"RegisterTargets":      registerTargets,
	"DeregisterTargets":    deregisterTargets,
}

type targetGroup struct {
	name, arn, vpcID, protocol, targetType string
	port                                   int32
	targets                                []*target
}

type target struct {
	id         string
	port       int32
	drainUntil time.Time // zero while registered
}

func (t *target) draining() bool { return !t.drainUntil.IsZero() }

func targetGroupARN(region, account, name string) string {
	return fmt.Sprintf("arn:%s:elasticloadbalancing:%s:%s:targetgroup/%s/%s", Partition(region), region, account, name,
		derivedID("", "tg/"+name)[2:18])
}

// tickTargets forgets the targets whose draining is over.
func (a *Account) tickTargets(now time.Time) {
	for _, tg := range a.targetGroups.all() {
		tg.targets = slices.DeleteFunc(tg.targets, func(t *target) bool { return t.draining() && !now.Before(t.drainUntil) })
	}
}

func (tg *targetGroup) find(id string, port int32) *target {
	for _, t := range tg.targets {
		if t.id == id && t.port == port {
			return t
		}
	}
	return nil
}

// register adds or revives the target (id, port).
func (tg *targetGroup) register(id string, port int32) {
	if t := tg.find(id, port); t != nil {
		t.drainUntil = time.Time{}
		return
	}
	tg.targets = append(tg.targets, &target{id: id, port: port})
}

// deregister starts draining (id, port); nothing happens when it is not registered.
func (a *Account) deregister(tg *targetGroup, id string, port int32) {
	t := tg.find(id, port)
	if t == nil || t.draining() {
		return
	}
	if a.Behaviour.TargetDeregistrationDelay <= 0 {
		tg.targets = slices.DeleteFunc(tg.targets, func(x *target) bool { return x == t })
		return
	}
	t.drainUntil = a.clock.Now().Add(a.Behaviour.TargetDeregistrationDelay)
}

type xTargetGroup struct {
	TargetGroupArn             string   `xml:"TargetGroupArn"`
	TargetGroupName            string   `xml:"TargetGroupName"`
	Protocol                   string   `xml:"Protocol"`
	Port                       int32    `xml:"Port"`
	VpcID                      string   `xml:"VpcId"`
	HealthCheckProtocol        string   `xml:"HealthCheckProtocol"`
	HealthCheckPort            string   `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool     `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int      `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int      `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int      `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int      `xml:"UnhealthyThresholdCount"`
	TargetType                 string   `xml:"TargetType"`
	IPAddressType              string   `xml:"IpAddressType"`
	LoadBalancerArns           []string `xml:"LoadBalancerArns>member"`
}

type describeTargetGroupsResult struct {
	TargetGroups []xTargetGroup `xml:"TargetGroups>member"`
	NextMarker   string         `xml:"NextMarker,omitempty"`
}

type xTargetDescription struct {
	ID   string `xml:"Id"`
	Port int32  `xml:"Port"`
}

type xTargetHealth struct {
	State       string `xml:"State"`
	Reason      string `xml:"Reason,omitempty"`
	Description string `xml:"Description,omitempty"`
}

type xTargetHealthDescription struct {
	Target          xTargetDescription `xml:"Target"`
	HealthCheckPort string             `xml:"HealthCheckPort"`
	TargetHealth    xTargetHealth      `xml:"TargetHealth"`
}

type describeTargetHealthResult struct {
	TargetHealthDescriptions []xTargetHealthDescription `xml:"TargetHealthDescriptions>member"`
}

func (tg *targetGroup) xml() xTargetGroup {
	return xTargetGroup{TargetGroupArn: tg.arn, TargetGroupName: tg.name, Protocol: tg.protocol, Port: tg.port,
		VpcID: tg.vpcID, HealthCheckProtocol: tg.protocol, HealthCheckPort: "traffic-port", HealthCheckEnabled: true,
		HealthCheckIntervalSeconds: 30, HealthCheckTimeoutSeconds: 5, HealthyThresholdCount: 5, UnhealthyThresholdCount: 2,
		TargetType: tg.targetType, IPAddressType: "ipv4"}
}

func describeTargetGroups(a *Account, req *request) (any, *apiError) {
	arns := req.p.strs("TargetGroupArns", "member")
	names := req.p.strs("Names", "member")
	if len(arns) > 0 && len(names) > 0 {
		return nil, errf(400, "ValidationError", "Target group names and target group ARNs cannot be specified at the same time")
	}
	var all []*targetGroup
	switch {
	case len(arns) > 0:
		for _, arn := range arns {
			tg := a.targetGroups.get(arn)
			if tg == nil {
				return nil, errf(400, "TargetGroupNotFound", "One or more target groups not found")
			}
			all = append(all, tg)
		}
	case len(names) > 0:
		for _, n := range names {
			i := slices.IndexFunc(a.targetGroups.all(), func(tg *targetGroup) bool { return tg.name == n })
			if i < 0 {
				return nil, errf(400, "TargetGroupNotFound", "One or more target groups not found")
			}
			all = append(all, a.targetGroups.all()[i])
		}
	default:
		all = a.targetGroups.all()
	}
	size := 400
	if v := req.p.str("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 400 {
			return nil, errf(400, "ValidationError", "1 validation error detected: Value '%s' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 400", v)
		}
		size = n
	}
	from := 0
	if m := req.p.str("Marker"); m != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "tg-page-"))
		if err != nil || n < 0 || n > len(all) {
			return nil, errf(400, "ValidationError", "Invalid marker")
		}
		from = n
	}
	to := min(from+size, len(all))
	out := &describeTargetGroupsResult{}
	for _, tg := range all[from:to] {
		out.TargetGroups = append(out.TargetGroups, tg.xml())
	}
	if to < len(all) {
		out.NextMarker = "tg-page-" + strconv.Itoa(to)
	}
	return out, nil
}

func (a *Account) targetGroupParam(req *request) (*targetGroup, *apiError) {
	arn := req.p.str("TargetGroupArn")
	if arn == "" {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'targetGroupArn' failed to satisfy constraint: Member must not be null")
	}
	tg := a.targetGroups.get(arn)
	if tg == nil {
		return nil, errf(400, "TargetGroupNotFound", "Target groups '%s' not found", arn)
	}
	return tg, nil
}

// targetsParam reads Targets.member.N.Id/Port; a port not given is the group's.
func targetsParam(req *request, tg *targetGroup, required bool) ([]xTargetDescription, *apiError) {
	var out []xTargetDescription
	for _, m := range req.p.list("Targets", "member") {
		t := xTargetDescription{ID: m.str("Id"), Port: tg.port}
		if t.ID == "" {
			return nil, errf(400, "ValidationError", "A target ID must be specified")
		}
		if p := m.str("Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, errf(400, "ValidationError", "1 validation error detected: Value '%s' at 'targets.member.port' failed to satisfy constraint: Member must have value between 1 and 65535", p)
			}
			t.Port = int32(n)
		}
		out = append(out, t)
	}
	if required && len(out) == 0 {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null")
	}
	return out, nil
}

// checkInstanceTargets refuses ids that are not instances of the account, or (to register) not running or not
// in the group's VPC: ELB's InvalidTarget.
func (a *Account) checkInstanceTargets(tg *targetGroup, ts []xTargetDescription, registering bool) *apiError {
	for _, t := range ts {
		inst := a.instances.get(t.ID)
		if inst == nil {
			return errf(400, "InvalidTarget", "The following targets are not valid instances: '%s'", t.ID)
		}
		if !registering {
			continue
		}
		if inst.state != "running" {
			return errf(400, "InvalidTarget", "The following targets are not in a running state and cannot be registered: '%s'", t.ID)
		}
		if !slices.ContainsFunc(a.instanceENIs(t.ID), func(e *eni) bool { return e.vpcID == tg.vpcID }) {
			return errf(400, "InvalidTarget", "The following targets are not in the target group VPC '%s': '%s'", tg.vpcID, t.ID)
		}
	}
	return nil
}

func describeTargetHealth(a *Account, req *request) (any, *apiError) {
	tg, err := a.targetGroupParam(req)
	if err != nil {
		return nil, err
	}
	asked, err := targetsParam(req, tg, false)
	if err != nil {
		return nil, err
	}
	if err := a.checkInstanceTargets(tg, asked, false); err != nil {
		return nil, err
	}
	out := &describeTargetHealthResult{}
	describe := func(t *target) xTargetHealthDescription {
		d := xTargetHealthDescription{Target: xTargetDescription{ID: t.id, Port: t.port}, HealthCheckPort: strconv.Itoa(int(t.port)),
			TargetHealth: xTargetHealth{State: "healthy"}}
		if t.draining() {
			d.TargetHealth = xTargetHealth{State: "draining", Reason: "Target.DeregistrationInProgress",
				Description: "Target deregistration is in progress"}
		}
		return d
	}
	if len(asked) == 0 {
		for _, t := range tg.targets {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, describe(t))
		}
		return out, nil
	}
	for _, q := range asked {
		if t := tg.find(q.ID, q.Port); t != nil {
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, describe(t))
			continue
		}
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, xTargetHealthDescription{Target: q,
			HealthCheckPort: strconv.Itoa(int(q.Port)), TargetHealth: xTargetHealth{State: "unused", Reason: "Target.NotRegistered",
				Description: "Target is not registered to the target group"}})
	}
	return out, nil
}

// registerTargets is idempotent: a target already registered stays as it is; a draining one is registered again.
func registerTargets(a *Account, req *request) (any, *apiError) {
	return changeTargets(a, req, true, func(tg *targetGroup, id string, port int32) { tg.register(id, port) })
}

// deregisterTargets succeeds for a target that is not registered (ELB answers 200 and does nothing), but
// refuses an id that is not an instance.
func deregisterTargets(a *Account, req *request) (any, *apiError) {
	return changeTargets(a, req, false, func(tg *targetGroup, id string, port int32) { a.deregister(tg, id, port) })
}

// changeTargets checks the request's target group and targets (register: running instances only), then applies
// change to each target.
func changeTargets(a *Account, req *request, register bool, change func(tg *targetGroup, id string, port int32)) (any, *apiError) {
	tg, err := a.targetGroupParam(req)
	if err != nil {
		return nil, err
	}
	ts, err := targetsParam(req, tg, true)
	if err != nil {
		return nil, err
	}
	if err := a.checkInstanceTargets(tg, ts, register); err != nil {
		return nil, err
	}
	for _, t := range ts {
		change(tg, t.ID, t.Port)
	}
	return nil, nil
}

// ---- for tests (call inside Server.Update) ----

// TargetState is one target of a target group.
type TargetState struct {
	ID       string
	Port     int32
	Draining bool
}

// Targets returns the targets of a target group (by ARN or name), registered and draining, in registration order.
func (a *Account) Targets(targetGroup string) []TargetState {
	for _, tg := range a.targetGroups.all() {
		if tg.arn != targetGroup && tg.name != targetGroup {
			continue
		}
		var out []TargetState
		for _, t := range tg.targets {
			out = append(out, TargetState{ID: t.id, Port: t.port, Draining: t.draining()})
		}
		return out
	}
	return nil
}

// TargetGroupARN returns the ARN of the target group of that name ("" when there is none).
func (a *Account) TargetGroupARN(name string) string {
	for _, tg := range a.targetGroups.all() {
		if tg.name == name {
			return tg.arn
		}
	}
	return ""
}
