package sim

import (
	"slices"
)

// Instance profile associations (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IamInstanceProfileAssociation.html):
// states associating | associated | disassociating | disassociated. Associate and Replace answer "associating";
// Disassociate answers "disassociating"; each settles after Behaviour.AssociationSettle. A disassociated
// association is no longer listed (the Describe state filter documents only the three other states), but can
// still be described by id.

func (a *Account) associationXML(as *association) xAssociation {
	return xAssociation{AssociationID: as.id, InstanceID: as.instanceID,
		IamInstanceProfile: xIamInstanceProfile{Arn: as.profile.arn, ID: as.profile.id},
		State:              as.state, Timestamp: ts(as.timestamp)}
}

// resolveProfile finds the profile of IamInstanceProfile.Name / .Arn. An unknown profile, or one IAM has not
// yet propagated to EC2 (VisibleAfter), gets the error EC2 gives for an invalid profile ("Value (x) for
// parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", also seen for profiles
// created seconds before: github.com/hashicorp/terraform-provider-aws/issues/27516, and for ARNs:
// github.com/lacework/go-sdk/pull/1045).
func (a *Account) resolveProfile(req *request) (*profile, *apiError) {
	name, arn := req.p.str("IamInstanceProfile", "Name"), req.p.str("IamInstanceProfile", "Arn")
	now := a.clock.Now()
	switch {
	case name != "":
		if p := a.profiles.get(name); p != nil && !now.Before(p.visibleAt) {
			return p, nil
		}
		return nil, errf(400, "InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", name)
	case arn != "":
		for _, p := range a.profiles.all() {
			if p.arn == arn && !now.Before(p.visibleAt) {
				return p, nil
			}
		}
		return nil, errf(400, "InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN", arn)
	}
	return nil, errf(400, "MissingParameter", "The request must contain the parameter IamInstanceProfile")
}

func associateProfile(a *Account, req *request) (any, *apiError) {
	id := req.p.str("InstanceId")
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter InstanceId")
	}
	if err := lookupIDs([]string{id}, "i", "InvalidInstanceID", "instance", a.instanceExists); err != nil {
		return nil, err
	}
	p, err := a.resolveProfile(req)
	if err != nil {
		return nil, err
	}
	inst := a.instances.get(id)
	if inst.state != "running" && inst.state != "stopped" && inst.state != "pending" && inst.state != "stopping" {
		return nil, errf(400, "IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", id)
	}
	// Any association that is not yet disassociated blocks a new one: "IncorrectState: There is an existing
	// association for instance i-…" (github.com/aws-samples/one-observability-demo/issues/201).
	if a.activeAssociation(id) != nil {
		return nil, errf(400, "IncorrectState", "There is an existing association for instance %s", id)
	}
	if req.dryRun {
		return nil, nil
	}
	now := a.clock.Now()
	as := &association{id: a.newID("iip-assoc"), instanceID: id, profile: p, state: "associating", changed: now, timestamp: now}
	a.putAssociation(as)
	a.pend(as)
	return &associationOut{Association: a.associationXML(as)}, nil
}

func (a *Account) association(id string) (*association, *apiError) {
	if id == "" {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter AssociationId")
	}
	as := a.associations.get(id)
	if as == nil || as.state == "disassociated" {
		return nil, errf(400, "InvalidAssociationID.NotFound", "The association ID '%s' does not exist", id)
	}
	return as, nil
}

func disassociateProfile(a *Account, req *request) (any, *apiError) {
	as, err := a.association(req.p.str("AssociationId"))
	if err != nil {
		return nil, err
	}
	if as.state == "disassociating" {
		return nil, errf(400, "IncorrectState", "The association %s is not the active association", as.id)
	}
	if req.dryRun {
		return nil, nil
	}
	as.state, as.changed = "disassociating", a.clock.Now()
	a.pend(as)
	return &associationOut{Association: a.associationXML(as)}, nil
}

// replaceAssociation swaps the profile of an associated association: the answer is a new association
// (new id) in state associating; the old one is gone.
func replaceAssociation(a *Account, req *request) (any, *apiError) {
	as, err := a.association(req.p.str("AssociationId"))
	if err != nil {
		return nil, err
	}
	p, err := a.resolveProfile(req)
	if err != nil {
		return nil, err
	}
	if as.state != "associated" {
		// Message as EC2's (github.com/aws/aws-cli/issues/5251).
		return nil, errf(400, "IncorrectState", "The association %s is not the active association", as.id)
	}
	if req.dryRun {
		return nil, nil
	}
	now := a.clock.Now()
	a.delAssociation(as.id)
	n := &association{id: a.newID("iip-assoc"), instanceID: as.instanceID, profile: p, state: "associating", changed: now, timestamp: now}
	a.putAssociation(n)
	a.pend(n)
	return &associationOut{Association: a.associationXML(n)}, nil
}

func describeAssociations(a *Account, req *request) (any, *apiError) {
	ids := req.p.strs("AssociationId")
	for _, id := range ids {
		if a.associations.get(id) == nil {
			return nil, errf(400, "InvalidAssociationID.NotFound", "The association ID '%s' does not exist", id)
		}
	}
	if req.dryRun {
		return nil, nil
	}
	out := &describeAssociationsOut{}
	filters := req.p.filters() // parsed once, not per resource
	// The usual call filters on one instance: only its associations are candidates.
	cands := a.associations.keys
	if len(ids) > 0 {
		cands = a.associations.rows(ids)
	} else if instances, ok := exactValues(filters, "instance-id"); ok {
		cands = a.associations.rows(listed(a.assocOf, instances))
	}
	for _, k := range cands {
		as := a.associations.m[k]
		if len(ids) > 0 {
			if !slices.Contains(ids, as.id) {
				continue
			}
		} else if as.state == "disassociated" {
			continue
		}
		match, err := matchFilters(filters, nil, func(name string) ([]string, bool) {
			switch name {
			case "instance-id":
				return []string{as.instanceID}, true
			case "state":
				return []string{as.state}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if match {
			out.Associations = append(out.Associations, a.associationXML(as))
		}
	}
	from, to, next, perr := ec2Page(req, len(out.Associations), len(ids) > 0)
	if perr != nil {
		return nil, perr
	}
	out.Associations, out.NextToken = out.Associations[from:to], next
	return out, nil
}
