package sim

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/glob"
)

// iam:SimulatePrincipalPolicy (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html):
// "Simulate how a set of IAM policies attached to an IAM entity works with a list of API operations and AWS
// resources", so that preflight's rows for the calls that have no DryRun are verified against the simulator too.
//
// The policies are those the simulator knows: a role's inline policies (the scenario's, CreateRole's, PutRolePolicy's).
// It knows no IAM user or group (GetCallerIdentity names a user after the access key, with no policies): one of
// those is NoSuchEntity, as IAM answers for an unknown entity. It knows no managed policy's document: a role with
// any attached is answered NotImplemented rather than half-evaluated.
//
// Evaluation (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html): a
// matching Deny is "explicitDeny", else a matching Allow "allowed", else "implicitDeny" (the decisions of
// https://docs.aws.amazon.com/IAM/latest/APIReference/API_EvaluationResult.html). A statement matches when its
// Action (or NotAction) covers the action, case-insensitive with * and ? wildcards, its Resource (or NotResource)
// the resource (the resource "*", when no ResourceArns are given, stands for any), and every condition holds on the ContextEntries given (StringEquals, StringLike, DateLessThan,
// DateGreaterThan; any other operator never holds). A condition key not given makes the statement not match and
// is listed in MissingContextValues: at the top of the result when the resource is "*" (no ResourceArns), else
// in the resource's ResourceSpecificResults, as the API reference says. One result per action and resource.
// No pagination (MaxItems is ignored: IsTruncated is false); no resource policy, permissions boundary, SCP.

func init() {
	iamHandlers["SimulatePrincipalPolicy"] = simulatePrincipalPolicy
}

type simulateResult struct {
	EvaluationResults []xEvaluationResult `xml:"EvaluationResults>member"`
	IsTruncated       bool                `xml:"IsTruncated"`
}

type xEvaluationResult struct {
	EvalActionName          string                `xml:"EvalActionName"`
	EvalResourceName        string                `xml:"EvalResourceName"`
	EvalDecision            string                `xml:"EvalDecision"`
	MissingContextValues    []string              `xml:"MissingContextValues>member,omitempty"`
	ResourceSpecificResults []xResourceSpecResult `xml:"ResourceSpecificResults>member,omitempty"`
}

type xResourceSpecResult struct {
	EvalResourceName     string   `xml:"EvalResourceName"`
	EvalResourceDecision string   `xml:"EvalResourceDecision"`
	MissingContextValues []string `xml:"MissingContextValues>member,omitempty"`
}

type simStatement struct {
	Effect      string
	Action      json.RawMessage
	NotAction   json.RawMessage
	Resource    json.RawMessage
	NotResource json.RawMessage
	Condition   map[string]map[string]json.RawMessage
}

func simulatePrincipalPolicy(a *Account, req *request) (any, *apiError) {
	source := req.p.str("PolicySourceArn")
	if source == "" {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'policySourceArn' failed to satisfy constraint: Member must not be null")
	}
	actions := req.p.strs("ActionNames", "member")
	if len(actions) == 0 {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null")
	}
	parts := strings.SplitN(source, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" {
		return nil, errf(400, "InvalidInput", "Invalid ARN: %s", source)
	}
	kind, rest, _ := strings.Cut(parts[5], "/")
	name := rest[strings.LastIndex(rest, "/")+1:]
	if kind != "role" {
		return nil, errf(404, "NoSuchEntity", "The %s with name %s cannot be found.", kind, name)
	}
	r := a.roles.get(name)
	if r == nil || r.arn != source {
		return nil, errf(404, "NoSuchEntity", "The role with name %s cannot be found.", name)
	}
	if len(r.attached) > 0 {
		return nil, errf(501, "NotImplemented", "The simulator does not know the documents of managed policies; role %s has %d attached.", r.name, len(r.attached))
	}
	var stmts []simStatement
	for _, n := range slices.Sorted(mapKeys(r.inline)) {
		stmts = append(stmts, statementsOf(r.inline[n])...)
	}
	ctx := map[string][]string{}
	for _, e := range req.p.list("ContextEntries", "member") {
		ctx[strings.ToLower(e.str("ContextKeyName"))] = e.strs("ContextKeyValues", "member")
	}
	resources := req.p.strs("ResourceArns", "member")
	out := &simulateResult{}
	for _, action := range actions {
		if len(resources) == 0 {
			decision, missing := evaluate(stmts, action, "*", ctx)
			out.EvaluationResults = append(out.EvaluationResults, xEvaluationResult{EvalActionName: action, EvalResourceName: "*",
				EvalDecision: decision, MissingContextValues: missing})
			continue
		}
		for _, res := range resources {
			decision, missing := evaluate(stmts, action, res, ctx)
			out.EvaluationResults = append(out.EvaluationResults, xEvaluationResult{EvalActionName: action, EvalResourceName: res,
				EvalDecision: decision, ResourceSpecificResults: []xResourceSpecResult{{EvalResourceName: res,
					EvalResourceDecision: decision, MissingContextValues: missing}}})
		}
	}
	return out, nil
}

// statementsOf reads a policy's statements (one object or a list); an unreadable policy has none.
func statementsOf(doc string) []simStatement {
	var p struct{ Statement json.RawMessage }
	if json.Unmarshal([]byte(doc), &p) != nil {
		return nil
	}
	var stmts []simStatement
	if json.Unmarshal(p.Statement, &stmts) == nil {
		return stmts
	}
	var one simStatement
	if json.Unmarshal(p.Statement, &one) == nil {
		return []simStatement{one}
	}
	return nil
}

// evaluate decides one action on one resource, and lists the condition keys that were needed and not given.
func evaluate(stmts []simStatement, action, resource string, ctx map[string][]string) (string, []string) {
	actionIn := func(raw json.RawMessage) bool {
		return anyMatch(raw, func(p string) bool { return glob.Match(strings.ToLower(p), strings.ToLower(action)) })
	}
	resourceIn := func(raw json.RawMessage) bool {
		return anyMatch(raw, func(p string) bool { return p == "*" || resource == "*" || glob.Match(p, resource) })
	}
	var missing []string
	allowed, denied := false, false
	for _, st := range stmts {
		switch {
		case st.Action != nil && !actionIn(st.Action), st.NotAction != nil && actionIn(st.NotAction),
			st.Action == nil && st.NotAction == nil:
			continue
		case st.Resource != nil && !resourceIn(st.Resource), st.NotResource != nil && resource != "*" && resourceIn(st.NotResource),
			st.Resource == nil && st.NotResource == nil:
			continue
		}
		holds := true
		for op, keys := range st.Condition {
			for key, vals := range keys {
				got, ok := ctx[strings.ToLower(key)]
				if !ok {
					if !slices.Contains(missing, key) {
						missing = append(missing, key)
					}
					holds = false
					continue
				}
				if !anyMatch(vals, func(want string) bool {
					return slices.ContainsFunc(got, func(g string) bool { return compare(op, g, want) })
				}) {
					holds = false
				}
			}
		}
		if !holds {
			continue
		}
		switch st.Effect {
		case "Deny":
			denied = true
		case "Allow":
			allowed = true
		}
	}
	slices.Sort(missing)
	switch {
	case denied:
		return "explicitDeny", missing
	case allowed:
		return "allowed", missing
	}
	return "implicitDeny", missing
}
