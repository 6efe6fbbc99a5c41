package verify

import (
	"cmp"
	"context"
	"fmt"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// iface is one ENI attached to the instance, as read back.
type iface struct {
	id, vpc, subnet string
	deviceIndex     int32
	groups          []string
}

// assoc is one profile association of the instance that is not disassociated.
type assoc struct{ id, arn, state string }

// readBack is the instance as EC2 describes it now.
type readBack struct {
	state string
	tags  map[string]string
	enis  []iface
	// groups are the described isolation groups (and candidates), by id.
	groups map[string]types.SecurityGroup
	// iso is the isolation group of each VPC of an attached ENI ("" when it has none): the group the network
	// branch used when it still exists in that VPC, else the managed group with the isolation group's name, else
	// a managed group tagged as an isolation group (a derived name, where a foreign group holds the name).
	iso map[string]string
	// foreign names, by VPC, a group with the isolation group's name that ec2-isolation did not create.
	foreign map[string]string
	assocs  []assoc
	// notOwned are the attached ENIs Apply found managed by an AWS service (issue 13 item 4): not read back as
	// open (nothing here can change them), reported apart.
	notOwned []workflow.NotOwnedInterface
}

// read describes the instance (its ENIs with their groups, its state and tags), the isolation groups the network
// branch used and the instance's profile associations, all at once; then, only for a VPC of an attached ENI whose
// group is not among them (an ENI in a new VPC, a group deleted since), its isolation group by name and by tag.
func (v *verification) read(ctx context.Context) (*readBack, error) {
	id := v.in.InstanceID
	client := v.h.ec2
	var known []string
	for _, g := range v.known {
		known = append(known, g.IsolationGroupID)
	}
	slices.Sort(known)
	known = slices.Compact(known)

	var (
		wg                          sync.WaitGroup
		inst                        *types.Instance
		described                   []types.SecurityGroup
		as                          []types.IamInstanceProfileAssociation
		instErr, groupErr, assocErr error
	)
	wg.Go(func() {
		// A filter, not InstanceIds: EC2 throttles a Describe call without filter or pagination in a smaller
		// bucket (50 at 10/s) that Validate's read of the next instances in a storm needs; filtered calls share
		// the non-mutating one (100 at 20/s). An unknown instance is then an empty answer (inst stays nil).
		// https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}})
		if err != nil {
			instErr = err
			return
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if aws.ToString(i.InstanceId) == id {
					inst = &i
				}
			}
		}
	})
	if len(known) > 0 {
		// A filter, not GroupIds: a group deleted since must not fail the whole read (InvalidGroup.NotFound).
		wg.Go(func() {
			described, groupErr = describeGroups(ctx, client, types.Filter{Name: aws.String("group-id"), Values: known})
		})
	}
	wg.Go(func() { as, assocErr = profile.Associations(ctx, client, id) })
	wg.Wait()
	switch code := steperr.Code(instErr); {
	case code == "InvalidInstanceID.NotFound", code == "InvalidInstanceID.Malformed":
		return nil, &steperr.InstanceNotFound{InstanceID: id}
	case instErr != nil:
		return nil, steperr.FromAWS("describe instance "+id, instErr)
	case inst == nil:
		return nil, &steperr.InstanceNotFound{InstanceID: id}
	case groupErr != nil:
		return nil, steperr.FromAWS("describe isolation security groups "+strings.Join(known, ", "), groupErr)
	case assocErr != nil:
		return nil, assocErr // classified by profile.Associations
	}

	notOwned := map[string]workflow.NotOwnedInterface{}
	if v.in.Apply != nil {
		for _, n := range v.in.Apply.NotOwned {
			notOwned[n.ID] = n
		}
	}
	rb := newReadBack(inst, as, notOwned)
	for _, sg := range described {
		rb.groups[aws.ToString(sg.GroupId)] = sg
	}
	var missing []string
	for _, vpc := range rb.vpcs() {
		// Only a group ec2-isolation manages: the roles may put an ENI on no other (and the input could be wrong).
		g, ok := v.known[vpc]
		if sg, found := rb.groups[g.IsolationGroupID]; ok && found && aws.ToString(sg.VpcId) == vpc && secgroup.Managed(&sg) {
			rb.iso[vpc] = g.IsolationGroupID
			continue
		}
		missing = append(missing, vpc)
	}
	if len(missing) == 0 {
		return rb, nil
	}
	// By name (the isolation group, or a foreign group holding its name), and by the tags Ensure puts on the
	// isolation groups it creates (one under a derived name where a foreign group holds the name).
	var (
		byName, byTag   []types.SecurityGroup
		nameErr, tagErr error
		vpcFilter       = types.Filter{Name: aws.String("vpc-id"), Values: missing}
		managedFilter   = types.Filter{Name: aws.String("tag:" + secgroup.TagManaged), Values: []string{"true"}}
		isolationFilter = types.Filter{Name: aws.String("tag:" + secgroup.TagRole), Values: []string{"isolation"}}
	)
	wg.Go(func() {
		byName, nameErr = describeGroups(ctx, client, vpcFilter, types.Filter{Name: aws.String("group-name"), Values: []string{v.h.s.Groups.GroupName}})
	})
	wg.Go(func() { byTag, tagErr = describeGroups(ctx, client, vpcFilter, managedFilter, isolationFilter) })
	wg.Wait()
	if err := cmp.Or(nameErr, tagErr); err != nil {
		return nil, steperr.FromAWS(fmt.Sprintf("look up the isolation groups of %s", strings.Join(missing, ", ")), err)
	}
	rb.pick(missing, v.h.s.Groups.GroupName, byName, byTag)
	return rb, nil
}

// newReadBack is the instance (its state, tags and attached ENIs) and its profile associations not disassociated.
// notOwned are the instance's ENIs that an AWS service manages (issue 13 item 4), by id: named apart, not read
// back as open.
func newReadBack(inst *types.Instance, as []types.IamInstanceProfileAssociation, notOwned map[string]workflow.NotOwnedInterface) *readBack {
	rb := &readBack{tags: map[string]string{}, groups: map[string]types.SecurityGroup{}, iso: map[string]string{},
		foreign: map[string]string{}}
	if inst.State != nil {
		rb.state = string(inst.State.Name)
	}
	for _, t := range inst.Tags {
		rb.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, n := range inst.NetworkInterfaces {
		if no, ok := notOwned[aws.ToString(n.NetworkInterfaceId)]; ok {
			rb.notOwned = append(rb.notOwned, no)
			continue
		}
		e := iface{id: aws.ToString(n.NetworkInterfaceId), vpc: aws.ToString(n.VpcId), subnet: aws.ToString(n.SubnetId), groups: []string{}}
		if n.Attachment != nil {
			e.deviceIndex = aws.ToInt32(n.Attachment.DeviceIndex)
		}
		for _, g := range n.Groups {
			e.groups = append(e.groups, aws.ToString(g.GroupId))
		}
		rb.enis = append(rb.enis, e)
	}
	slices.SortFunc(rb.enis, func(a, b iface) int {
		return cmp.Or(cmp.Compare(a.deviceIndex, b.deviceIndex), cmp.Compare(a.id, b.id))
	})
	for _, a := range as {
		if a.State != types.IamInstanceProfileAssociationStateDisassociated {
			rb.assocs = append(rb.assocs, assoc{id: aws.ToString(a.AssociationId), arn: profile.ProfileARN(a), state: string(a.State)})
		}
	}
	slices.SortFunc(rb.assocs, func(a, b assoc) int { return cmp.Compare(a.id, b.id) })

	return rb
}

// pick chooses the isolation group of each VPC of missing among the groups found by name (the isolation
// group's, or a foreign group holding it) and by the tags Ensure puts on the isolation groups it creates.
func (rb *readBack) pick(missing []string, name string, byName, byTag []types.SecurityGroup) {
	named := map[string]string{}
	for _, sg := range byName {
		vpc, id := aws.ToString(sg.VpcId), aws.ToString(sg.GroupId)
		if !slices.Contains(missing, vpc) || aws.ToString(sg.GroupName) != name {
			continue
		}
		if !secgroup.Managed(&sg) {
			rb.foreign[vpc] = id
			continue
		}
		rb.groups[id] = sg
		named[vpc] = id
	}
	tagged := map[string][]string{}
	for _, sg := range byTag {
		vpc, id := aws.ToString(sg.VpcId), aws.ToString(sg.GroupId)
		if !slices.Contains(missing, vpc) || !secgroup.Managed(&sg) {
			continue
		}
		rb.groups[id] = sg
		tagged[vpc] = append(tagged[vpc], id)
	}
	for _, vpc := range missing {
		// The group with the isolation group's name; else a managed isolation group an ENI of the VPC carries
		// alone (the one another execution chose: moving it would change nothing); else the first of them.
		if id := named[vpc]; id != "" {
			rb.iso[vpc] = id
			continue
		}
		ids := tagged[vpc]
		if len(ids) == 0 {
			continue
		}
		slices.Sort(ids)
		rb.iso[vpc] = ids[0]
		for _, e := range rb.enis {
			if e.vpc == vpc && len(e.groups) == 1 && slices.Contains(ids, e.groups[0]) {
				rb.iso[vpc] = e.groups[0]
				break
			}
		}
	}
}

func describeGroups(ctx context.Context, client ec2.DescribeSecurityGroupsAPIClient, filters ...types.Filter) ([]types.SecurityGroup, error) {
	var out []types.SecurityGroup
	p := ec2.NewDescribeSecurityGroupsPaginator(client, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.SecurityGroups...)
	}
	return out, nil
}

// vpcs are the VPCs of the attached ENIs, sorted.
func (rb *readBack) vpcs() []string {
	var out []string
	for _, e := range rb.enis {
		out = append(out, e.vpc)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// isolatable refuses an instance there is nothing left to contain in: terminated or being terminated (its ENIs
// are deleted or detached), or with no ENI attached. Such an instance is never reported contained.
func (rb *readBack) isolatable(id string) error {
	switch {
	case rb.state == string(types.InstanceStateNameTerminated), rb.state == string(types.InstanceStateNameShuttingDown):
		return &steperr.InstanceNotIsolatable{InstanceID: id, Reason: "it is " + rb.state + " (terminated during the isolation): there is nothing left to contain, and it is not reported contained"}
	case len(rb.enis) == 0:
		return &steperr.InstanceNotIsolatable{InstanceID: id, Reason: "no network interface is attached (state " + rb.state + "): it is not reported contained"}
	}
	return nil
}

// problem is one thing open. pending is set when only waiting closes it (a profile association changing state):
// the error the state machine retries when nothing else is open.
type problem struct {
	text    string
	profile bool
	pending error
}

func texts(ps []problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.text)
	}
	return out
}

// open lists what keeps the instance from being contained, in a stable order: ENIs by device index, then the
// isolation groups by VPC, then the profile associations.
func (rb *readBack) open(s Settings, id string) []problem {
	var ps []problem
	for _, e := range rb.enis {
		want := rb.iso[e.vpc]
		switch {
		case want == "":
			t := fmt.Sprintf("%s carries %s, and %s has no isolation group", e.id, strings.Join(e.groups, ", "), e.vpc)
			if f := rb.foreign[e.vpc]; f != "" {
				t += fmt.Sprintf(" (%s has the isolation group's name %s but was not created by ec2-isolation)", f, s.Groups.GroupName)
			}
			ps = append(ps, problem{text: t})
		case !slices.Equal(e.groups, []string{want}):
			ps = append(ps, problem{text: fmt.Sprintf("%s carries %s, not only the isolation group %s of %s", e.id, strings.Join(e.groups, ", "), want, e.vpc)})
		}
	}
	for _, vpc := range rb.vpcs() {
		sg, ok := rb.groups[rb.iso[vpc]]
		if !ok {
			continue
		}
		for _, dir := range []struct {
			perms  []types.IpPermission
			egress bool
			name   string
		}{{sg.IpPermissions, false, "ingress"}, {sg.IpPermissionsEgress, true, "egress"}} {
			if r := rules(dir.perms, dir.egress); len(r) > 0 {
				ps = append(ps, problem{text: fmt.Sprintf("%s has %d %s %s (%s)", rb.iso[vpc], len(r), dir.name, plural(len(r), "rule"), strings.Join(r, "; "))})
			}
		}
	}
	return append(ps, rb.openProfile(s.Profile.IsolationProfileName, id)...)
}

// openProfile: the isolation profile's association must be the only one not disassociated, and associated or
// associating. While any association changes state, AssociateIamInstanceProfile is refused (IncorrectState), so
// what is open then closes only by waiting.
func (rb *readBack) openProfile(name, id string) []problem {
	var (
		ps         []problem
		attached   bool
		isoListed  bool
		transition *steperr.AssociationPending
	)
	for _, a := range rb.assocs {
		iso := profile.IsProfile(a.arn, name)
		switch {
		case iso && (a.state == string(types.IamInstanceProfileAssociationStateAssociated) || a.state == string(types.IamInstanceProfileAssociationStateAssociating)):
			attached = true
		case a.state == string(types.IamInstanceProfileAssociationStateAssociating), a.state == string(types.IamInstanceProfileAssociationStateDisassociating):
			transition = &steperr.AssociationPending{InstanceID: id, AssociationID: a.id, State: a.state}
		}
	}
	for _, a := range rb.assocs {
		iso := profile.IsProfile(a.arn, name)
		p := problem{profile: true}
		switch {
		case iso && (a.state == string(types.IamInstanceProfileAssociationStateAssociated) || a.state == string(types.IamInstanceProfileAssociationStateAssociating)):
			continue
		case iso:
			isoListed = true
			p.text = fmt.Sprintf("isolation profile association %s of %s is %s: not attached", a.id, profileName(a.arn), a.state)
		default:
			p.text = fmt.Sprintf("profile association %s of %s is %s", a.id, profileName(a.arn), a.state)
		}
		if a.state != string(types.IamInstanceProfileAssociationStateAssociated) {
			p.pending = &steperr.AssociationPending{InstanceID: id, AssociationID: a.id, State: a.state}
		}
		ps = append(ps, p)
	}
	if !attached && !isoListed {
		p := problem{profile: true, text: fmt.Sprintf("the isolation profile %s is not associated", name)}
		if transition != nil {
			p.pending = transition
		}
		ps = append(ps, p)
	}
	return ps
}

// profileName is the instance profile's name, the last segment of its ARN.
func profileName(arn string) string {
	if _, res, ok := strings.Cut(arn, ":instance-profile/"); ok {
		return res[strings.LastIndex(res, "/")+1:]
	}
	return arn
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// rules describes each rule of perms, one per peer (the unit EC2 counts and revokes): "tcp 22 from 0.0.0.0/0".
func rules(perms []types.IpPermission, egress bool) []string {
	dir := "from"
	if egress {
		dir = "to"
	}
	var out []string
	for _, p := range perms {
		what := traffic(p)
		peers := secgroup.PeerNames(p)
		if len(peers) == 0 {
			peers = []string{"(no peer)"}
		}
		for _, peer := range peers {
			out = append(out, what+" "+dir+" "+peer)
		}
	}
	return out
}

// traffic names a rule's protocol and ports as the console does: "all traffic", "tcp 22", "udp 1000-2000".
func traffic(p types.IpPermission) string {
	proto := aws.ToString(p.IpProtocol)
	switch proto {
	case "-1", "all":
		return "all traffic"
	case "tcp", "udp", "6", "17":
		if proto == "6" {
			proto = "tcp"
		} else if proto == "17" {
			proto = "udp"
		}
		from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
		switch {
		case from == to:
			return proto + " " + strconv.Itoa(int(from))
		case from <= 0 && to >= 65535:
			return proto + " all ports"
		}
		return fmt.Sprintf("%s %d-%d", proto, from, to)
	case "icmp", "icmpv6", "1", "58":
		return proto
	}
	return "protocol " + proto
}
