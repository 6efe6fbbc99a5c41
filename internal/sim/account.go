package sim

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Account is the simulated AWS account in one region. Its state is reached through the API; tests change it
// mid-run through Server.Update with the methods below, or change Faults and Behaviour directly.
type Account struct {
	// Faults take effect from the next request. Changing them resets the fault counters and the token buckets.
	Faults Faults
	// Behaviour takes effect at once (delays already running are measured from their start).
	Behaviour Behaviour

	id, region string
	clock      Clock
	start      time.Time
	ids        *rand.Rand // resource ids, separate from the fault draws so faults do not change ids

	vpcs         table[vpc]
	subnets      table[subnet]
	groups       table[secGroup]
	profiles     table[profile]
	instances    table[instance]
	enis         table[eni]
	volumes      table[volume]
	associations table[association]
	// pending are the associations that may still be associating or disassociating: tick settles only these (a
	// storm of 10,000 instances has 10,000 associations, and tick runs on every call).
	pending      []*association
	snapshots    table[snapshot]
	topics       table[topic]
	buckets      table[bucket]
	roles        table[role]
	targetGroups table[targetGroup] // by ARN
	asGroups     table[asGroup]
	tags         map[string]map[string]string // resource id -> tags
	tagged       map[tagPair]map[string]bool  // tag -> ids of the resources that carry it (setTags keeps it)
	assocOf      map[string][]string          // instance id -> its associations' ids, oldest first
	enisOf       map[string][]string          // instance id -> the ids of the ENIs attached to it (setAttachment keeps it)
	messages     []Message
	// sessions are instance role credentials handed out by InstanceCredentials (iam_eval.go), by access key id.
	sessions map[string]*instanceSession
	// organization and callers: who a request comes from, for resource policies (resourcepolicy.go).
	organization string
	callers      map[string]Caller
	// queues are the SQS queues, by name (sqs.go, issue 16).
	queues map[string]*queue
}

type vpc struct {
	id, cidr, ipv6CIDR string
}

type subnet struct {
	id, vpcID, az, cidr string
	next                netip.Addr // next private address handed out
}

type secGroup struct {
	id, vpcID, name, desc string
	ingress, egress       []*sgRule
	visibleAt             time.Time
}

type sgRule struct {
	id                  string
	egress              bool
	protocol            string
	from, to            int32
	cidr, cidr6, peerSG string
	prefixList          string
	desc                string
}

type profile struct {
	name, arn, id, role string
	visibleAt           time.Time
}

type instance struct {
	id, state, imageID, itype string
	subnetID, vpcID, az       string
	disableAPITermination     bool
	lifecycle                 string // "spot" or empty (On-Demand)
	shutdown                  string
	launch                    time.Time
	bdms                      []*bdm
	stateReason               string
}

type bdm struct {
	device, volumeID    string
	deleteOnTermination bool
	attached            time.Time
}

type eni struct {
	id, subnetID, vpcID, az, ip, mac string
	groups                           []string
	att                              *eniAttachment
	// Issue 13 item 4 (scenario NetworkInterface).
	requesterManaged       bool
	requesterID, ifaceType string
}

type eniAttachment struct {
	id, instanceID      string
	deviceIndex         int32
	deleteOnTermination bool
	attached            time.Time
}

type volume struct {
	id, az     string
	size       int32
	created    time.Time
	instanceID string // "" when available
}

type association struct {
	id, instanceID string
	profile        *profile
	state          string
	changed        time.Time // last state change, for the settle delay
	timestamp      time.Time
}

type snapshot struct {
	id, volumeID, desc string
	size               int32
	start              time.Time
}

type topic struct {
	arn, name string
	attrs     map[string]string
	policy    []resourceStatement
}

// table is a map that remembers insertion order, so Describe answers are stable.
type table[T any] struct {
	m    map[string]*T
	keys []string
	pos  map[string]int // insertion sequence: rows() answers a narrowed Describe in a full scan's order
	next int
}

func (t *table[T]) put(id string, v *T) {
	if t.m == nil {
		t.m, t.pos = map[string]*T{}, map[string]int{}
	}
	if _, ok := t.m[id]; !ok {
		t.keys = append(t.keys, id)
		t.pos[id] = t.next
		t.next++
	}
	t.m[id] = v
}

func (t *table[T]) get(id string) *T { return t.m[id] }

func (t *table[T]) del(id string) {
	if _, ok := t.m[id]; !ok {
		return
	}
	delete(t.m, id)
	delete(t.pos, id)
	t.keys = slices.DeleteFunc(t.keys, func(k string) bool { return k == id })
}

func (t *table[T]) all() []*T {
	out := make([]*T, 0, len(t.keys))
	for _, k := range t.keys {
		out = append(out, t.m[k])
	}
	return out
}

func newAccount(sc Scenario, clock Clock) (*Account, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	now := clock.Now()
	a := &Account{
		Faults:    sc.Faults,
		Behaviour: sc.Behaviour,
		id:        sc.Account,
		region:    sc.Region,
		clock:     clock,
		start:     now,
		ids:       rand.New(rand.NewPCG(0x5eed, 0x1d5)),
		tags:      map[string]map[string]string{},
		tagged:    map[tagPair]map[string]bool{},
		assocOf:   map[string][]string{},
		enisOf:    map[string][]string{},
	}
	if a.id == "" {
		a.id = "123456789012"
	}
	if a.region == "" {
		a.region = "us-east-1"
	}
	for _, v := range sc.VPCs {
		a.vpcs.put(v.ID, &vpc{id: v.ID, cidr: v.CIDR, ipv6CIDR: v.IPv6CIDR})
		a.setTags(v.ID, v.Tags)
	}
	for _, s := range sc.Subnets {
		az := s.AvailabilityZone
		if az == "" {
			az = a.region + "a"
		}
		sn := &subnet{id: s.ID, vpcID: s.VpcID, az: az, cidr: s.CIDR}
		if p, err := netip.ParsePrefix(s.CIDR); err == nil {
			sn.next = p.Masked().Addr().Next().Next().Next().Next() // AWS reserves the first four addresses
		}
		a.subnets.put(s.ID, sn)
		a.setTags(s.ID, s.Tags)
	}
	past := now.Add(-time.Hour) // seeded groups are long visible
	for _, g := range sc.SecurityGroups {
		sg := &secGroup{id: g.ID, vpcID: g.VpcID, name: g.Name, desc: g.Description, visibleAt: past}
		if g.Egress == nil {
			sg.egress = a.defaultEgress(g.VpcID)
		}
		for _, r := range g.Ingress {
			sg.ingress = append(sg.ingress, a.ruleFrom(r, false))
		}
		for _, r := range g.Egress {
			sg.egress = append(sg.egress, a.ruleFrom(r, true))
		}
		a.groups.put(g.ID, sg)
		a.setTags(g.ID, g.Tags)
	}
	// Every VPC has a default group (https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html):
	// inbound from itself, outbound to everywhere.
	for _, v := range a.vpcs.all() {
		if a.groupByName(v.id, "default") != nil {
			continue
		}
		id := derivedID("sg", v.id)
		sg := &secGroup{id: id, vpcID: v.id, name: "default", desc: "default VPC security group", visibleAt: past,
			egress: a.defaultEgress(v.id)}
		sg.ingress = []*sgRule{{id: a.newID("sgr"), protocol: "-1", from: -1, to: -1, peerSG: id}}
		a.groups.put(id, sg)
	}
	for _, p := range sc.InstanceProfiles {
		arn := p.ARN
		if arn == "" {
			arn = fmt.Sprintf("arn:%s:iam::%s:instance-profile/%s", Partition(a.region), a.id, p.Name)
		}
		a.profiles.put(p.Name, &profile{name: p.Name, arn: arn, id: profileID(p.Name),
			role: p.Role, visibleAt: now.Add(p.VisibleAfter)})
	}
	for _, r := range sc.Roles {
		a.addRole(r, past)
	}
	for _, p := range a.profiles.all() {
		if p.role != "" && a.roles.get(p.role) == nil {
			a.addRole(Role{Name: p.role}, past)
		}
	}
	for _, in := range sc.Instances {
		if err := a.seedInstance(in, past); err != nil {
			return nil, err
		}
	}
	a.organization, a.callers = sc.Organization, sc.Callers
	for _, t := range sc.Topics {
		tp := a.createTopic(t.Name)
		if t.Policy != "" {
			tp.policy, _ = parseResourcePolicy(string(t.Policy)) // validated
			tp.attrs["Policy"] = string(t.Policy)
		}
	}
	tgARNs := map[string]string{} // name or ARN -> ARN
	for _, t := range sc.TargetGroups {
		tg := &targetGroup{name: t.Name, arn: t.ARN, vpcID: t.VpcID, protocol: t.Protocol, targetType: t.TargetType, port: t.Port}
		if tg.arn == "" {
			tg.arn = targetGroupARN(a.region, a.id, t.Name)
		}
		if tg.protocol == "" {
			tg.protocol = "HTTP"
		}
		if tg.targetType == "" {
			tg.targetType = "instance"
		}
		for _, x := range t.Targets {
			port := x.Port
			if port == 0 {
				port = tg.port
			}
			tg.register(x.ID, port)
		}
		a.targetGroups.put(tg.arn, tg)
		tgARNs[t.Name], tgARNs[tg.arn] = tg.arn, tg.arn
	}
	for _, g := range sc.AutoScaling {
		ag := &asGroup{name: g.Name, min: g.MinSize, max: g.MaxSize, desired: g.DesiredCapacity, created: past,
			arn: fmt.Sprintf("arn:%s:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s", Partition(a.region), a.region, a.id,
				uuidFrom("act-0"+derivedID("", "asg/"+g.Name)[2:]), g.Name)}
		for _, in := range g.Instances {
			lc := in.LifecycleState
			if lc == "" {
				lc = "InService"
			}
			ag.instances = append(ag.instances, &asInstance{id: in.ID, lifecycle: lc, protected: in.ProtectedFromScaleIn})
		}
		for _, t := range g.TargetGroupARNs {
			ag.targetGroups = append(ag.targetGroups, tgARNs[t])
		}
		a.asGroups.put(g.Name, ag)
	}
	for _, b := range sc.Buckets {
		bk := &bucket{name: b.Name, versioning: b.Versioning, created: past, objects: map[string][]*objectVersion{}}
		if b.Policy != "" {
			bk.policy, _ = parseResourcePolicy(string(b.Policy)) // validated
		}
		a.buckets.put(b.Name, bk)
	}
	a.seedQueues(sc.Queues)
	return a, nil
}

func (a *Account) seedInstance(in Instance, past time.Time) error {
	inst := &instance{id: in.ID, state: in.State, imageID: in.ImageID, itype: in.InstanceType,
		disableAPITermination: in.DisableAPITermination, lifecycle: in.InstanceLifecycle, shutdown: in.ShutdownBehavior, launch: past}
	if inst.state == "" {
		inst.state = "running"
	}
	if inst.imageID == "" {
		inst.imageID = "ami-0abcdef1234567890"
	}
	if inst.itype == "" {
		inst.itype = "t3.micro"
	}
	if inst.shutdown == "" {
		inst.shutdown = "stop"
	}
	enis := in.NetworkInterfaces
	if len(enis) == 0 && in.SubnetID != "" {
		sn := a.subnets.get(in.SubnetID)
		enis = []NetworkInterface{{ID: derivedID("eni", in.ID), SubnetID: in.SubnetID,
			Groups: []string{a.groupByName(sn.vpcID, "default").id}}}
	}
	inst.subnetID = in.SubnetID
	inst.az = a.region + "a"
	for _, n := range enis {
		sn := a.subnets.get(n.SubnetID)
		e := &eni{id: n.ID, subnetID: sn.id, vpcID: sn.vpcID, az: sn.az, ip: n.PrivateIP,
			mac: macFor(n.ID), groups: slices.Clone(n.Groups), requesterManaged: n.RequesterManaged,
			requesterID: n.RequesterID, ifaceType: n.InterfaceType}
		if e.ip == "" {
			e.ip = a.nextIP(sn)
		}
		a.enis.put(e.id, e)
		a.setAttachment(e, &eniAttachment{id: derivedID("eni-attach", n.ID), instanceID: in.ID, deviceIndex: n.DeviceIndex,
			deleteOnTermination: n.DeviceIndex == 0, attached: past})
		if n.DeviceIndex == 0 {
			inst.subnetID, inst.vpcID, inst.az = sn.id, sn.vpcID, sn.az
		}
	}
	for _, v := range in.Volumes {
		size := v.SizeGiB
		if size == 0 {
			size = 8
		}
		a.volumes.put(v.ID, &volume{id: v.ID, az: inst.az, size: size, created: past, instanceID: in.ID})
		a.setTags(v.ID, v.Tags)
		inst.bdms = append(inst.bdms, &bdm{device: v.DeviceName, volumeID: v.ID,
			deleteOnTermination: v.DeleteOnTermination, attached: past})
	}
	a.instances.put(in.ID, inst)
	a.setTags(in.ID, in.Tags)
	if in.Profile != "" {
		state := in.AssociationState
		if state == "" {
			state = "associated"
		}
		as := &association{id: a.newID("iip-assoc"), instanceID: in.ID, profile: a.profiles.get(in.Profile),
			state: state, changed: a.clock.Now(), timestamp: past}
		a.putAssociation(as)
		a.pend(as)
	}
	if inst.state == "terminated" {
		a.terminate(inst)
	}
	return nil
}

// validate checks references and ids, and fills nothing: defaults are applied when the account is built.
func (sc *Scenario) validate() error {
	seen := map[string]bool{}
	id := func(kind, prefix, v string) error {
		if v == "" {
			return fmt.Errorf("%s without id", kind)
		}
		if len(v) <= len(prefix) || v[:len(prefix)] != prefix {
			return fmt.Errorf("%s id %q must start with %q", kind, v, prefix)
		}
		if seen[v] {
			return fmt.Errorf("duplicate id %q", v)
		}
		seen[v] = true
		return nil
	}
	vpcs := map[string]VPC{}
	for _, v := range sc.VPCs {
		if err := id("vpc", "vpc-", v.ID); err != nil {
			return err
		}
		if _, err := netip.ParsePrefix(v.CIDR); err != nil {
			return fmt.Errorf("vpc %s: cidr: %w", v.ID, err)
		}
		if v.IPv6CIDR != "" {
			if _, err := netip.ParsePrefix(v.IPv6CIDR); err != nil {
				return fmt.Errorf("vpc %s: ipv6Cidr: %w", v.ID, err)
			}
		}
		vpcs[v.ID] = v
	}
	subnets := map[string]Subnet{}
	for _, s := range sc.Subnets {
		if err := id("subnet", "subnet-", s.ID); err != nil {
			return err
		}
		if _, ok := vpcs[s.VpcID]; !ok {
			return fmt.Errorf("subnet %s: unknown vpc %q", s.ID, s.VpcID)
		}
		if _, err := netip.ParsePrefix(s.CIDR); err != nil {
			return fmt.Errorf("subnet %s: cidr: %w", s.ID, err)
		}
		if s.AvailabilityZone == "" {
			s.AvailabilityZone = sc.region() + "a"
		}
		subnets[s.ID] = s
	}
	groups := map[string]SecurityGroup{}
	names := map[[2]string]bool{}
	for _, g := range sc.SecurityGroups {
		if err := id("security group", "sg-", g.ID); err != nil {
			return err
		}
		if _, ok := vpcs[g.VpcID]; !ok {
			return fmt.Errorf("security group %s: unknown vpc %q", g.ID, g.VpcID)
		}
		if g.Name == "" {
			return fmt.Errorf("security group %s: no name", g.ID)
		}
		if names[[2]string{g.VpcID, g.Name}] {
			return fmt.Errorf("security group %s: name %q already used in %s", g.ID, g.Name, g.VpcID)
		}
		names[[2]string{g.VpcID, g.Name}] = true
		groups[g.ID] = g
	}
	for _, g := range sc.SecurityGroups {
		for _, r := range append(slices.Clone(g.Ingress), g.Egress...) {
			if err := validateRule(r); err != nil {
				return fmt.Errorf("security group %s: %w", g.ID, err)
			}
			if r.GroupID != "" {
				if _, ok := groups[r.GroupID]; !ok {
					return fmt.Errorf("security group %s: rule references unknown group %q", g.ID, r.GroupID)
				}
			}
		}
	}
	profiles := map[string]bool{}
	for _, p := range sc.InstanceProfiles {
		if p.Name == "" {
			return fmt.Errorf("instance profile without name")
		}
		if profiles[p.Name] {
			return fmt.Errorf("duplicate instance profile %q", p.Name)
		}
		if p.VisibleAfter < 0 {
			return fmt.Errorf("instance profile %s: negative visibleAfter", p.Name)
		}
		profiles[p.Name] = true
	}
	for _, in := range sc.Instances {
		if err := id("instance", "i-", in.ID); err != nil {
			return err
		}
		switch in.State {
		case "", "pending", "running", "stopping", "stopped", "shutting-down", "terminated":
		default:
			return fmt.Errorf("instance %s: unknown state %q", in.ID, in.State)
		}
		switch in.ShutdownBehavior {
		case "", "stop", "terminate":
		default:
			return fmt.Errorf("instance %s: shutdownBehavior must be stop or terminate, not %q", in.ID, in.ShutdownBehavior)
		}
		if in.Profile != "" && !profiles[in.Profile] {
			return fmt.Errorf("instance %s: unknown instance profile %q", in.ID, in.Profile)
		}
		switch in.AssociationState {
		case "", "associated", "associating", "disassociating":
		default:
			return fmt.Errorf("instance %s: associationState must be associated, associating or disassociating", in.ID)
		}
		if in.AssociationState != "" && in.Profile == "" {
			return fmt.Errorf("instance %s: associationState without profile", in.ID)
		}
		switch in.InstanceLifecycle {
		case "":
		case "spot":
			if in.DisableAPITermination {
				return fmt.Errorf("instance %s: a Spot Instance cannot have disableApiTermination", in.ID)
			}
		default:
			return fmt.Errorf("instance %s: instanceLifecycle must be spot or empty (On-Demand)", in.ID)
		}
		if in.SubnetID != "" {
			if _, ok := subnets[in.SubnetID]; !ok {
				return fmt.Errorf("instance %s: unknown subnet %q", in.ID, in.SubnetID)
			}
		}
		var primary *NetworkInterface
		devices := map[int32]bool{}
		for i, n := range in.NetworkInterfaces {
			if err := id("network interface", "eni-", n.ID); err != nil {
				return err
			}
			sn, ok := subnets[n.SubnetID]
			if !ok {
				return fmt.Errorf("network interface %s: unknown subnet %q", n.ID, n.SubnetID)
			}
			if devices[n.DeviceIndex] {
				return fmt.Errorf("instance %s: two network interfaces at device index %d", in.ID, n.DeviceIndex)
			}
			devices[n.DeviceIndex] = true
			if n.DeviceIndex == 0 {
				primary = &in.NetworkInterfaces[i]
			}
			if len(n.Groups) == 0 {
				return fmt.Errorf("network interface %s: no security groups", n.ID)
			}
			if err := validateInterfaceType(n); err != nil {
				return err
			}
			for _, g := range n.Groups {
				sg, ok := groups[g]
				if !ok {
					return fmt.Errorf("network interface %s: unknown security group %q", n.ID, g)
				}
				if sg.VpcID != sn.VpcID {
					return fmt.Errorf("network interface %s: group %s is in %s, the interface in %s", n.ID, g, sg.VpcID, sn.VpcID)
				}
			}
			if n.PrivateIP != "" {
				if _, err := netip.ParseAddr(n.PrivateIP); err != nil {
					return fmt.Errorf("network interface %s: privateIp: %w", n.ID, err)
				}
			}
		}
		if len(in.NetworkInterfaces) > 0 {
			if primary == nil {
				return fmt.Errorf("instance %s: no network interface at device index 0", in.ID)
			}
			if in.SubnetID != "" && in.SubnetID != primary.SubnetID {
				return fmt.Errorf("instance %s: subnetId %s is not the primary interface's subnet %s", in.ID, in.SubnetID, primary.SubnetID)
			}
			for _, n := range in.NetworkInterfaces {
				if subnets[n.SubnetID].AvailabilityZone != subnets[primary.SubnetID].AvailabilityZone {
					return fmt.Errorf("network interface %s: not in the instance's Availability Zone", n.ID)
				}
			}
		}
		devs := map[string]bool{}
		for _, v := range in.Volumes {
			if err := id("volume", "vol-", v.ID); err != nil {
				return err
			}
			if v.DeviceName == "" || devs[v.DeviceName] {
				return fmt.Errorf("volume %s: missing or repeated deviceName", v.ID)
			}
			devs[v.DeviceName] = true
		}
	}
	topics := map[string]bool{}
	for _, t := range sc.Topics {
		if t.Name == "" || topics[t.Name] {
			return fmt.Errorf("topic without name or repeated: %q", t.Name)
		}
		topics[t.Name] = true
		if t.Policy != "" {
			if _, err := parseResourcePolicy(string(t.Policy)); err != nil {
				return fmt.Errorf("topic %s: policy: %w", t.Name, err)
			}
		}
	}
	roles := map[string]bool{}
	for _, r := range sc.Roles {
		if !iamName.MatchString(r.Name) || len(r.Name) > 64 {
			return fmt.Errorf("role %q: not a valid role name", r.Name)
		}
		if roles[r.Name] {
			return fmt.Errorf("duplicate role %q", r.Name)
		}
		roles[r.Name] = true
		if r.Path != "" && (!strings.HasPrefix(r.Path, "/") || !strings.HasSuffix(r.Path, "/")) {
			return fmt.Errorf("role %s: path %q must begin and end with /", r.Name, r.Path)
		}
		if r.AssumeRolePolicyDocument != "" && !json.Valid([]byte(r.AssumeRolePolicyDocument)) {
			return fmt.Errorf("role %s: assumeRolePolicyDocument is not JSON", r.Name)
		}
		for n, d := range r.InlinePolicies {
			if !iamName.MatchString(n) {
				return fmt.Errorf("role %s: invalid inline policy name %q", r.Name, n)
			}
			if err := checkPolicyDocument(string(d)); err != nil {
				return fmt.Errorf("role %s: inline policy %s: %s", r.Name, n, err.Message)
			}
		}
		for _, arn := range r.AttachedPolicies {
			if !managedPolicyARN.MatchString(arn) {
				return fmt.Errorf("role %s: attached policy %q is not a managed policy ARN", r.Name, arn)
			}
		}
	}
	if err := checkQueues(sc.Queues); err != nil {
		return err
	}
	buckets := map[string]bool{}
	for _, b := range sc.Buckets {
		if !bucketName.MatchString(b.Name) || strings.Contains(b.Name, "..") {
			return fmt.Errorf("bucket %q: not a valid bucket name", b.Name)
		}
		if buckets[b.Name] {
			return fmt.Errorf("duplicate bucket %q", b.Name)
		}
		buckets[b.Name] = true
		if b.Policy != "" {
			if _, err := parseResourcePolicy(string(b.Policy)); err != nil {
				return fmt.Errorf("bucket %s: policy: %w", b.Name, err)
			}
		}
	}
	for key, c := range sc.Callers {
		if key == "" || !regexp.MustCompile(`^[0-9]{12}$`).MatchString(c.Account) {
			return fmt.Errorf("caller %q: account %q is not an account id", key, c.Account)
		}
		if c.Organization != "" && !regexp.MustCompile(`^o-[a-z0-9]{10,32}$`).MatchString(c.Organization) {
			return fmt.Errorf("caller %q: organization %q is not an organization id", key, c.Organization)
		}
	}
	if sc.Organization != "" && !regexp.MustCompile(`^o-[a-z0-9]{10,32}$`).MatchString(sc.Organization) {
		return fmt.Errorf("organization %q is not an organization id (o- and 10 to 32 letters or digits)", sc.Organization)
	}
	if err := sc.validateLoadBalancing(); err != nil {
		return err
	}
	for i, f := range sc.Faults.Errors {
		if f.Code == "" && f.Timeout == 0 {
			return fmt.Errorf("faults.errors[%d]: no code (and no timeout)", i)
		}
		if f.Timeout < 0 {
			return fmt.Errorf("faults.errors[%d]: negative timeout", i)
		}
		if f.Applied && f.Timeout == 0 {
			return fmt.Errorf("faults.errors[%d]: applied without timeout", i)
		}
		if f.Rate < 0 || f.Rate > 1 {
			return fmt.Errorf("faults.errors[%d]: rate must be within 0..1", i)
		}
		if f.Service != "" && !slices.Contains(services, f.Service) {
			return fmt.Errorf("faults.errors[%d]: service must be one of %s", i, strings.Join(services, ", "))
		}
	}
	return nil
}

// validateLoadBalancing checks target groups and Auto Scaling groups against the instances and VPCs.
func (sc *Scenario) validateLoadBalancing() error {
	instances := map[string]Instance{}
	for _, in := range sc.Instances {
		instances[in.ID] = in
	}
	vpcs := map[string]bool{}
	for _, v := range sc.VPCs {
		vpcs[v.ID] = true
	}
	tgs := map[string]bool{}
	for _, t := range sc.TargetGroups {
		if !tgName.MatchString(t.Name) {
			return fmt.Errorf("target group %q: name must be 1 to 32 letters, digits or hyphens", t.Name)
		}
		arn := t.ARN
		if arn == "" {
			arn = targetGroupARN(sc.region(), sc.accountID(), t.Name)
		} else if !strings.HasPrefix(arn, "arn:"+Partition(sc.region())+":elasticloadbalancing:") || !strings.Contains(arn, ":targetgroup/"+t.Name+"/") {
			return fmt.Errorf("target group %s: arn %q is not a target group ARN of that name", t.Name, arn)
		}
		if tgs[t.Name] || tgs[arn] {
			return fmt.Errorf("duplicate target group %q", t.Name)
		}
		tgs[t.Name], tgs[arn] = true, true
		if !vpcs[t.VpcID] {
			return fmt.Errorf("target group %s: unknown vpc %q", t.Name, t.VpcID)
		}
		if t.Port < 1 || t.Port > 65535 {
			return fmt.Errorf("target group %s: port must be within 1..65535", t.Name)
		}
		if t.TargetType != "" && t.TargetType != "instance" {
			return fmt.Errorf("target group %s: only targetType instance is simulated", t.Name)
		}
		for _, x := range t.Targets {
			if _, ok := instances[x.ID]; !ok {
				return fmt.Errorf("target group %s: unknown instance %q", t.Name, x.ID)
			}
			if x.Port < 0 || x.Port > 65535 {
				return fmt.Errorf("target group %s: target %s: port must be within 1..65535", t.Name, x.ID)
			}
		}
	}
	members := map[string]string{}
	names := map[string]bool{}
	for _, g := range sc.AutoScaling {
		if g.Name == "" || names[g.Name] {
			return fmt.Errorf("auto scaling group without name or repeated: %q", g.Name)
		}
		names[g.Name] = true
		if g.MinSize < 0 || g.MinSize > g.MaxSize || g.DesiredCapacity < g.MinSize || g.DesiredCapacity > g.MaxSize {
			return fmt.Errorf("auto scaling group %s: need 0 <= minSize <= desiredCapacity <= maxSize", g.Name)
		}
		if int32(len(g.Instances)) > g.MaxSize {
			return fmt.Errorf("auto scaling group %s: more instances than maxSize", g.Name)
		}
		for _, in := range g.Instances {
			if _, ok := instances[in.ID]; !ok {
				return fmt.Errorf("auto scaling group %s: unknown instance %q", g.Name, in.ID)
			}
			if other, ok := members[in.ID]; ok {
				return fmt.Errorf("instance %s is in two auto scaling groups (%s, %s)", in.ID, other, g.Name)
			}
			members[in.ID] = g.Name
		}
		for _, t := range g.TargetGroupARNs {
			if !tgs[t] {
				return fmt.Errorf("auto scaling group %s: unknown target group %q", g.Name, t)
			}
		}
	}
	return nil
}

var tgName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

// services are the SigV4 signing names of the simulated services (Call.Service, ErrorFault.Service).
var services = []string{"ec2", "sns", "s3", "iam", "autoscaling", "elasticloadbalancing", "sqs"}

var managedPolicyARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/([\w+=,.@-]+/)*[\w+=,.@-]+$`)

// bucketName is S3's general purpose bucket naming rule (lower case letters, digits, dots, hyphens; 3 to 63).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (sc *Scenario) accountID() string {
	if sc.Account == "" {
		return "123456789012"
	}
	return sc.Account
}

func (sc *Scenario) region() string {
	if sc.Region == "" {
		return "us-east-1"
	}
	return sc.Region
}

func validateRule(r Rule) error {
	peers := 0
	for _, p := range []string{r.CIDR, r.IPv6CIDR, r.GroupID, r.PrefixListID} {
		if p != "" {
			peers++
		}
	}
	if peers != 1 {
		return fmt.Errorf("rule %+v: exactly one of cidr, ipv6Cidr, groupId, prefixListId", r)
	}
	if r.PrefixListID != "" && !wellFormed("pl", r.PrefixListID) {
		return fmt.Errorf("rule %+v: prefixListId is not a prefix list id (pl-…)", r)
	}
	if r.Protocol == "" {
		return fmt.Errorf("rule %+v: no protocol", r)
	}
	return nil
}

// newID returns a fresh id like "sg-0123456789abcdef0" (17 hex digits, as AWS's long ids).
func (a *Account) newID(prefix string) string {
	return fmt.Sprintf("%s-0%016x", prefix, a.ids.Uint64())
}

// derivedID is a stable id derived from another id, for resources the scenario implies (default groups).
func derivedID(prefix, from string) string {
	h := fnv.New64a()
	h.Write([]byte(prefix + "/" + from))
	if prefix == "" {
		return fmt.Sprintf("-0%016x", h.Sum64())
	}
	return fmt.Sprintf("%s-0%016x", prefix, h.Sum64())
}

// profileID is a stable instance profile id (AIPA + 17 upper-case characters, as IAM's).
func profileID(name string) string {
	return "AIPA" + strings.ToUpper(derivedID("", name)[1:18])
}

func macFor(id string) string {
	h := fnv.New64a()
	h.Write([]byte(id))
	s := h.Sum64()
	return fmt.Sprintf("0e:%02x:%02x:%02x:%02x:%02x", byte(s), byte(s>>8), byte(s>>16), byte(s>>24), byte(s>>32))
}

func (a *Account) nextIP(sn *subnet) string {
	if !sn.next.IsValid() {
		return ""
	}
	ip := sn.next
	sn.next = sn.next.Next()
	return ip.String()
}

// setTags is the only writer of a.tags (untag the only remover): it keeps the tag index in step.
func (a *Account) setTags(id string, tags map[string]string) {
	for k, v := range tags {
		if a.tags[id] == nil {
			a.tags[id] = map[string]string{}
		}
		if old, ok := a.tags[id][k]; ok {
			delete(a.tagged[tagPair{k, old}], id)
		}
		a.tags[id][k] = v
		if a.tagged[tagPair{k, v}] == nil {
			a.tagged[tagPair{k, v}] = map[string]bool{}
		}
		a.tagged[tagPair{k, v}][id] = true
	}
}

// untag forgets a deleted resource's tags.
func (a *Account) untag(id string) {
	for k, v := range a.tags[id] {
		delete(a.tagged[tagPair{k, v}], id)
	}
	delete(a.tags, id)
}

// defaultEgress is the outbound rule a new group gets: all traffic to 0.0.0.0/0, and to ::/0 when the VPC has an
// IPv6 CIDR block ("This rule is added only if your VPC has an associated IPv6 CIDR block",
// https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html and
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/default-custom-security-groups.html).
func (a *Account) defaultEgress(vpcID string) []*sgRule {
	rules := []*sgRule{{id: a.newID("sgr"), egress: true, protocol: "-1", from: -1, to: -1, cidr: "0.0.0.0/0"}}
	if v := a.vpcs.get(vpcID); v != nil && v.ipv6CIDR != "" {
		rules = append(rules, &sgRule{id: a.newID("sgr"), egress: true, protocol: "-1", from: -1, to: -1, cidr6: "::/0"})
	}
	return rules
}

func (a *Account) ruleFrom(r Rule, egress bool) *sgRule {
	from, to := r.FromPort, r.ToPort
	if r.Protocol == "-1" {
		from, to = -1, -1
	}
	return &sgRule{id: a.newID("sgr"), egress: egress, protocol: r.Protocol, from: from, to: to,
		cidr: r.CIDR, cidr6: r.IPv6CIDR, peerSG: r.GroupID, prefixList: r.PrefixListID, desc: r.Description}
}

func (a *Account) groupByName(vpcID, name string) *secGroup {
	for _, g := range a.groups.all() {
		if g.vpcID == vpcID && g.name == name {
			return g
		}
	}
	return nil
}

func (a *Account) createTopic(name string) *topic {
	arn := fmt.Sprintf("arn:%s:sns:%s:%s:%s", Partition(a.region), a.region, a.id, name)
	if t := a.topics.get(arn); t != nil {
		return t
	}
	t := &topic{arn: arn, name: name, attrs: map[string]string{}}
	a.topics.put(arn, t)
	return t
}

// tick applies the state changes that are due: association settle and snapshot completion are computed from
// timestamps, so nothing runs in the background.
func (a *Account) tick() {
	now := a.clock.Now()
	a.tickTargets(now)
	kept := a.pending[:0]
	for _, as := range a.pending {
		if a.associations.get(as.id) != as {
			continue // deleted (replaced, or its instance terminated)
		}
		if now.Sub(as.changed) >= a.Behaviour.AssociationSettle {
			switch as.state {
			case "associating":
				as.state, as.changed = "associated", as.changed.Add(a.Behaviour.AssociationSettle)
			case "disassociating":
				as.state, as.changed = "disassociated", as.changed.Add(a.Behaviour.AssociationSettle)
			}
		}
		if as.state == "associating" || as.state == "disassociating" {
			kept = append(kept, as)
		}
	}
	clear(a.pending[len(kept):])
	a.pending = kept
}

// pend marks an association whose state may have to settle (tick).
func (a *Account) pend(as *association) {
	if as.state == "associating" || as.state == "disassociating" {
		a.pending = append(a.pending, as)
	}
}

// terminate puts an instance in the terminated state the way EC2 leaves it: ENIs that are deleted on
// termination are gone and the others detached, volumes detached (and deleted when flagged), profile
// association removed.
func (a *Account) terminate(inst *instance) {
	inst.state = "terminated"
	inst.stateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
	for _, e := range a.instanceENIs(inst.id) {
		if e.att.deleteOnTermination {
			a.enis.del(e.id)
		}
		a.setAttachment(e, nil)
	}
	for _, b := range inst.bdms {
		if b.deleteOnTermination {
			a.volumes.del(b.volumeID)
		} else if v := a.volumes.get(b.volumeID); v != nil {
			v.instanceID = ""
		}
	}
	inst.bdms = nil
	for _, id := range slices.Clone(a.assocOf[inst.id]) {
		a.delAssociation(id)
	}
	// A terminated instance leaves its Auto Scaling group and its target groups.
	for _, g := range a.asGroups.all() {
		g.instances = slices.DeleteFunc(g.instances, func(in *asInstance) bool { return in.id == inst.id })
	}
	for _, tg := range a.targetGroups.all() {
		tg.targets = slices.DeleteFunc(tg.targets, func(t *target) bool { return t.id == inst.id })
	}
}

// instanceENIs returns the ENIs attached to an instance, by device index.
func (a *Account) instanceENIs(id string) []*eni {
	var out []*eni
	for _, k := range a.enisOf[id] {
		if e := a.enis.get(k); e != nil && e.att != nil && e.att.instanceID == id {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y *eni) int { return int(x.att.deviceIndex) - int(y.att.deviceIndex) })
	return out
}

// activeAssociation returns the instance's association that is not disassociated, if any.
func (a *Account) activeAssociation(instanceID string) *association {
	for _, id := range a.assocOf[instanceID] {
		if as := a.associations.get(id); as != nil && as.state != "disassociated" {
			return as
		}
	}
	return nil
}

func (g *secGroup) visible(now time.Time) bool { return !now.Before(g.visibleAt) }

// ---- Mutations for tests (call inside Server.Update) ----

// Now is the simulator clock's current time.
func (a *Account) Now() time.Time { return a.clock.Now() }

// TerminateInstance terminates an instance (ignoring termination protection, as a user in the console might
// after turning it off).
func (a *Account) TerminateInstance(id string) error {
	inst := a.instances.get(id)
	if inst == nil {
		return fmt.Errorf("no instance %s", id)
	}
	a.terminate(inst)
	return nil
}

// SetInstanceState sets an instance's state (for a terminated state use TerminateInstance).
func (a *Account) SetInstanceState(id, state string) error {
	inst := a.instances.get(id)
	if inst == nil {
		return fmt.Errorf("no instance %s", id)
	}
	if state == "terminated" {
		a.terminate(inst)
		return nil
	}
	inst.state = state
	return nil
}

// DetachNetworkInterface detaches an ENI from its instance; it stays in the account, available.
func (a *Account) DetachNetworkInterface(eniID string) error {
	e := a.enis.get(eniID)
	if e == nil || e.att == nil {
		return fmt.Errorf("no attached network interface %s", eniID)
	}
	a.setAttachment(e, nil)
	return nil
}

// AttachNetworkInterface attaches an available ENI to an instance at a device index.
func (a *Account) AttachNetworkInterface(eniID, instanceID string, deviceIndex int32) error {
	e, inst := a.enis.get(eniID), a.instances.get(instanceID)
	if e == nil || inst == nil || e.att != nil {
		return fmt.Errorf("cannot attach %s to %s", eniID, instanceID)
	}
	a.setAttachment(e, &eniAttachment{id: a.newID("eni-attach"), instanceID: instanceID, deviceIndex: deviceIndex, attached: a.clock.Now()})
	return nil
}

// DeleteSecurityGroup deletes a group as another actor would; it fails while an ENI uses it.
func (a *Account) DeleteSecurityGroup(id string) error {
	if a.groups.get(id) == nil {
		return fmt.Errorf("no security group %s", id)
	}
	for _, e := range a.enis.all() {
		if slices.Contains(e.groups, id) {
			return fmt.Errorf("security group %s is used by %s", id, e.id)
		}
	}
	a.groups.del(id)
	return nil
}

// CreateSecurityGroup creates a group as another actor would (a concurrent execution), visible after the
// scenario's GroupVisibilityDelay, with the default egress rule. It returns the group id.
func (a *Account) CreateSecurityGroup(vpcID, name, description string) (string, error) {
	if a.vpcs.get(vpcID) == nil {
		return "", fmt.Errorf("no vpc %s", vpcID)
	}
	if a.groupByName(vpcID, name) != nil {
		return "", fmt.Errorf("group %s already exists in %s", name, vpcID)
	}
	return a.newGroup(vpcID, name, description).id, nil
}

func (a *Account) newGroup(vpcID, name, desc string) *secGroup {
	g := &secGroup{id: a.newID("sg"), vpcID: vpcID, name: name, desc: desc,
		visibleAt: a.clock.Now().Add(a.Behaviour.GroupVisibilityDelay), egress: a.defaultEgress(vpcID)}
	a.groups.put(g.id, g)
	return g
}

// SetAssociationState forces the state of an instance's current profile association (e.g. "disassociating"),
// restarting its settle delay.
func (a *Account) SetAssociationState(instanceID, state string) error {
	as := a.activeAssociation(instanceID)
	if as == nil {
		return fmt.Errorf("instance %s has no association", instanceID)
	}
	as.state, as.changed = state, a.clock.Now()
	a.pend(as)
	return nil
}

// AddInstanceProfile makes a new instance profile known to EC2 after visibleAfter (IAM eventual consistency).
func (a *Account) AddInstanceProfile(name, role string, visibleAfter time.Duration) {
	arn := fmt.Sprintf("arn:%s:iam::%s:instance-profile/%s", Partition(a.region), a.id, name)
	a.profiles.put(name, &profile{name: name, arn: arn, id: profileID(name), role: role,
		visibleAt: a.clock.Now().Add(visibleAfter)})
	if role != "" && a.roles.get(role) == nil {
		a.addRole(Role{Name: role}, a.clock.Now())
	}
}

// NetworkInterfaceGroups returns the security groups of an ENI (nil when there is no such ENI).
func (a *Account) NetworkInterfaceGroups(eniID string) []string {
	if e := a.enis.get(eniID); e != nil {
		return slices.Clone(e.groups)
	}
	return nil
}

// SetTag sets a tag on any resource.
func (a *Account) SetTag(resourceID, key, value string) {
	a.setTags(resourceID, map[string]string{key: value})
}

// AddIngressRule adds an inbound rule to a security group as another actor would (a responder by hand), as
// AuthorizeSecurityGroupIngress does (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AuthorizeSecurityGroupIngress.html).
func (a *Account) AddIngressRule(groupID string, r Rule) error {
	g := a.groups.get(groupID)
	if g == nil {
		return fmt.Errorf("no security group %s", groupID)
	}
	g.ingress = append(g.ingress, a.ruleFrom(r, false))
	return nil
}

// SetNetworkInterfaceGroups replaces an ENI's security groups as another actor would, with
// ModifyNetworkInterfaceAttribute's rules: "The new set of groups you specify replaces the current set. You must
// specify at least one group" of the ENI's VPC (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyNetworkInterfaceAttribute.html).
func (a *Account) SetNetworkInterfaceGroups(eniID string, groups []string) error {
	e := a.enis.get(eniID)
	if e == nil {
		return fmt.Errorf("no network interface %s", eniID)
	}
	if len(groups) == 0 {
		return fmt.Errorf("%s: at least one security group is required", eniID)
	}
	for _, id := range groups {
		if g := a.groups.get(id); g == nil || g.vpcID != e.vpcID {
			return fmt.Errorf("security group %s is not in the VPC of %s", id, eniID)
		}
	}
	e.groups = slices.Clone(groups)
	return nil
}

// SecurityGroupID is the id of the group named name in vpcID, "" if there is none.
func (a *Account) SecurityGroupID(vpcID, name string) string {
	if g := a.groupByName(vpcID, name); g != nil {
		return g.id
	}
	return ""
}

// validateInterfaceType accepts the interface types an attachment of an instance can have. EC2 reports a
// NetworkInterface's InterfaceType as one of "interface | natGateway | efa | efa-only | trunk | load_balancer |
// network_load_balancer | vpc_endpoint | branch | transit_gateway | lambda | …"
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_NetworkInterface.html). Of these, an instance's own
// attachments are "interface", the Elastic Fabric Adapter's "efa" and "efa-only"
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa.html: an EFA is a network interface attached to the
// instance, with security groups, which must allow all traffic to and from the group itself for OS-bypass), and
// "trunk", which ECS and EKS attach to the instance to carry branch interfaces
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-eni.html). A "branch" interface
// is not attached to the instance but associated with the trunk, and has its own security groups
// (https://docs.aws.amazon.com/eks/latest/userguide/security-groups-for-pods.html): DescribeInstances does not list
// it, so an instance's network interfaces may not be one. The service-managed types come with RequesterManaged
// (requester-managed interfaces: an ECS task's, a load balancer's), which the scenario says apart.
func validateInterfaceType(n NetworkInterface) error {
	switch n.InterfaceType {
	case "", "interface", "efa", "efa-only", "trunk":
		return nil
	case "branch":
		return fmt.Errorf("network interface %s: a branch interface is associated with a trunk interface, not attached to an instance", n.ID)
	}
	if n.RequesterManaged {
		return nil
	}
	return fmt.Errorf("network interface %s: interface type %q is a service's (set requesterManaged), or not an interface of an instance; want interface, efa, efa-only or trunk", n.ID, n.InterfaceType)
}
