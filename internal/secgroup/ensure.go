package secgroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// EnsureAPI is the part of the EC2 client Ensure uses.
type EnsureAPI interface {
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, opts ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, opts ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupEgress(ctx context.Context, in *ec2.RevokeSecurityGroupEgressInput, opts ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error)
	AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, opts ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	AuthorizeSecurityGroupEgress(ctx context.Context, in *ec2.AuthorizeSecurityGroupEgressInput, opts ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error)
}

// Wait bounds the in-handler retries while a new group is not yet visible, or while concurrent executions race
// on its rules: Attempts tries, sleeping between them an exponential delay from Base up to Max (half jittered).
// When the attempts run out the step fails with steperr.GroupNotVisible, which the state machine retries longer.
type Wait struct {
	Attempts  int
	Base, Max time.Duration
}

// DefaultWait spends at most about 3 seconds: a new group is normally visible within a second.
var DefaultWait = Wait{Attempts: 6, Base: 100 * time.Millisecond, Max: 2 * time.Second}

func (w Wait) sleep(ctx context.Context, attempt int) error {
	d := w.Max
	if attempt < 30 {
		if b := w.Base << attempt; b > 0 && b < d {
			d = b
		}
	}
	if d > 0 {
		d = d/2 + rand.N(d/2+1)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Ensure is the handler of "Ensure isolation security group".
type Ensure struct {
	ec2 EnsureAPI
	s   Settings
	log *slog.Logger
	now func() time.Time
	// Wait bounds the waits for a new group's visibility (DefaultWait; tests shorten it).
	Wait Wait
}

// NewEnsure returns the handler. s must have passed Check (SettingsFromEnv does it).
func NewEnsure(client EnsureAPI, s Settings, log *slog.Logger) *Ensure {
	return &Ensure{ec2: client, s: s, log: log, now: time.Now, Wait: DefaultWait}
}

const ensureStep = "Ensure isolation security group"

var vpcIDPattern = regexp.MustCompile(`^vpc-[0-9a-f]{1,32}$`)

// role is what a group is for: it decides its description, its tags and the rules it must have.
type role string

const (
	roleIsolation role = "isolation"
	roleUntrack   role = "untrack"
)

// Descriptions of the groups (EC2 allows a-zA-Z0-9 spaces ._-:/()#,@[]+=&;{}!$* up to 255 characters).
const (
	isolationDescription = "ec2-isolation quarantine group: ENIs of isolated instances carry only this group. " +
		"It must stay EMPTY: no inbound and no outbound rules. Managed by the ec2-isolation stack."
	untrackDescription = "ec2-isolation allow-all group: applied to an isolated instance for a moment before the " +
		"quarantine group so that tracked connections become untracked and are cut. Never attach it otherwise."
)

// Handle returns, for every VPC of the input, the isolation group (and in untrack-first mode the allow-all
// group) with the rules it must have. The groups Validate found usable (in.Record.IsolationGroups) are taken as
// they are; each missing one is created, without looking it up first (Validate did, in the same round trip as
// the instance): CreateSecurityGroup with its tags, then its default egress revoked by the returned id. A name
// already taken (a group of ours with rules, another execution's) is then looked up and brought to the rules it
// needs; one taken by a group that is not ours is left alone, and the VPC gets a group of ours under the derived
// name (ForeignGroupID names the other). Without a record (an older input), on a retry or a redrive, and after
// Apply found a group gone (GroupMissing, bounded by MaxMissingRounds), every group is looked up first. A second
// run makes no mutating call.
func (h *Ensure) Handle(ctx context.Context, in workflow.EnsureGroupsInput) (workflow.EnsureGroupsOutput, error) {
	log := h.log.With("instance", in.InstanceID, "execution", in.ExecutionName, "step", ensureStep)
	vpcs, err := checkEnsureInput(in)
	if err != nil {
		log.Error("invalid input", "error", err)
		return workflow.EnsureGroupsOutput{}, err
	}
	round, err := missingRound(in)
	if err != nil {
		log.Error("isolation groups keep disappearing", "error", err, "groupMissing", in.GroupMissing)
		return workflow.EnsureGroupsOutput{}, err
	}
	known, err := h.knownGroups(in, vpcs)
	if err != nil {
		log.Error("invalid input", "error", err)
		return workflow.EnsureGroupsOutput{}, err
	}

	var existing map[groupKey]types.SecurityGroup
	if fresh(in) {
		// One Describe for every VPC and name at once: the common case (groups exist) costs one call.
		existing, err = h.describeByName(ctx, vpcs, h.s.Names())
		if err != nil {
			err = steperr.FromAWS("describe isolation security groups", err)
			log.Error("describe security groups", "error", err)
			return workflow.EnsureGroupsOutput{}, err
		}
	}

	type job struct {
		vpc, name string
		role      role
		id        string
		created   bool
		foreign   string // a group with the name that is not ours (the group used has the derived name)
		err       error
	}
	var jobs []*job
	for _, vpc := range vpcs {
		jobs = append(jobs, &job{vpc: vpc, name: h.s.GroupName, role: roleIsolation})
		if h.s.Mode == ModeUntrackFirst {
			jobs = append(jobs, &job{vpc: vpc, name: h.s.UntrackGroupName(), role: roleUntrack})
		}
	}
	ch := newChanges(ensureStep, h.now)
	var wg sync.WaitGroup
	for _, j := range jobs {
		if k, ok := known[groupKey{j.vpc, j.name}]; ok {
			j.id, j.foreign = k.id, k.foreign
			continue
		}
		wg.Go(func() {
			j.id, j.created, j.foreign, j.err = h.ensureGroup(ctx, log, ch, j.vpc, j.name, j.role, existing)
		})
	}
	wg.Wait()

	out := workflow.EnsureGroupsOutput{Groups: make([]workflow.VpcGroups, 0, len(vpcs))}
	byVPC := map[string]*workflow.VpcGroups{}
	for _, vpc := range vpcs {
		out.Groups = append(out.Groups, workflow.VpcGroups{VpcID: vpc})
		byVPC[vpc] = &out.Groups[len(out.Groups)-1]
	}
	var first error
	for _, j := range jobs {
		if j.err != nil {
			log.Error("ensure security group", "vpc", j.vpc, "group", j.name, "error", j.err)
			if first == nil {
				first = j.err
			}
			continue
		}
		g := byVPC[j.vpc]
		switch j.role {
		case roleIsolation:
			g.IsolationGroupID, g.Created, g.ForeignGroupID = j.id, j.created, j.foreign
		case roleUntrack:
			g.UntrackGroupID = j.id
		}
	}
	if first != nil {
		return workflow.EnsureGroupsOutput{}, first
	}
	out.Changes = ch.list()
	out.Round = round
	log.Info("isolation security groups ready", "groups", out.Groups, "changes", len(out.Changes))
	return out, nil
}

// knownGroup is a group Validate found usable, and the foreign group that made it use the derived name.
type knownGroup struct{ id, foreign string }

// knownGroups returns the usable groups Validate found in the input's VPCs, by VPC and the role's name.
func (h *Ensure) knownGroups(in workflow.EnsureGroupsInput, vpcs []string) (map[groupKey]knownGroup, error) {
	known := map[groupKey]knownGroup{}
	if fresh(in) {
		return known, nil
	}
	if in.Record.InstanceID != in.InstanceID {
		return nil, &steperr.InvalidInput{Step: ensureStep, Reason: fmt.Sprintf("the record is of instance %q, not of %s", in.Record.InstanceID, in.InstanceID)}
	}
	for _, g := range in.Record.IsolationGroups {
		if !slices.Contains(vpcs, g.VpcID) {
			continue
		}
		for _, c := range []struct{ name, id, foreign string }{{h.s.GroupName, g.IsolationGroupID, g.ForeignGroupID}, {h.s.UntrackGroupName(), g.UntrackGroupID, ""}} {
			switch {
			case c.id == "":
			case !groupIDPattern.MatchString(c.id):
				return nil, &steperr.InvalidInput{Step: ensureStep, Reason: fmt.Sprintf("group %q of %s in the record is not a security group id", c.id, g.VpcID)}
			default:
				known[groupKey{g.VpcID, c.name}] = knownGroup{c.id, c.foreign}
			}
		}
	}
	return known, nil
}

// fresh reports whether Ensure must look every group up rather than trust the record's: without a record (an
// older input); on a retry or a redrive (the first run may have created some); after Apply found a group gone
// (GroupMissing: the record's groups, and an earlier Ensure's, may be deleted).
func fresh(in workflow.EnsureGroupsInput) bool {
	return in.Record == nil || in.Again() || in.GroupMissing != nil
}

// MaxMissingRounds bounds the Apply -> Ensure loop of one execution when its groups keep disappearing (someone,
// or an automation, deleting them as fast as they are made): past it the step fails rather than loop.
const MaxMissingRounds = 3

// missingRound numbers this run of Ensure after a GroupMissing (0 on the normal path), refusing past
// MaxMissingRounds with an AWSError, which the state machine does not retry.
func missingRound(in workflow.EnsureGroupsInput) (int, error) {
	if in.GroupMissing == nil {
		return 0, nil
	}
	round := 1
	if in.Previous != nil {
		round = in.Previous.Round + 1
	}
	if round > MaxMissingRounds {
		return round, &steperr.AWSError{Op: ensureStep, Err: fmt.Errorf(
			"the isolation groups of %s keep disappearing: deleted again after %d rounds of Ensure and Apply (last: %s); "+
				"find what deletes them (CloudTrail DeleteSecurityGroup), then redrive", in.InstanceID, MaxMissingRounds, in.GroupMissing.Cause)}
	}
	return round, nil
}

// checkEnsureInput returns the input's VPCs without repeats, in input order.
func checkEnsureInput(in workflow.EnsureGroupsInput) ([]string, error) {
	const step = ensureStep
	if in.InstanceID == "" {
		return nil, &steperr.InvalidInput{Step: step, Reason: "instanceId is empty"}
	}
	if len(in.VpcIDs) == 0 {
		return nil, &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf("vpcIds of instance %s is empty", in.InstanceID)}
	}
	var vpcs []string
	seen := map[string]bool{}
	for _, v := range in.VpcIDs {
		if !vpcIDPattern.MatchString(v) {
			return nil, &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf("%q is not a VPC id", v)}
		}
		if !seen[v] {
			seen[v] = true
			vpcs = append(vpcs, v)
		}
	}
	return vpcs, nil
}

type groupKey struct{ vpc, name string }

// describeByName returns the groups with one of names in one of vpcs.
func (h *Ensure) describeByName(ctx context.Context, vpcs, names []string) (map[groupKey]types.SecurityGroup, error) {
	found := map[groupKey]types.SecurityGroup{}
	p := ec2.NewDescribeSecurityGroupsPaginator(h.ec2, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: vpcs},
		{Name: aws.String("group-name"), Values: names},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, sg := range page.SecurityGroups {
			found[groupKey{aws.ToString(sg.VpcId), aws.ToString(sg.GroupName)}] = sg
		}
	}
	return found, nil
}

// ensureGroup returns the id of the group of role r named name in vpc, with the rules its role needs, creating
// it when existing (the groups as described; nil when not described) lacks it. When a group that is not ours
// (not tagged managed) holds the name, it is never used nor changed: the VPC gets a group of ours under the
// derived name instead (DerivedName: deterministic, so that concurrent executions converge on one group), and
// foreign names the other group.
func (h *Ensure) ensureGroup(ctx context.Context, log *slog.Logger, ch *changes, vpc, name string, r role, existing map[groupKey]types.SecurityGroup) (id string, created bool, foreign string, err error) {
	id, created, err = h.ensureNamed(ctx, log, ch, vpc, name, r, existing)
	var nm *notManaged
	if !errors.As(err, &nm) {
		return id, created, "", err
	}
	foreign = nm.id
	derived := DerivedName(name)
	log.Warn("a group that is not ec2-isolation's has the group's name: using a group of ours under the derived name",
		"vpc", vpc, "foreignGroup", foreign, "name", name, "derivedName", derived)
	id, created, err = h.ensureNamed(ctx, log, ch, vpc, derived, r, existing)
	if errors.As(err, &nm) {
		err = &steperr.ConfigError{Reason: fmt.Sprintf(
			"security groups %s (%s) and %s (%s) in %s are not ec2-isolation's (no tag %s=true) but carry the names it uses: "+
				"rename one of them, or tag it if it is meant to be the isolation group", foreign, name, nm.id, derived, vpc, TagManaged)}
	}
	return id, created, foreign, err
}

// notManaged: the group with the name is not ours.
type notManaged struct{ id string }

func (e *notManaged) Error() string {
	return "security group " + e.id + " is not managed by ec2-isolation"
}

// ensureNamed is ensureGroup for one name; a group of that name that is not ours is a *notManaged error.
func (h *Ensure) ensureNamed(ctx context.Context, log *slog.Logger, ch *changes, vpc, name string, r role, existing map[groupKey]types.SecurityGroup) (string, bool, error) {
	log = log.With("vpc", vpc, "group", name)
	var sg *types.SecurityGroup
	if g, found := existing[groupKey{vpc, name}]; found {
		sg = &g
	}
	if sg == nil {
		id, err := h.create(ctx, vpc, name, r)
		switch {
		case steperr.Code(err) == "InvalidGroup.Duplicate":
			// The name is taken: by another execution since, or by a group Validate could not use as it is.
			log.Info("a group with this name exists; using it")
			if sg, err = h.lookUp(ctx, vpc, name); err != nil {
				return "", false, err
			}
		case err != nil:
			return "", false, steperr.FromAWS(fmt.Sprintf("create security group %s in %s", name, vpc), err)
		default:
			log.Info("created security group", "groupId", id)
			ch.add(id, "CreateSecurityGroup", fmt.Sprintf("created the %s group %s in %s", r, name, vpc))
			if err := h.setUpNew(ctx, log, ch, vpc, name, id, r); err != nil {
				return "", false, err
			}
			return id, true, nil
		}
	}
	id := aws.ToString(sg.GroupId)
	if !Managed(sg) {
		// The roles may change only groups this product created (tag condition): never empty someone else's group.
		return "", false, &notManaged{id: id}
	}
	if err := h.converge(ctx, log, ch, vpc, name, id, r, sg); err != nil {
		return "", false, err
	}
	return id, false, nil
}

// setUpNew gives a group this run just created the rules of its role, by its id, without describing it: EC2
// creates a group with no inbound rule and one outbound rule to everywhere, 0.0.0.0/0 (and ::/0 in a VPC with an
// IPv6 CIDR). Each rule gets its own call, all at once: a request naming a rule the group lacks fails whole
// (InvalidPermission.NotFound, InvalidPermission.Duplicate), and here such an answer means the rule is already as
// wanted. A new group may be unknown to EC2 for a moment (eventual consistency): each call is retried then.
func (h *Ensure) setUpNew(ctx context.Context, log *slog.Logger, ch *changes, vpc, name, id string, r role) error {
	all := missingAllowAll(nil) // the all-traffic rules: [0.0.0.0/0, ::/0]
	type call struct {
		action string
		perm   []types.IpPermission
		do     func(perm []types.IpPermission) (unknown int, err error)
		absent string // the error code that says the rule is already as wanted
	}
	revokeEgress := func(perm []types.IpPermission) (int, error) {
		out, err := h.ec2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: perm})
		if err != nil {
			return 0, err
		}
		return len(out.UnknownIpPermissions), nil
	}
	authorizeIngress := func(perm []types.IpPermission) (int, error) {
		_, err := h.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perm})
		return 0, err
	}
	authorizeEgress := func(perm []types.IpPermission) (int, error) {
		_, err := h.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: perm})
		return 0, err
	}
	var calls []call
	if r == roleUntrack {
		calls = []call{
			// A new group has no inbound rule, so Duplicate means this run's own earlier attempt (its answer
			// lost, the SDK retried) added both rules: the request is all or nothing.
			{"AuthorizeSecurityGroupIngress", all, authorizeIngress, "InvalidPermission.Duplicate"},
			{"AuthorizeSecurityGroupEgress", all[1:], authorizeEgress, "InvalidPermission.Duplicate"},
		}
	} else {
		calls = []call{
			{"RevokeSecurityGroupEgress", all[:1], revokeEgress, "InvalidPermission.NotFound"},
			{"RevokeSecurityGroupEgress", all[1:], revokeEgress, "InvalidPermission.NotFound"},
		}
	}
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			errs[i] = h.whenVisible(ctx, vpc, name, func() error {
				unknown, err := c.do(c.perm)
				switch {
				case c.absent != "" && steperr.Code(err) == c.absent, err == nil && unknown > 0:
					return nil // already as wanted
				case err != nil:
					return err
				}
				ch.add(id, c.action, fmt.Sprintf("%s all traffic %s %s", verb(c.action), direction(c.action), peers(c.perm)))
				log.Info("set the rules of the new group", "groupId", id, "action", c.action, "rules", peers(c.perm))
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		var nv *steperr.GroupNotVisible
		switch {
		case err == nil:
		case errors.As(err, &nv):
			return err
		default:
			return steperr.FromAWS(fmt.Sprintf("%s on the new security group %s (%s) in %s", calls[i].action, id, name, vpc), err)
		}
	}
	return nil
}

// whenVisible runs call, again while EC2 answers InvalidGroup.NotFound for a group just created (bounded by Wait;
// then steperr.GroupNotVisible, which the state machine retries longer).
func (h *Ensure) whenVisible(ctx context.Context, vpc, name string, call func() error) error {
	for attempt := 0; ; attempt++ {
		err := call()
		if steperr.Code(err) != "InvalidGroup.NotFound" {
			return err
		}
		if attempt+1 >= h.Wait.Attempts {
			return &steperr.GroupNotVisible{VpcID: vpc, GroupName: name}
		}
		if err := h.Wait.sleep(ctx, attempt); err != nil {
			return &steperr.Transient{Op: "wait for security group " + name, Err: err}
		}
	}
}

func verb(action string) string {
	if strings.HasPrefix(action, "Revoke") {
		return "revoked"
	}
	return "authorized"
}

func direction(action string) string {
	if strings.HasSuffix(action, "Egress") {
		return "to"
	}
	return "from"
}

// peers names the rules' peers: "0.0.0.0/0, ::/0".
func peers(perms []types.IpPermission) string {
	var out []string
	for _, p := range singlePeer(perms) {
		out = append(out, PeerNames(p)...)
	}
	return strings.Join(out, ", ")
}

// PeerNames names each peer of one rule: its CIDRs, prefix lists and groups.
func PeerNames(p types.IpPermission) []string {
	var out []string
	for _, r := range p.IpRanges {
		out = append(out, aws.ToString(r.CidrIp))
	}
	for _, r := range p.Ipv6Ranges {
		out = append(out, aws.ToString(r.CidrIpv6))
	}
	for _, r := range p.PrefixListIds {
		out = append(out, aws.ToString(r.PrefixListId))
	}
	for _, r := range p.UserIdGroupPairs {
		out = append(out, aws.ToString(r.GroupId))
	}
	return out
}

// Managed reports whether the group carries the tag this product puts on the groups it creates (the roles may
// change only such groups).
func Managed(sg *types.SecurityGroup) bool {
	for _, t := range sg.Tags {
		if aws.ToString(t.Key) == TagManaged && aws.ToString(t.Value) == "true" {
			return true
		}
	}
	return false
}

func (h *Ensure) create(ctx context.Context, vpc, name string, r role) (string, error) {
	desc := isolationDescription
	if r == roleUntrack {
		desc = untrackDescription
	}
	out, err := h.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(name),
		Description: aws.String(desc),
		VpcId:       aws.String(vpc),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeSecurityGroup,
			Tags: []types.Tag{
				{Key: aws.String(TagManaged), Value: aws.String("true")},
				{Key: aws.String(TagRole), Value: aws.String(string(r))},
				{Key: aws.String("Name"), Value: aws.String(name)},
			},
		}},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.GroupId), nil
}

// lookUp finds the group by name, waiting (bounded) for a group another execution just created to become visible.
func (h *Ensure) lookUp(ctx context.Context, vpc, name string) (*types.SecurityGroup, error) {
	for attempt := 0; ; attempt++ {
		found, err := h.describeByName(ctx, []string{vpc}, []string{name})
		if err != nil && steperr.Code(err) != "InvalidGroup.NotFound" {
			return nil, steperr.FromAWS(fmt.Sprintf("look up security group %s in %s", name, vpc), err)
		}
		if sg, ok := found[groupKey{vpc, name}]; ok {
			return &sg, nil
		}
		if attempt+1 >= h.Wait.Attempts {
			return nil, &steperr.GroupNotVisible{VpcID: vpc, GroupName: name}
		}
		if err := h.Wait.sleep(ctx, attempt); err != nil {
			return nil, &steperr.Transient{Op: "wait for security group " + name, Err: err}
		}
	}
}

// describeByID returns the group, or nil when EC2 does not know it yet (a new group).
func (h *Ensure) describeByID(ctx context.Context, id string) (*types.SecurityGroup, error) {
	out, err := h.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if steperr.Code(err) == "InvalidGroup.NotFound" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, sg := range out.SecurityGroups {
		if aws.ToString(sg.GroupId) == id {
			return &sg, nil
		}
	}
	return nil, nil
}

// errAgain marks an answer that a fresh Describe and another try resolve: the group is not visible yet
// (InvalidGroup.NotFound), or a concurrent execution changed its rules first (InvalidPermission.NotFound,
// InvalidPermission.Duplicate, or rules EC2 reported unknown).
var errAgain = errors.New("state changed; describe again")

func again(err error) error {
	switch steperr.Code(err) {
	case "InvalidGroup.NotFound", "InvalidPermission.NotFound", "InvalidPermission.Duplicate":
		return fmt.Errorf("%w: %w", errAgain, err)
	}
	return err
}

// converge brings the rules of an existing group to what its role needs, starting from sg as described (and
// describing it again after a concurrent change).
func (h *Ensure) converge(ctx context.Context, log *slog.Logger, ch *changes, vpc, name, id string, r role, sg *types.SecurityGroup) error {
	var last error
	for attempt := 0; ; attempt++ {
		if sg == nil {
			var err error
			if sg, err = h.describeByID(ctx, id); err != nil {
				return steperr.FromAWS(fmt.Sprintf("describe security group %s (%s)", id, name), err)
			}
		}
		if sg != nil {
			var err error
			if r == roleUntrack {
				err = h.allowAll(ctx, log, ch, id, sg)
			} else {
				err = h.empty(ctx, log, ch, id, sg)
			}
			if err == nil {
				return nil
			}
			if !errors.Is(err, errAgain) {
				return steperr.FromAWS(fmt.Sprintf("set the rules of security group %s (%s) in %s", id, name, vpc), err)
			}
			last = err
			log.Info("retrying security group rules", "groupId", id, "reason", err)
		}
		if attempt+1 >= h.Wait.Attempts {
			if sg == nil || steperr.Code(last) == "InvalidGroup.NotFound" {
				return &steperr.GroupNotVisible{VpcID: vpc, GroupName: name}
			}
			return &steperr.Transient{Op: fmt.Sprintf("set the rules of security group %s (%s) in %s", id, name, vpc), Err: last}
		}
		if err := h.Wait.sleep(ctx, attempt); err != nil {
			return &steperr.Transient{Op: "wait for security group " + id, Err: err}
		}
		sg = nil
	}
}

// empty revokes every rule of the isolation group: what CreateSecurityGroup added by default (all egress), and
// anything someone added since.
func (h *Ensure) empty(ctx context.Context, log *slog.Logger, ch *changes, id string, sg *types.SecurityGroup) error {
	if perms := singlePeer(sg.IpPermissions); len(perms) > 0 {
		out, err := h.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms})
		if err != nil {
			return again(err)
		}
		log.Info("revoked ingress rules", "groupId", id, "rules", len(perms))
		ch.add(id, "RevokeSecurityGroupIngress", "revoked inbound rules from "+peers(perms))
		if len(out.UnknownIpPermissions) > 0 {
			return fmt.Errorf("%w: %d ingress rules unknown to EC2", errAgain, len(out.UnknownIpPermissions))
		}
	}
	if perms := singlePeer(sg.IpPermissionsEgress); len(perms) > 0 {
		out, err := h.ec2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: perms})
		if err != nil {
			return again(err)
		}
		log.Info("revoked egress rules", "groupId", id, "rules", len(perms))
		ch.add(id, "RevokeSecurityGroupEgress", "revoked outbound rules to "+peers(perms))
		if len(out.UnknownIpPermissions) > 0 {
			return fmt.Errorf("%w: %d egress rules unknown to EC2", errAgain, len(out.UnknownIpPermissions))
		}
	}
	return nil
}

// allowAll adds the all-traffic rules from and to 0.0.0.0/0 and ::/0 that the untrack group lacks. Other rules
// it may have are harmless: the group already allows everything.
func (h *Ensure) allowAll(ctx context.Context, log *slog.Logger, ch *changes, id string, sg *types.SecurityGroup) error {
	if perms := missingAllowAll(sg.IpPermissions); len(perms) > 0 {
		if _, err := h.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms}); err != nil {
			return again(err)
		}
		log.Info("authorized allow-all ingress", "groupId", id, "rules", len(perms))
		ch.add(id, "AuthorizeSecurityGroupIngress", "authorized all traffic from "+peers(perms))
	}
	if perms := missingAllowAll(sg.IpPermissionsEgress); len(perms) > 0 {
		if _, err := h.ec2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: perms}); err != nil {
			return again(err)
		}
		log.Info("authorized allow-all egress", "groupId", id, "rules", len(perms))
		ch.add(id, "AuthorizeSecurityGroupEgress", "authorized all traffic to "+peers(perms))
	}
	return nil
}
