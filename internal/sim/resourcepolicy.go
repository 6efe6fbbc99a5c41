package sim

// Resource policies of SNS topics and S3 buckets, for callers of other accounts (issue 13, item 15: an
// organization's central topic and bucket).
//
// IAM policy evaluation (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
// "Cross-account policy evaluation logic"): an explicit Deny in any policy wins; a request from another account
// is allowed only if the resource policy allows it AND the caller's identity policy does. The simulator does not
// model identity policies (internal/template checks the roles' statements), so: an explicit Deny of the resource
// policy refuses any caller; a caller of another account also needs an Allow of the resource policy; a caller of
// this account needs none.
//
// aws:PrincipalOrgID is "the identifier of the organization in AWS Organizations to which the requesting
// account belongs" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid);
// aws:PrincipalAccount the requesting account. Global condition keys can be used as policy variables
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html), so a Resource may hold
// ${aws:PrincipalAccount}. A condition key absent from the request makes its condition false (no ...IfExists
// operators are simulated). aws:SecureTransport is "true": the simulator stands in for AWS's HTTPS endpoints.
//
// Supported: Principal "*", {"AWS": "*" | account | arn:PARTITION:iam::ACCOUNT:root | a list} (a Service principal
// never matches an account's caller); Action and Resource with * and ? wildcards (Action case-insensitive);
// Condition operators StringEquals, StringNotEquals, StringLike, StringNotLike, Bool on the keys above. Any other
// operator or element is refused when the scenario is loaded, so that no policy is silently half-evaluated.

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/glob"
)

// Caller is a principal of another account that calls this simulated account: its account and organization.
type Caller struct {
	Account      string `json:"account"`
	Organization string `json:"organization,omitempty"` // AWS Organizations id, o-...; "" = in none
}

// principalOf is who made the request: a caller the scenario lists, else this account.
func (a *Account) principalOf(accessKey string) Caller {
	if c, ok := a.callers[accessKey]; ok {
		return c
	}
	return Caller{Account: a.id, Organization: a.organization}
}

type resourceStatement struct {
	Sid       string                             `json:"Sid"`
	Effect    string                             `json:"Effect"`
	Principal json.RawMessage                    `json:"Principal"`
	Action    stringOrList                       `json:"Action"`
	Resource  stringOrList                       `json:"Resource"`
	Condition map[string]map[string]stringOrList `json:"Condition"`
}

type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		// Bool conditions may be JSON booleans.
		var v bool
		if err2 := json.Unmarshal(b, &v); err2 == nil {
			*s = []string{fmt.Sprint(v)}
			return nil
		}
		return err
	}
	*s = many
	return nil
}

var (
	supportedOperators = []string{"StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "Bool"}
	supportedKeys      = []string{"aws:principalorgid", "aws:principalaccount", "aws:securetransport"}
	policyElements     = []string{"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
)

// parseResourcePolicy checks a resource policy against what the simulator evaluates.
func parseResourcePolicy(doc string) ([]resourceStatement, error) {
	var p struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return nil, fmt.Errorf("not a policy document: %w", err)
	}
	var raws []map[string]json.RawMessage
	if err := json.Unmarshal(p.Statement, &raws); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(p.Statement, &one); err != nil || one == nil {
			return nil, errors.New("the Statement element is neither a statement nor a list of statements")
		}
		raws = []map[string]json.RawMessage{one}
	}
	var out []resourceStatement
	for i, raw := range raws {
		for k := range raw {
			if !slices.Contains(policyElements, k) {
				return nil, fmt.Errorf("statement %d: element %s is not simulated", i, k)
			}
		}
		b, _ := json.Marshal(raw)
		var st resourceStatement
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, fmt.Errorf("statement %d: Effect %q", i, st.Effect)
		}
		if len(st.Principal) == 0 || len(st.Action) == 0 || len(st.Resource) == 0 {
			return nil, fmt.Errorf("statement %d: a resource policy statement needs Principal, Action and Resource", i)
		}
		for op, keys := range st.Condition {
			if !slices.Contains(supportedOperators, op) {
				return nil, fmt.Errorf("statement %d: condition operator %s is not simulated", i, op)
			}
			for k := range keys {
				if !slices.Contains(supportedKeys, strings.ToLower(k)) {
					return nil, fmt.Errorf("statement %d: condition key %s is not simulated", i, k)
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// requestContext is what a request's policy evaluation sees.
type requestContext struct {
	caller   Caller
	action   string // e.g. "sns:Publish"
	resource string // ARN
}

func (rc requestContext) key(k string) (string, bool) {
	switch strings.ToLower(k) {
	case "aws:principalaccount":
		return rc.caller.Account, true
	case "aws:principalorgid":
		return rc.caller.Organization, rc.caller.Organization != ""
	case "aws:securetransport":
		return "true", true
	}
	return "", false
}

var policyVariable = regexp.MustCompile(`\$\{([^}]+)\}`)

// expand replaces policy variables; an unresolvable one makes the pattern match nothing.
func (rc requestContext) expand(pattern string) (string, bool) {
	ok := true
	out := policyVariable.ReplaceAllStringFunc(pattern, func(m string) string {
		v, found := rc.key(m[2 : len(m)-1])
		ok = ok && found
		return v
	})
	return out, ok
}

func (st resourceStatement) principalMatches(c Caller) bool {
	var star string
	if json.Unmarshal(st.Principal, &star) == nil {
		return star == "*"
	}
	var m map[string]stringOrList
	if json.Unmarshal(st.Principal, &m) != nil {
		return false
	}
	for _, p := range m["AWS"] {
		if p == "*" || p == c.Account || strings.HasSuffix(p, ":iam::"+c.Account+":root") {
			return true
		}
	}
	return false
}

func (st resourceStatement) matches(rc requestContext) bool {
	if !st.principalMatches(rc.caller) {
		return false
	}
	if !slices.ContainsFunc(st.Action, func(a string) bool { return glob.Match(strings.ToLower(a), strings.ToLower(rc.action)) }) {
		return false
	}
	if !slices.ContainsFunc(st.Resource, func(r string) bool {
		r, ok := rc.expand(r)
		return ok && glob.Match(r, rc.resource)
	}) {
		return false
	}
	for op, keys := range st.Condition {
		for k, want := range keys {
			got, present := rc.key(k)
			if !conditionHolds(op, got, present, want) {
				return false
			}
		}
	}
	return true
}

func conditionHolds(op, got string, present bool, want []string) bool {
	anyOf := func(eq func(w string) bool) bool { return slices.ContainsFunc(want, eq) }
	switch op {
	case "StringEquals":
		return present && anyOf(func(w string) bool { return w == got })
	case "StringNotEquals":
		return !present || !anyOf(func(w string) bool { return w == got })
	case "StringLike":
		return present && anyOf(func(w string) bool { return glob.Match(w, got) })
	case "StringNotLike":
		return !present || !anyOf(func(w string) bool { return glob.Match(w, got) })
	case "Bool":
		return present && anyOf(func(w string) bool { return strings.EqualFold(w, got) })
	}
	return false
}

// authorize evaluates the resource policy (nil: none) of a resource owned by this account.
func (a *Account) authorize(policy []resourceStatement, rc requestContext) bool {
	allowed := rc.caller.Account == a.id
	for _, st := range policy {
		if !st.matches(rc) {
			continue
		}
		if st.Effect == "Deny" {
			return false
		}
		allowed = true
	}
	return allowed
}
