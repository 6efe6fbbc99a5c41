package secgroup

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const (
	anyIPv4 = "0.0.0.0/0"
	anyIPv6 = "::/0"
)

// singlePeer rewrites rules as DescribeSecurityGroups reports them (one IpPermission may carry several peers,
// with descriptions) into one permission per peer, which is the form Revoke accepts without ambiguity.
func singlePeer(perms []types.IpPermission) []types.IpPermission {
	var out []types.IpPermission
	base := func(p types.IpPermission) types.IpPermission {
		return types.IpPermission{IpProtocol: p.IpProtocol, FromPort: p.FromPort, ToPort: p.ToPort}
	}
	for _, p := range perms {
		for _, r := range p.IpRanges {
			q := base(p)
			q.IpRanges = []types.IpRange{{CidrIp: r.CidrIp}}
			out = append(out, q)
		}
		for _, r := range p.Ipv6Ranges {
			q := base(p)
			q.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: r.CidrIpv6}}
			out = append(out, q)
		}
		for _, r := range p.PrefixListIds {
			q := base(p)
			q.PrefixListIds = []types.PrefixListId{{PrefixListId: r.PrefixListId}}
			out = append(out, q)
		}
		for _, r := range p.UserIdGroupPairs {
			q := base(p)
			q.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: r.GroupId, UserId: r.UserId}}
			out = append(out, q)
		}
	}
	return out
}

// missingAllowAll returns the all-traffic rules to 0.0.0.0/0 and ::/0 that perms lacks.
func missingAllowAll(perms []types.IpPermission) []types.IpPermission {
	var v4, v6 bool
	for _, p := range perms {
		if aws.ToString(p.IpProtocol) != "-1" {
			continue
		}
		for _, r := range p.IpRanges {
			v4 = v4 || aws.ToString(r.CidrIp) == anyIPv4
		}
		for _, r := range p.Ipv6Ranges {
			v6 = v6 || aws.ToString(r.CidrIpv6) == anyIPv6
		}
	}
	var out []types.IpPermission
	if !v4 {
		out = append(out, types.IpPermission{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String(anyIPv4)}}})
	}
	if !v6 {
		out = append(out, types.IpPermission{IpProtocol: aws.String("-1"), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String(anyIPv6)}}})
	}
	return out
}
