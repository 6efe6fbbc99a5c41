package sim

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

func (a *Account) groupArn(id string) string {
	return fmt.Sprintf("arn:%s:ec2:%s:%s:security-group/%s", Partition(a.region), a.region, a.id, id)
}

// permissions groups a group's rules into IpPermissions as EC2 describes them: one per (protocol, ports).
func (a *Account) permissions(rules []*sgRule) []xIPPermission {
	var out []xIPPermission
	index := map[string]int{}
	for _, r := range rules {
		key := fmt.Sprintf("%s/%d/%d", r.protocol, r.from, r.to)
		i, seen := index[key]
		if !seen {
			p := xIPPermission{IPProtocol: r.protocol}
			if r.protocol != "-1" {
				from, to := r.from, r.to
				p.FromPort, p.ToPort = &from, &to
			}
			out = append(out, p)
			i = len(out) - 1
			index[key] = i
		}
		p := &out[i]
		switch {
		case r.cidr != "":
			p.IPRanges = append(p.IPRanges, xIPRange{CidrIP: r.cidr, Description: r.desc})
		case r.cidr6 != "":
			p.IPv6Ranges = append(p.IPv6Ranges, xIPv6Range{CidrIPv6: r.cidr6, Description: r.desc})
		case r.peerSG != "":
			p.Groups = append(p.Groups, xUserIDGroupPair{UserID: a.id, GroupID: r.peerSG, Description: r.desc})
		case r.prefixList != "":
			p.PrefixLists = append(p.PrefixLists, xPrefixListID{PrefixListID: r.prefixList, Description: r.desc})
		}
	}
	return out
}

func (a *Account) groupXML(g *secGroup) xSecurityGroup {
	return xSecurityGroup{OwnerID: a.id, GroupID: g.id, GroupName: g.name, GroupDescription: g.desc, VpcID: g.vpcID,
		SecurityGroupArn: a.groupArn(g.id), Ingress: a.permissions(g.ingress), Egress: a.permissions(g.egress),
		Tags: tagList(a.tags[g.id])}
}

// visibleGroup returns a group known to EC2 now: a new group is unknown for GroupVisibilityDelay
// (eventual consistency, https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html).
func (a *Account) visibleGroup(id string) (*secGroup, *apiError) {
	g := a.groups.get(id)
	if g == nil || !g.visible(a.clock.Now()) {
		if !wellFormed("sg", id) {
			return nil, errf(400, "InvalidGroupId.Malformed", "Invalid id: %q (expecting \"sg-...\")", id)
		}
		return nil, errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	return g, nil
}

func describeSecurityGroups(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("GroupId")
	for _, id := range ids {
		if _, err := a.visibleGroup(id); err != nil {
			return nil, err
		}
	}
	names := req.p.strs("GroupName")
	if len(names) > 0 {
		// GroupName.N names groups of the default VPC only; in a VPC use the group-name filter
		// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSecurityGroups.html).
		return nil, errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC 'none'", names[0])
	}
	if req.dryRun {
		return nil, nil
	}
	now := a.clock.Now()
	out := &describeSecurityGroupsOut{}
	filters := req.p.filters() // parsed once, not per resource
	for _, g := range a.groups.all() {
		if !g.visible(now) || (len(ids) > 0 && !slices.Contains(ids, g.id)) {
			continue
		}
		match, err := matchFilters(filters, a.tags[g.id], func(name string) ([]string, bool) {
			switch name {
			case "group-id":
				return []string{g.id}, true
			case "group-name":
				return []string{g.name}, true
			case "vpc-id":
				return []string{g.vpcID}, true
			case "description":
				return []string{g.desc}, true
			case "owner-id":
				return []string{a.id}, true
			case "ip-permission.cidr":
				return ruleValues(g.ingress, func(r *sgRule) string { return r.cidr }), true
			case "ip-permission.ipv6-cidr":
				return ruleValues(g.ingress, func(r *sgRule) string { return r.cidr6 }), true
			case "ip-permission.protocol":
				return ruleValues(g.ingress, func(r *sgRule) string { return r.protocol }), true
			case "ip-permission.group-id":
				return ruleValues(g.ingress, func(r *sgRule) string { return r.peerSG }), true
			case "egress.ip-permission.cidr":
				return ruleValues(g.egress, func(r *sgRule) string { return r.cidr }), true
			case "egress.ip-permission.ipv6-cidr":
				return ruleValues(g.egress, func(r *sgRule) string { return r.cidr6 }), true
			case "egress.ip-permission.protocol":
				return ruleValues(g.egress, func(r *sgRule) string { return r.protocol }), true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if match {
			out.SecurityGroups = append(out.SecurityGroups, a.groupXML(g))
		}
	}
	return out, nil
}

func ruleValues(rules []*sgRule, f func(*sgRule) string) []string {
	var out []string
	for _, r := range rules {
		if v := f(r); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func createSecurityGroup(a *Account, req *request) (any, *apiError) {
	name, desc, vpcID := req.p.str("GroupName"), req.p.str("GroupDescription"), req.p.str("VpcId")
	switch {
	case name == "":
		return nil, errf(400, "MissingParameter", "The request must contain the parameter groupName")
	case desc == "":
		return nil, errf(400, "MissingParameter", "The request must contain the parameter groupDescription")
	case len(name) > 255 || len(desc) > 255:
		return nil, errf(400, "InvalidParameterValue", "Group name and description must be at most 255 characters")
	case strings.HasPrefix(name, "sg-"):
		return nil, errf(400, "InvalidParameterValue", "Group names may not be in the format sg-*.")
	case name == "default":
		return nil, errf(400, "InvalidParameterValue", "Invalid value 'default' for groupName. Reserved name.")
	case vpcID == "":
		// No default VPC in the simulated account.
		return nil, errf(400, "VPCIdNotSpecified", "No default VPC for this user")
	}
	if err := lookupIDs([]string{vpcID}, "vpc", "InvalidVpcID", "vpc", func(id string) bool { return a.vpcs.get(id) != nil }); err != nil {
		return nil, err
	}
	// Names are unique per VPC; a group still invisible to Describe exists all the same. Message as EC2's
	// (github.com/hashicorp/terraform/issues/15428).
	if a.groupByName(vpcID, name) != nil {
		return nil, errf(400, "InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpcID)
	}
	tags := req.p.tagSpecs("security-group")
	if req.dryRun {
		return nil, nil
	}
	g := a.newGroup(vpcID, name, desc)
	a.setTags(g.id, tags)
	return &createSecurityGroupOut{GroupID: g.id, SecurityGroupArn: a.groupArn(g.id), Tags: tagList(tags)}, nil
}

func deleteSecurityGroup(a *Account, req *request) (any, *apiError) {
	id := req.p.str("GroupId")
	if id == "" {
		if req.p.str("GroupName") != "" {
			return nil, errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC 'none'", req.p.str("GroupName"))
		}
		return nil, errf(400, "MissingParameter", "The request must contain the parameter groupId")
	}
	g, err := a.visibleGroup(id)
	if err != nil {
		return nil, err
	}
	if g.name == "default" {
		return nil, errf(400, "CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", id)
	}
	for _, e := range a.enis.all() {
		if slices.Contains(e.groups, id) {
			return nil, errf(400, "DependencyViolation", "resource %s has a dependent object", id)
		}
	}
	for _, o := range a.groups.all() {
		if o.id == id {
			continue
		}
		for _, r := range append(slices.Clone(o.ingress), o.egress...) {
			if r.peerSG == id {
				return nil, errf(400, "DependencyViolation", "resource %s has a dependent object", id)
			}
		}
	}
	if req.dryRun {
		return nil, nil
	}
	a.groups.del(id)
	a.untag(id)
	return &deleteSecurityGroupOut{Return: true, GroupID: id}, nil
}

// protocolName normalises an IpProtocol as EC2 stores it.
func protocolName(p string) (string, *apiError) {
	switch strings.ToLower(p) {
	case "-1", "all":
		return "-1", nil
	case "tcp", "6":
		return "tcp", nil
	case "udp", "17":
		return "udp", nil
	case "icmp", "1":
		return "icmp", nil
	case "icmpv6", "58":
		return "icmpv6", nil
	}
	if n, err := strconv.Atoi(p); err == nil && n >= 0 && n <= 255 {
		return p, nil
	}
	return "", errf(400, "InvalidParameterValue", "Invalid value '%s' for IP protocol. Unknown protocol.", p)
}

// rulesFromPermissions turns IpPermissions.N of a request into rules (one per range or group).
func (a *Account) rulesFromPermissions(req *request, egress bool) ([]*sgRule, *apiError) {
	var out []*sgRule
	perms := req.p.list("IpPermissions")
	if len(perms) == 0 && req.p.str("IpProtocol") != "" {
		return nil, errf(400, "InvalidParameterCombination", "Use IpPermissions to specify the rules")
	}
	for _, p := range perms {
		proto, err := protocolName(p.str("IpProtocol"))
		if err != nil {
			return nil, err
		}
		var from, to int32 = -1, -1
		if proto != "-1" {
			if !p.has("FromPort") || !p.has("ToPort") {
				if proto == "tcp" || proto == "udp" {
					return nil, errf(400, "InvalidParameterValue", "Invalid value 'null' for portRange. Must specify both from and to ports with TCP/UDP.")
				}
			}
			f, e1 := strconv.Atoi(p.str("FromPort"))
			t, e2 := strconv.Atoi(p.str("ToPort"))
			if p.has("FromPort") && (e1 != nil || e2 != nil) {
				return nil, errf(400, "InvalidParameterValue", "Invalid port range")
			}
			if p.has("FromPort") {
				from, to = int32(f), int32(t)
			}
			if (proto == "tcp" || proto == "udp") && (from < 0 || to > 65535 || from > to) {
				return nil, errf(400, "InvalidParameterValue", "Invalid TCP/UDP port range %d-%d", from, to)
			}
		}
		n := 0
		for _, r := range p.list("IpRanges") {
			c := r.str("CidrIp")
			pfx, perr := netip.ParsePrefix(c)
			if perr != nil || !pfx.Addr().Is4() {
				return nil, errf(400, "InvalidParameterValue", "CIDR block %s is malformed", c)
			}
			out = append(out, &sgRule{egress: egress, protocol: proto, from: from, to: to, cidr: pfx.Masked().String(), desc: r.str("Description")})
			n++
		}
		for _, r := range p.list("Ipv6Ranges") {
			c := r.str("CidrIpv6")
			pfx, perr := netip.ParsePrefix(c)
			if perr != nil || !pfx.Addr().Is6() {
				return nil, errf(400, "InvalidParameterValue", "CIDR block %s is malformed", c)
			}
			out = append(out, &sgRule{egress: egress, protocol: proto, from: from, to: to, cidr6: pfx.Masked().String(), desc: r.str("Description")})
			n++
		}
		for _, r := range p.list("Groups") {
			gid := r.str("GroupId")
			if _, err := a.visibleGroup(gid); err != nil {
				return nil, err
			}
			out = append(out, &sgRule{egress: egress, protocol: proto, from: from, to: to, peerSG: gid, desc: r.str("Description")})
			n++
		}
		// IpPermissions.N.PrefixListIds.M.PrefixListId (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpPermission.html).
		// The simulated account has no prefix list resources: a well-formed id is taken as existing.
		for _, r := range p.list("PrefixListIds") {
			pl := r.str("PrefixListId")
			if !wellFormed("pl", pl) {
				return nil, errf(400, "InvalidPrefixListId.Malformed", "Invalid id: %q (expecting \"pl-...\")", pl)
			}
			out = append(out, &sgRule{egress: egress, protocol: proto, from: from, to: to, prefixList: pl, desc: r.str("Description")})
			n++
		}
		if n == 0 {
			return nil, errf(400, "InvalidParameterValue", "The request must specify an IP range, an IPv6 range, a security group or a prefix list for each permission")
		}
	}
	return out, nil
}

func sameRule(x, y *sgRule) bool {
	ports := x.protocol == "-1" || (x.from == y.from && x.to == y.to)
	return x.egress == y.egress && x.protocol == y.protocol && ports &&
		x.cidr == y.cidr && x.cidr6 == y.cidr6 && x.peerSG == y.peerSG && x.prefixList == y.prefixList
}

// ruleText describes a rule as EC2's InvalidPermission.Duplicate messages do
// ("the specified rule \"peer: sg-…, TCP, from port: 0, to port: 65535, ALLOW\" already exists",
// github.com/ansible/ansible/issues/19759).
func ruleText(r *sgRule) string {
	peer := r.cidr + r.cidr6 + r.peerSG + r.prefixList
	if r.protocol == "-1" {
		return fmt.Sprintf("peer: %s, ALL, ALLOW", peer)
	}
	return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", peer, strings.ToUpper(r.protocol), r.from, r.to)
}

func authorizeIngress(a *Account, req *request) (any, *apiError) { return authorize(a, req, false) }
func authorizeEgress(a *Account, req *request) (any, *apiError)  { return authorize(a, req, true) }

func authorize(a *Account, req *request, egress bool) (any, *apiError) {
	id := req.p.str("GroupId")
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter groupId")
	}
	g, err := a.visibleGroup(id)
	if err != nil {
		return nil, err
	}
	rules, err := a.rulesFromPermissions(req, egress)
	if err != nil {
		return nil, err
	}
	existing := g.ingress
	if egress {
		existing = g.egress
	}
	for i, r := range rules {
		dup := slices.ContainsFunc(existing, func(e *sgRule) bool { return sameRule(e, r) }) ||
			slices.ContainsFunc(rules[:i], func(e *sgRule) bool { return sameRule(e, r) })
		if dup {
			return nil, errf(400, "InvalidPermission.Duplicate", "the specified rule \"%s\" already exists", ruleText(r))
		}
	}
	if len(existing)+len(rules) > 60 {
		return nil, errf(400, "RulesPerSecurityGroupLimitExceeded", "The maximum number of rules per security group has been reached.")
	}
	if req.dryRun {
		return nil, nil
	}
	out := &authorizeOut{Return: true}
	for _, r := range rules {
		r.id = a.newID("sgr")
		x := xSecurityGroupRule{SecurityGroupRuleID: r.id, GroupID: g.id, GroupOwnerID: a.id, IsEgress: egress,
			IPProtocol: r.protocol, FromPort: r.from, ToPort: r.to, CidrIPv4: r.cidr, CidrIPv6: r.cidr6,
			Description: r.desc, SecurityGroupRuleArn: fmt.Sprintf("arn:%s:ec2:%s:%s:security-group-rule/%s", Partition(a.region), a.region, a.id, r.id)}
		if r.peerSG != "" {
			x.ReferencedGroupInfo = &xReferencedGroup{GroupID: r.peerSG, UserID: a.id}
		}
		x.PrefixListID = r.prefixList
		out.Rules = append(out.Rules, x)
	}
	if egress {
		g.egress = append(g.egress, rules...)
	} else {
		g.ingress = append(g.ingress, rules...)
	}
	return out, nil
}

func revokeIngress(a *Account, req *request) (any, *apiError) { return revoke(a, req, false) }
func revokeEgress(a *Account, req *request) (any, *apiError)  { return revoke(a, req, true) }

// revoke removes rules given by properties or by SecurityGroupRuleId.N. A rule that does not exist fails the
// whole request with InvalidPermission.NotFound "The specified rule does not exist in this security group.", as
// in a non-default VPC (API_RevokeSecurityGroupEgress: only "for a default VPC" are unmatched values ignored and
// returned in unknownIpPermissionSet; current behaviour in github.com/piyushsonigra/aws_ipadd/issues/10 and, in
// a custom VPC, github.com/hashicorp/terraform/issues/17042). The simulated account has no default VPC.
func revoke(a *Account, req *request, egress bool) (any, *apiError) {
	id := req.p.str("GroupId")
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter groupId")
	}
	g, err := a.visibleGroup(id)
	if err != nil {
		return nil, err
	}
	existing := g.ingress
	if egress {
		existing = g.egress
	}
	var remove []*sgRule
	for _, rid := range req.p.strs("SecurityGroupRuleId") {
		i := slices.IndexFunc(existing, func(r *sgRule) bool { return r.id == rid })
		if i < 0 {
			return nil, errf(400, "InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '%s' does not exist", rid)
		}
		remove = append(remove, existing[i])
	}
	rules, err := a.rulesFromPermissions(req, egress)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		i := slices.IndexFunc(existing, func(e *sgRule) bool { return sameRule(e, r) })
		if i < 0 {
			return nil, errf(400, "InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
		}
		remove = append(remove, existing[i])
	}
	if len(remove) == 0 {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter ipPermissions or securityGroupRuleIds")
	}
	if req.dryRun {
		return nil, nil
	}
	out := &revokeOut{Return: true}
	for _, r := range remove {
		out.Revoked = append(out.Revoked, xRevokedRule{SecurityGroupRuleID: r.id, GroupID: g.id, IsEgress: egress,
			IPProtocol: r.protocol, FromPort: r.from, ToPort: r.to, CidrIPv4: r.cidr, CidrIPv6: r.cidr6,
			ReferencedGroupID: r.peerSG, PrefixListID: r.prefixList, Description: r.desc})
	}
	keep := slices.DeleteFunc(slices.Clone(existing), func(e *sgRule) bool { return slices.Contains(remove, e) })
	if egress {
		g.egress = keep
	} else {
		g.ingress = keep
	}
	return out, nil
}
