package sim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/glob"
)

// Instance role credentials and the explicit denies of the role's inline policies.
//
// EC2 hands an instance temporary credentials of its profile's role through the instance metadata service; a
// request signed with them carries the condition keys ec2:SourceInstanceARN (the instance) and aws:TokenIssueTime
// (when they were issued), and they stay valid after the profile is disassociated
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-ec2-source-instance-arn,
// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_revoke-sessions.html: a role's credentials
// issued before a time are revoked by a Deny with DateLessThan on aws:TokenIssueTime). Permissions are evaluated
// at each request, not when the credentials are issued
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_control-access.html), so a policy put
// later applies to credentials taken earlier.
//
// What the simulator evaluates: for a request signed with such credentials, every statement of the role's inline
// policies with Effect Deny whose Action matches (IAM's wildcards, case-insensitive), whose Resource is "*", and
// whose every condition holds. Operators: StringEquals, StringLike, DateLessThan, DateGreaterThan (and their
// negations are not modelled: such a statement never matches). As in IAM, a condition on a key the request does
// not carry is false. Allow statements and managed policies are not evaluated: whatever is not denied is allowed
// (the simulator has no notion of an identity lacking permissions). Other callers are not evaluated at all.

type instanceSession struct {
	role, instanceARN, account string
	issued                     time.Time
}

// InstanceCredentials issues the credentials the instance metadata service of instanceID gives now for its
// associated profile's role, as a thief would copy them: it returns their access key id, to pass to
// Server.AWSConfig. Call it inside Server.Update.
func (a *Account) InstanceCredentials(instanceID string) (string, error) {
	in := a.instances.get(instanceID)
	if in == nil {
		return "", fmt.Errorf("no instance %s", instanceID)
	}
	var prof *profile
	for _, as := range a.associations.all() {
		if as.instanceID == instanceID && as.state == "associated" {
			prof = as.profile
		}
	}
	if prof == nil || prof.role == "" {
		return "", fmt.Errorf("instance %s has no associated profile with a role: the metadata service gives no credentials", instanceID)
	}
	if a.sessions == nil {
		a.sessions = map[string]*instanceSession{}
	}
	key := fmt.Sprintf("ASIA%016X", len(a.sessions)+1)
	a.sessions[key] = &instanceSession{role: prof.role, account: a.id, issued: a.clock.Now(),
		instanceARN: fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", Partition(a.region), a.region, a.id, instanceID)}
	return key, nil
}

// Partition is the partition of a region: its ARNs start arn:<partition>:
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html: aws, aws-cn, aws-us-gov).
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// denied answers a request signed with instance credentials that a Deny of the role's inline policies matches.
func (a *Account) denied(req *request) *apiError {
	sess := a.sessions[req.caller]
	if sess == nil {
		return nil
	}
	r := a.roles.get(sess.role)
	if r == nil {
		return nil
	}
	action := req.service + ":" + req.action
	ctx := map[string]string{"ec2:SourceInstanceARN": sess.instanceARN,
		"aws:TokenIssueTime": sess.issued.UTC().Format(time.RFC3339Nano)}
	for name, doc := range r.inline {
		if statementDenies(doc, action, ctx) {
			msg := fmt.Sprintf("User: arn:%s:sts::%s:assumed-role/%s/%s is not authorized to perform: %s with an explicit deny in an identity-based policy (%s)",
				Partition(a.region), sess.account, sess.role, sess.instanceARN[strings.LastIndex(sess.instanceARN, "/")+1:], action, name)
			if req.service == "ec2" {
				// EC2 answers an IAM denial with UnauthorizedOperation (EC2 API error codes).
				return errf(403, "UnauthorizedOperation", "You are not authorized to perform this operation. %s", msg)
			}
			return errf(403, "AccessDenied", "%s", msg)
		}
	}
	return nil
}

type policyStatement struct {
	Effect    string
	Action    json.RawMessage
	Resource  json.RawMessage
	Condition map[string]map[string]json.RawMessage
}

func statementDenies(doc, action string, ctx map[string]string) bool {
	var p struct{ Statement json.RawMessage }
	if json.Unmarshal([]byte(doc), &p) != nil {
		return false
	}
	var stmts []policyStatement
	if json.Unmarshal(p.Statement, &stmts) != nil {
		var one policyStatement
		if json.Unmarshal(p.Statement, &one) != nil {
			return false
		}
		stmts = []policyStatement{one}
	}
	for _, st := range stmts {
		if st.Effect != "Deny" || !anyMatch(st.Action, func(pat string) bool {
			return glob.Match(strings.ToLower(pat), strings.ToLower(action))
		}) || !anyMatch(st.Resource, func(r string) bool { return r == "*" }) {
			continue
		}
		if conditionsHold(st.Condition, ctx) {
			return true
		}
	}
	return false
}

// stringList reads a policy element that is a string or a list of strings.
func stringList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

func anyMatch(raw json.RawMessage, match func(string) bool) bool {
	for _, v := range stringList(raw) {
		if match(v) {
			return true
		}
	}
	return false
}

// conditionsHold: every operator's every key must hold; a key holds when the request's value matches any of the
// listed values.
func conditionsHold(cond map[string]map[string]json.RawMessage, ctx map[string]string) bool {
	for op, keys := range cond {
		for key, vals := range keys {
			got, ok := ctx[lookupKey(ctx, key)]
			if !ok {
				return false
			}
			if !anyMatch(vals, func(want string) bool { return compare(op, got, want) }) {
				return false
			}
		}
	}
	return true
}

// lookupKey: condition key names are case-insensitive.
func lookupKey(ctx map[string]string, key string) string {
	for k := range ctx {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return key
}

func compare(op, got, want string) bool {
	switch op {
	case "StringEquals":
		return got == want
	case "StringLike":
		return glob.Match(want, got)
	case "DateLessThan", "DateGreaterThan":
		g, err1 := time.Parse(time.RFC3339Nano, got)
		w, err2 := time.Parse(time.RFC3339Nano, want)
		if err1 != nil || err2 != nil {
			return false
		}
		if op == "DateLessThan" {
			return g.Before(w)
		}
		return g.After(w)
	}
	return false
}
