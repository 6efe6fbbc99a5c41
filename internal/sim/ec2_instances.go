package sim

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ec2Handlers are the EC2 actions served.
var ec2Handlers map[string]handler

func init() {
	ec2Handlers = map[string]handler{
		"DescribeInstances":                      describeInstances,
		"DescribeInstanceAttribute":              describeInstanceAttribute,
		"ModifyInstanceAttribute":                modifyInstanceAttribute,
		"DescribeNetworkInterfaces":              describeNetworkInterfaces,
		"ModifyNetworkInterfaceAttribute":        modifyNetworkInterfaceAttribute,
		"DescribeVpcs":                           describeVpcs,
		"DescribeSubnets":                        describeSubnets,
		"DescribeVolumes":                        describeVolumes,
		"CreateTags":                             createTags,
		"DescribeSecurityGroups":                 describeSecurityGroups,
		"CreateSecurityGroup":                    createSecurityGroup,
		"DeleteSecurityGroup":                    deleteSecurityGroup,
		"AuthorizeSecurityGroupIngress":          authorizeIngress,
		"AuthorizeSecurityGroupEgress":           authorizeEgress,
		"RevokeSecurityGroupIngress":             revokeIngress,
		"RevokeSecurityGroupEgress":              revokeEgress,
		"DescribeIamInstanceProfileAssociations": describeAssociations,
		"AssociateIamInstanceProfile":            associateProfile,
		"DisassociateIamInstanceProfile":         disassociateProfile,
		"ReplaceIamInstanceProfileAssociation":   replaceAssociation,
		"CreateSnapshots":                        createSnapshots,
		"DeleteSnapshot":                         deleteSnapshot,
		"DescribeSnapshots":                      describeSnapshots,
	}
}

var longID = regexp.MustCompile(`^[a-z]+(-[a-z]+)*-([0-9a-f]{8}|[0-9a-f]{17})$`)

// wellFormed tells whether id looks like an EC2 id of that prefix ("i" -> i-0123abcd or i-0123456789abcdef0).
func wellFormed(prefix, id string) bool {
	return strings.HasPrefix(id, prefix+"-") && longID.MatchString(id)
}

// lookupIDs resolves ids of one resource kind the way EC2 reports problems: a malformed id first
// (<Kind>.Malformed), then every unknown one (<Kind>.NotFound).
func lookupIDs(ids []string, prefix, codeKind, noun string, exists func(string) bool) *apiError {
	var missing []string
	for _, id := range ids {
		if exists(id) {
			continue
		}
		if !wellFormed(prefix, id) {
			code := codeKind + ".Malformed"
			if codeKind == "InvalidVolume" {
				code = "InvalidVolumeID.Malformed"
			}
			return errf(400, code, "Invalid id: %q (expecting %q)", id, prefix+"-...")
		}
		missing = append(missing, id)
	}
	if codeKind == "InvalidVolume" && len(missing) > 0 {
		// Volumes are the exception: InvalidVolumeID.Malformed but InvalidVolume.NotFound.
		return errf(400, "InvalidVolume.NotFound", "The volume '%s' does not exist.", missing[0])
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return errf(400, codeKind+".NotFound", "The %s ID '%s' does not exist", noun, missing[0])
	}
	return errf(400, codeKind+".NotFound", "The %s IDs '%s' do not exist", noun, strings.Join(missing, ", "))
}

func (a *Account) instanceExists(id string) bool { return a.instances.get(id) != nil }

func (a *Account) instanceXML(inst *instance) xInstance {
	x := xInstance{InstanceID: inst.id, ImageID: inst.imageID, InstanceType: inst.itype, InstanceLifecycle: inst.lifecycle,
		State:      xInstanceState{Code: stateCodes[inst.state], Name: inst.state},
		LaunchTime: ts(inst.launch), Placement: xPlacement{AvailabilityZone: inst.az, Tenancy: "default"},
		Architecture: "x86_64", RootDeviceType: "ebs", Tags: tagList(a.tags[inst.id])}
	if inst.stateReason != "" {
		code, msg, _ := strings.Cut(inst.stateReason, ": ")
		x.StateReason = &xStateReason{Code: code, Message: msg}
	}
	if inst.state != "terminated" {
		x.SubnetID, x.VpcID = inst.subnetID, inst.vpcID
	}
	for _, e := range a.instanceENIs(inst.id) {
		groups := a.groupIdentifiers(e.groups)
		if e.att.deviceIndex == 0 {
			x.Groups = groups
			x.PrivateIPAddress = e.ip
			x.PrivateDNSName = "ip-" + strings.ReplaceAll(e.ip, ".", "-") + ".ec2.internal"
		}
		x.NetworkInterfaces = append(x.NetworkInterfaces, xInstanceNetworkInterface{
			NetworkInterfaceID: e.id, SubnetID: e.subnetID, VpcID: e.vpcID, OwnerID: a.id, Status: "in-use",
			MacAddress: e.mac, PrivateIPAddress: e.ip, SourceDestCheck: true, InterfaceType: e.interfaceType(),
			Groups: groups, Attachment: xInstanceNetworkInterfaceAttachment{AttachmentID: e.att.id,
				DeviceIndex: e.att.deviceIndex, Status: "attached", AttachTime: ts(e.att.attached),
				DeleteOnTermination: e.att.deleteOnTermination}})
	}
	for i, b := range inst.bdms {
		if i == 0 {
			x.RootDeviceName = b.device
		}
		x.BlockDeviceMappings = append(x.BlockDeviceMappings, bdmXML(b))
	}
	if as := a.activeAssociation(inst.id); as != nil {
		x.IamInstanceProfile = &xIamInstanceProfile{Arn: as.profile.arn, ID: as.profile.id}
	}
	return x
}

func bdmXML(b *bdm) xInstanceBlockDeviceMapping {
	return xInstanceBlockDeviceMapping{DeviceName: b.device, Ebs: xEbsInstanceBlockDevice{VolumeID: b.volumeID,
		Status: "attached", AttachTime: ts(b.attached), DeleteOnTermination: b.deleteOnTermination}}
}

func (a *Account) groupIdentifiers(ids []string) []xGroupIdentifier {
	var out []xGroupIdentifier
	for _, id := range ids {
		name := ""
		if g := a.groups.get(id); g != nil {
			name = g.name
		}
		out = append(out, xGroupIdentifier{GroupID: id, GroupName: name})
	}
	return out
}

func (a *Account) instanceFilterFields(inst *instance) func(string) ([]string, bool) {
	return func(name string) ([]string, bool) {
		enis := a.instanceENIs(inst.id)
		each := func(f func(e *eni) []string) []string {
			var out []string
			for _, e := range enis {
				out = append(out, f(e)...)
			}
			return out
		}
		switch name {
		case "instance-id":
			return []string{inst.id}, true
		case "instance-state-name":
			return []string{inst.state}, true
		case "instance-state-code":
			return []string{strconv.Itoa(stateCodes[inst.state])}, true
		case "instance-type":
			return []string{inst.itype}, true
		case "image-id":
			return []string{inst.imageID}, true
		case "availability-zone":
			return []string{inst.az}, true
		case "vpc-id":
			if inst.state == "terminated" || inst.vpcID == "" {
				return nil, true
			}
			return []string{inst.vpcID}, true
		case "subnet-id":
			if inst.state == "terminated" || inst.subnetID == "" {
				return nil, true
			}
			return []string{inst.subnetID}, true
		case "iam-instance-profile.arn":
			if as := a.activeAssociation(inst.id); as != nil {
				return []string{as.profile.arn}, true
			}
			return nil, true
		case "network-interface.network-interface-id":
			return each(func(e *eni) []string { return []string{e.id} }), true
		case "network-interface.vpc-id":
			return each(func(e *eni) []string { return []string{e.vpcID} }), true
		case "network-interface.subnet-id":
			return each(func(e *eni) []string { return []string{e.subnetID} }), true
		case "network-interface.group-id":
			return each(func(e *eni) []string { return e.groups }), true
		case "instance.group-id":
			for _, e := range enis {
				if e.att.deviceIndex == 0 {
					return e.groups, true
				}
			}
			return nil, true
		case "private-ip-address":
			return each(func(e *eni) []string { return []string{e.ip} }), true
		}
		return nil, false
	}
}

func describeInstances(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("InstanceId")
	if err := lookupIDs(ids, "i", "InvalidInstanceID", "instance", a.instanceExists); err != nil {
		return nil, err
	}
	if req.dryRun {
		return nil, nil
	}
	out := &describeInstancesOut{}
	fs := req.p.filters()
	// The common calls name one instance, by id or by an instance-id filter: only the instances named are
	// candidates, looked up rather than found among them all.
	cands := a.instances.keys
	if len(ids) > 0 {
		cands = a.instances.rows(ids)
	} else if named, ok := exactValues(fs, "instance-id"); ok {
		cands = a.instances.rows(named)
	} else if tagged, ok := a.taggedIDs(fs); ok {
		cands = a.instances.rows(tagged)
	}
	var match []*instance
	for _, k := range cands {
		inst := a.instances.m[k]
		ok, err := matchFilters(fs, a.tags[inst.id], a.instanceFilterFields(inst))
		if err != nil {
			return nil, err
		}
		if ok {
			match = append(match, inst)
		}
	}
	from, to, next, perr := ec2Page(req, len(match), len(ids) > 0)
	if perr != nil {
		return nil, perr
	}
	for _, inst := range match[from:to] {
		out.Reservations = append(out.Reservations, xReservation{ReservationID: derivedID("r", inst.id), OwnerID: a.id,
			Instances: []xInstance{a.instanceXML(inst)}})
	}
	out.NextToken = next
	return out, nil
}

func describeInstanceAttribute(a *Account, req *request) (any, *apiError) {
	id, attr := req.p.str("InstanceId"), req.p.str("Attribute")
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter instanceId")
	}
	if attr == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter attribute")
	}
	if err := lookupIDs([]string{id}, "i", "InvalidInstanceID", "instance", a.instanceExists); err != nil {
		return nil, err
	}
	inst := a.instances.get(id)
	out := &describeInstanceAttributeOut{InstanceID: id}
	switch attr {
	case "disableApiTermination":
		out.DisableAPITermination = &xAttributeBool{inst.disableAPITermination}
	case "instanceInitiatedShutdownBehavior":
		out.InstanceInitiatedShutdownBehavior = &xAttributeValue{inst.shutdown}
	case "instanceType":
		out.InstanceType = &xAttributeValue{inst.itype}
	case "sourceDestCheck":
		out.SourceDestCheck = &xAttributeBool{true}
	case "rootDeviceName":
		v := ""
		if len(inst.bdms) > 0 {
			v = inst.bdms[0].device
		}
		out.RootDeviceName = &xAttributeValue{v}
	case "groupSet":
		for _, e := range a.instanceENIs(id) {
			if e.att.deviceIndex == 0 {
				out.Groups = a.groupIdentifiers(e.groups)
			}
		}
	case "blockDeviceMapping":
		for _, b := range inst.bdms {
			out.BlockDeviceMappings = append(out.BlockDeviceMappings, bdmXML(b))
		}
	default:
		return nil, errf(400, "InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	if req.dryRun {
		return nil, nil
	}
	return out, nil
}

// modifyInstanceAttribute changes one attribute of an instance
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceAttribute.html: "You can specify
// only one attribute at a time"). GroupId.N replaces the groups of the primary ENI, and EC2 refuses it for an
// instance with several ENIs.
func modifyInstanceAttribute(a *Account, req *request) (any, *apiError) {
	id := req.p.str("InstanceId")
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter instanceId")
	}
	if err := lookupIDs([]string{id}, "i", "InvalidInstanceID", "instance", a.instanceExists); err != nil {
		return nil, err
	}
	inst := a.instances.get(id)
	// Collect the attributes given, in both request styles (Attribute+Value, or Name.Value).
	attrs := map[string]string{}
	if at := req.p.str("Attribute"); at != "" {
		attrs[at] = req.p.str("Value")
	}
	for param, attr := range map[string]string{"DisableApiTermination": "disableApiTermination",
		"InstanceInitiatedShutdownBehavior": "instanceInitiatedShutdownBehavior", "SourceDestCheck": "sourceDestCheck",
		"InstanceType": "instanceType", "DisableApiStop": "disableApiStop"} {
		if req.p.has(param, "Value") {
			attrs[attr] = req.p.str(param, "Value")
		}
	}
	groups := req.p.strs("GroupId")
	if len(groups) > 0 {
		attrs["groupId"] = ""
	}
	bdms := req.p.list("BlockDeviceMapping")
	if len(bdms) > 0 {
		attrs["blockDeviceMapping"] = ""
	}
	if len(attrs) == 0 {
		return nil, errf(400, "InvalidParameterCombination", "No attributes specified.")
	}
	if len(attrs) > 1 {
		names := slices.Sorted(mapKeys(attrs))
		return nil, errf(400, "InvalidParameterCombination", "Fields for multiple attribute types specified: %s", strings.Join(names, ", "))
	}
	if inst.state == "terminated" || inst.state == "shutting-down" {
		return nil, errf(400, "IncorrectInstanceState", "The instance '%s' is not in a state from which it can be modified.", id)
	}
	var apply func()
	for attr, val := range attrs {
		switch attr {
		case "disableApiTermination":
			b, err := parseBoolParam(val, "DisableApiTermination")
			if err != nil {
				return nil, err
			}
			if inst.lifecycle == "spot" {
				// "You can't enable termination protection for Spot Instances"
				// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_ChangingDisableAPITermination.html);
				// EC2 refuses any change of the attribute, to false too, with this code and message
				// (github.com/cloud-custodian/cloud-custodian/issues/2083, hashicorp/terraform-provider-aws#41206).
				return nil, errf(400, "UnsupportedOperation", "Modifying 'disableApiTermination' is not supported for spot instances.")
			}
			apply = func() { inst.disableAPITermination = b }
		case "instanceInitiatedShutdownBehavior":
			if val != "stop" && val != "terminate" {
				return nil, errf(400, "InvalidParameterValue", "Value (%s) for parameter instanceInitiatedShutdownBehavior is invalid. Valid values are 'stop' and 'terminate'.", val)
			}
			apply = func() { inst.shutdown = val }
		case "sourceDestCheck", "disableApiStop":
			if _, err := parseBoolParam(val, attr); err != nil {
				return nil, err
			}
			apply = func() {}
		case "instanceType":
			if inst.state != "stopped" {
				return nil, errf(400, "IncorrectInstanceState", "The instance '%s' is not in the 'stopped' state.", id)
			}
			apply = func() { inst.itype = val }
		case "groupId":
			enis := a.instanceENIs(id)
			if len(enis) > 1 {
				// The error EC2 gives (code InvalidInstanceID) for an instance with several interfaces
				// (github.com/hashicorp/terraform/pull/14299, github.com/NixOS/nixops/issues/951).
				return nil, errf(400, "InvalidInstanceID", "There are multiple interfaces attached to instance '%s'. Please specify an interface ID for the operation instead.", id)
			}
			if len(enis) == 0 {
				return nil, errf(400, "InvalidInstanceID", "The instance '%s' has no network interface.", id)
			}
			primary := enis[0]
			ids, err := a.checkGroups(primary.vpcID, groups)
			if err != nil {
				return nil, err
			}
			apply = func() { primary.groups = ids }
		case "blockDeviceMapping":
			type change struct {
				b   *bdm
				del bool
			}
			var changes []change
			for _, m := range bdms {
				dev := m.str("DeviceName")
				i := slices.IndexFunc(inst.bdms, func(b *bdm) bool { return b.device == dev })
				if i < 0 {
					return nil, errf(400, "InvalidInstanceAttributeValue", "No device is currently mapped at %s", dev)
				}
				if !m.has("Ebs", "DeleteOnTermination") {
					return nil, errf(400, "InvalidParameterCombination", "BlockDeviceMapping %s: only Ebs.DeleteOnTermination can be modified", dev)
				}
				del, err := parseBoolParam(m.str("Ebs", "DeleteOnTermination"), "DeleteOnTermination")
				if err != nil {
					return nil, err
				}
				changes = append(changes, change{inst.bdms[i], del})
			}
			apply = func() {
				for _, c := range changes {
					c.b.deleteOnTermination = c.del
				}
			}
		default:
			return nil, errf(400, "InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
		}
	}
	if req.dryRun {
		return nil, nil
	}
	apply()
	return ok(), nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func parseBoolParam(v, name string) (bool, *apiError) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errf(400, "InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected: 'true' or 'false'.", v, name)
}

// checkGroups validates the groups to put on an interface of vpcID: they must exist (and be visible), be in
// that VPC, and be at most 5 (the default quota of groups per interface). Repeats are dropped.
func (a *Account) checkGroups(vpcID string, ids []string) ([]string, *apiError) {
	if len(ids) == 0 {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter groupId")
	}
	var out []string
	now := a.clock.Now()
	for _, id := range ids {
		if slices.Contains(out, id) {
			continue
		}
		g := a.groups.get(id)
		if g == nil || !g.visible(now) {
			if !wellFormed("sg", id) {
				return nil, errf(400, "InvalidGroupId.Malformed", "Invalid id: %q (expecting \"sg-...\")", id)
			}
			return nil, errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
		if g.vpcID != vpcID {
			// What EC2 answers for a group of another VPC (seen in
			// github.com/kubernetes-sigs/cluster-api-provider-aws/issues/3943).
			return nil, errf(400, "InvalidGroup.NotFound", "You have specified two resources that belong to different networks.")
		}
		out = append(out, id)
	}
	if len(out) > 5 {
		return nil, errf(400, "SecurityGroupsPerInterfaceLimitExceeded", "The maximum number of security groups per interface has been reached.")
	}
	return out, nil
}

func (a *Account) eniExists(id string) bool { return a.enis.get(id) != nil }

func (a *Account) eniXML(e *eni) xNetworkInterface {
	x := xNetworkInterface{NetworkInterfaceID: e.id, SubnetID: e.subnetID, VpcID: e.vpcID, AvailabilityZone: e.az,
		OwnerID: a.id, Status: "available", MacAddress: e.mac, PrivateIPAddress: e.ip, SourceDestCheck: true,
		InterfaceType: e.interfaceType(), Groups: a.groupIdentifiers(e.groups), Tags: tagList(a.tags[e.id]),
		RequesterManaged: e.requesterManaged, RequesterID: e.requesterID}
	if e.att != nil {
		x.Status = "in-use"
		x.Attachment = &xNetworkInterfaceAttachment{AttachmentID: e.att.id, InstanceID: e.att.instanceID,
			InstanceOwnerID: a.id, DeviceIndex: e.att.deviceIndex, Status: "attached", AttachTime: ts(e.att.attached),
			DeleteOnTermination: e.att.deleteOnTermination}
	}
	return x
}

func describeNetworkInterfaces(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("NetworkInterfaceId")
	if err := lookupIDs(ids, "eni", "InvalidNetworkInterfaceID", "networkInterface", a.eniExists); err != nil {
		return nil, err
	}
	if req.dryRun {
		return nil, nil
	}
	out := &describeNetworkInterfacesOut{}
	fs := req.p.filters()
	// The common calls (Apply, Restore, the read-back) ask for one instance's ENIs.
	cands := a.enis.keys
	if len(ids) > 0 {
		cands = a.enis.rows(ids)
	} else if insts, ok := exactValues(fs, "attachment.instance-id"); ok {
		cands = a.enis.rows(listed(a.enisOf, insts))
	} else if tagged, ok := a.taggedIDs(fs); ok {
		cands = a.enis.rows(tagged)
	}
	for _, k := range cands {
		e := a.enis.m[k]
		match, err := matchFilters(fs, a.tags[e.id], func(name string) ([]string, bool) {
			att := func(f func(*eniAttachment) string) []string {
				if e.att == nil {
					return nil
				}
				return []string{f(e.att)}
			}
			switch name {
			case "network-interface-id":
				return []string{e.id}, true
			case "vpc-id":
				return []string{e.vpcID}, true
			case "subnet-id":
				return []string{e.subnetID}, true
			case "availability-zone":
				return []string{e.az}, true
			case "group-id":
				return e.groups, true
			case "private-ip-address", "addresses.private-ip-address":
				return []string{e.ip}, true
			case "mac-address":
				return []string{e.mac}, true
			case "owner-id":
				return []string{a.id}, true
			case "status":
				if e.att != nil {
					return []string{"in-use"}, true
				}
				return []string{"available"}, true
			case "attachment.instance-id":
				return att(func(t *eniAttachment) string { return t.instanceID }), true
			case "attachment.attachment-id":
				return att(func(t *eniAttachment) string { return t.id }), true
			case "attachment.device-index":
				return att(func(t *eniAttachment) string { return strconv.Itoa(int(t.deviceIndex)) }), true
			case "attachment.status":
				return att(func(*eniAttachment) string { return "attached" }), true
			case "attachment.delete-on-termination":
				return att(func(t *eniAttachment) string { return strconv.FormatBool(t.deleteOnTermination) }), true
			case "interface-type":
				// "interface-type - The type of network interface (api_gateway_managed | … | branch | efa |
				// efa-only | … | interface | … | trunk | …)" (EC2 API reference, DescribeNetworkInterfaces, Filter.N).
				return []string{e.interfaceType()}, true
			case "requester-managed":
				// "requester-managed - Indicates whether the network interface is being managed by an AWS
				// service" (EC2 API reference, DescribeNetworkInterfaces, Filter.N).
				return []string{strconv.FormatBool(e.requesterManaged)}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if match {
			out.NetworkInterfaces = append(out.NetworkInterfaces, a.eniXML(e))
		}
	}
	return out, nil
}

// modifyNetworkInterfaceAttribute: SecurityGroupId.N REPLACES the interface's set of groups
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyNetworkInterfaceAttribute.html: "Changes
// the security groups for the network interface. The new set of groups you specify replaces the current set.").
func modifyNetworkInterfaceAttribute(a *Account, req *request) (any, *apiError) {
	id := req.p.str("NetworkInterfaceId")
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter networkInterfaceId")
	}
	if err := lookupIDs([]string{id}, "eni", "InvalidNetworkInterfaceID", "networkInterface", a.eniExists); err != nil {
		return nil, err
	}
	e := a.enis.get(id)
	if e.requesterManaged {
		// "Requester-managed network interfaces are created and managed by AWS services ... You can view them,
		// but you can't manage them yourself" (EC2 User Guide, requester-managed network interfaces). EC2's
		// exact error code for it is not documented: the product must not depend on it (it recognises the
		// interface by DescribeNetworkInterfaces' requesterManaged instead).
		return nil, errf(400, "OperationNotPermitted", "The network interface %s is requester-managed (%s): you cannot modify it.", id, e.requesterID)
	}
	var applies []func()
	if req.p.has("SecurityGroupId") {
		groups, err := a.checkGroups(e.vpcID, req.p.strs("SecurityGroupId"))
		if err != nil {
			return nil, err
		}
		applies = append(applies, func() { e.groups = groups })
	}
	if req.p.has("SourceDestCheck", "Value") {
		if _, err := parseBoolParam(req.p.str("SourceDestCheck", "Value"), "SourceDestCheck"); err != nil {
			return nil, err
		}
		applies = append(applies, func() {})
	}
	if req.p.has("Description", "Value") {
		applies = append(applies, func() {})
	}
	if req.p.has("Attachment") {
		attID := req.p.str("Attachment", "AttachmentId")
		if e.att == nil || e.att.id != attID {
			return nil, errf(400, "InvalidAttachmentID.NotFound", "The attachment ID '%s' does not exist", attID)
		}
		del, err := parseBoolParam(req.p.str("Attachment", "DeleteOnTermination"), "DeleteOnTermination")
		if err != nil {
			return nil, err
		}
		applies = append(applies, func() { e.att.deleteOnTermination = del })
	}
	if len(applies) == 0 {
		return nil, errf(400, "MissingParameter", "You must specify an attribute to modify.")
	}
	if req.dryRun {
		return nil, nil
	}
	for _, f := range applies {
		f()
	}
	return ok(), nil
}

func describeVpcs(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("VpcId")
	if err := lookupIDs(ids, "vpc", "InvalidVpcID", "vpc", func(id string) bool { return a.vpcs.get(id) != nil }); err != nil {
		return nil, err
	}
	if req.dryRun {
		return nil, nil
	}
	out := &describeVpcsOut{}
	filters := req.p.filters() // parsed once, not per resource
	for _, v := range a.vpcs.all() {
		if len(ids) > 0 && !slices.Contains(ids, v.id) {
			continue
		}
		match, err := matchFilters(filters, a.tags[v.id], func(name string) ([]string, bool) {
			switch name {
			case "vpc-id":
				return []string{v.id}, true
			case "cidr", "cidr-block-association.cidr-block":
				return []string{v.cidr}, true
			case "ipv6-cidr-block-association.ipv6-cidr-block":
				return []string{v.ipv6CIDR}, true
			case "is-default":
				return []string{"false"}, true
			case "state":
				return []string{"available"}, true
			case "owner-id":
				return []string{a.id}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if !match {
			continue
		}
		x := xVpc{VpcID: v.id, OwnerID: a.id, State: "available", CidrBlock: v.cidr, DhcpOptionsID: "dopt-0a1b2c3d",
			InstanceTenancy: "default", Tags: tagList(a.tags[v.id])}
		c := xVpcCidrAssoc{AssociationID: derivedID("vpc-cidr-assoc", v.id), CidrBlock: v.cidr}
		c.State.State = "associated"
		x.CidrAssocs = append(x.CidrAssocs, c)
		if v.ipv6CIDR != "" {
			c6 := xVpcIPv6CidrAssoc{AssociationID: derivedID("vpc-cidr-assoc", v.id+"/6"), IPv6CidrBlock: v.ipv6CIDR}
			c6.State.State = "associated"
			x.IPv6CidrAssocs = append(x.IPv6CidrAssocs, c6)
		}
		out.Vpcs = append(out.Vpcs, x)
	}
	return out, nil
}

func describeSubnets(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("SubnetId")
	if err := lookupIDs(ids, "subnet", "InvalidSubnetID", "subnet", func(id string) bool { return a.subnets.get(id) != nil }); err != nil {
		return nil, err
	}
	if req.dryRun {
		return nil, nil
	}
	out := &describeSubnetsOut{}
	filters := req.p.filters() // parsed once, not per resource
	for _, s := range a.subnets.all() {
		if len(ids) > 0 && !slices.Contains(ids, s.id) {
			continue
		}
		match, err := matchFilters(filters, a.tags[s.id], func(name string) ([]string, bool) {
			switch name {
			case "subnet-id":
				return []string{s.id}, true
			case "vpc-id":
				return []string{s.vpcID}, true
			case "availability-zone":
				return []string{s.az}, true
			case "cidr-block":
				return []string{s.cidr}, true
			case "state":
				return []string{"available"}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if !match {
			continue
		}
		out.Subnets = append(out.Subnets, xSubnet{SubnetID: s.id, State: "available", VpcID: s.vpcID, OwnerID: a.id,
			SubnetArn: fmt.Sprintf("arn:%s:ec2:%s:%s:subnet/%s", Partition(a.region), a.region, a.id, s.id), CidrBlock: s.cidr,
			AvailableIPAddressCount: 250, AvailabilityZone: s.az, AvailabilityZoneID: azID(s.az),
			Tags: tagList(a.tags[s.id])})
	}
	return out, nil
}

func azID(az string) string {
	if az == "" {
		return ""
	}
	return "use1-az" + strconv.Itoa(int(az[len(az)-1]-'a')+1)
}

func describeVolumes(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("VolumeId")
	if err := lookupIDs(ids, "vol", "InvalidVolume", "volume", func(id string) bool { return a.volumes.get(id) != nil }); err != nil {
		return nil, err
	}
	if req.dryRun {
		return nil, nil
	}
	out := &describeVolumesOut{}
	filters := req.p.filters() // parsed once, not per resource
	for _, v := range a.volumes.all() {
		if len(ids) > 0 && !slices.Contains(ids, v.id) {
			continue
		}
		var att *bdm
		if v.instanceID != "" {
			if inst := a.instances.get(v.instanceID); inst != nil {
				if i := slices.IndexFunc(inst.bdms, func(b *bdm) bool { return b.volumeID == v.id }); i >= 0 {
					att = inst.bdms[i]
				}
			}
		}
		match, err := matchFilters(filters, a.tags[v.id], func(name string) ([]string, bool) {
			switch name {
			case "volume-id":
				return []string{v.id}, true
			case "availability-zone":
				return []string{v.az}, true
			case "status":
				if att != nil {
					return []string{"in-use"}, true
				}
				return []string{"available"}, true
			case "attachment.instance-id":
				if att != nil {
					return []string{v.instanceID}, true
				}
				return nil, true
			case "attachment.device":
				if att != nil {
					return []string{att.device}, true
				}
				return nil, true
			case "attachment.delete-on-termination":
				if att != nil {
					return []string{strconv.FormatBool(att.deleteOnTermination)}, true
				}
				return nil, true
			case "size":
				return []string{strconv.Itoa(int(v.size))}, true
			case "volume-type":
				return []string{"gp3"}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if !match {
			continue
		}
		x := xVolume{VolumeID: v.id, Size: v.size, AvailabilityZone: v.az, Status: "available", CreateTime: ts(v.created),
			VolumeType: "gp3", Iops: 3000, Throughput: 125, Tags: tagList(a.tags[v.id])}
		if att != nil {
			x.Status = "in-use"
			x.Attachments = []xVolumeAttachment{{VolumeID: v.id, InstanceID: v.instanceID, Device: att.device,
				Status: "attached", AttachTime: ts(att.attached), DeleteOnTermination: att.deleteOnTermination}}
		}
		out.Volumes = append(out.Volumes, x)
	}
	return out, nil
}

// createTags tags any resource. Ids of the kinds simulated must exist.
func createTags(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("ResourceId")
	if len(ids) == 0 {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	tags := map[string]string{}
	for _, t := range req.p.list("Tag") {
		k := t.str("Key")
		if k == "" {
			return nil, errf(400, "InvalidParameterValue", "Tag key must not be empty")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, errf(400, "InvalidParameterValue", "Value ( %s ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use", k)
		}
		if len(k) > 128 || len(t.str("Value")) > 256 {
			return nil, errf(400, "InvalidParameterValue", "Tag key or value too long")
		}
		tags[k] = t.str("Value")
	}
	if len(tags) == 0 {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter tagSet")
	}
	now := a.clock.Now()
	for _, id := range ids {
		prefix, _, _ := strings.Cut(id, "-")
		var exists bool
		var code, noun string
		switch prefix {
		case "i":
			exists, code, noun = a.instances.get(id) != nil, "InvalidInstanceID", "instance"
		case "eni":
			exists, code, noun = a.enis.get(id) != nil, "InvalidNetworkInterfaceID", "networkInterface"
		case "sg":
			g := a.groups.get(id)
			exists, code, noun = g != nil && g.visible(now), "InvalidGroup", "security group"
		case "vol":
			exists, code, noun = a.volumes.get(id) != nil, "InvalidVolume", "volume"
		case "snap":
			exists, code, noun = a.snapshots.get(id) != nil, "InvalidSnapshot", "snapshot"
		case "vpc":
			exists, code, noun = a.vpcs.get(id) != nil, "InvalidVpcID", "vpc"
		case "subnet":
			exists, code, noun = a.subnets.get(id) != nil, "InvalidSubnetID", "subnet"
		default:
			if id == "" || prefix == id {
				return nil, errf(400, "InvalidID", "The ID '%s' is not valid", id)
			}
			continue // another kind of resource: accepted
		}
		if !exists {
			if code == "InvalidGroup" {
				return nil, errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
			}
			if err := lookupIDs([]string{id}, prefix, code, noun, func(string) bool { return false }); err != nil {
				return nil, err
			}
		}
	}
	if req.dryRun {
		return nil, nil
	}
	for _, id := range ids {
		a.setTags(id, tags)
	}
	return ok(), nil
}

// interfaceType as EC2 reports it: "interface" unless the scenario says (efa, efa-only, trunk; see
// validateInterfaceType).
func (e *eni) interfaceType() string {
	if e.ifaceType == "" {
		return "interface"
	}
	return e.ifaceType
}
