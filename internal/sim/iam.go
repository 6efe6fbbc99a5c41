package sim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// IAM (awsquery, version 2010-05-08): roles with inline and attached managed policies, and the instance profiles
// EC2 associates (the same profiles: a profile names its role). IAM sees a new profile at once; its
// visibleAfter only delays EC2.

var iamHandlers = map[string]handler{
	"GetInstanceProfile":       getInstanceProfile,
	"GetRole":                  getRole,
	"GetRolePolicy":            getRolePolicy,
	"PutRolePolicy":            putRolePolicy,
	"DeleteRolePolicy":         deleteRolePolicy,
	"ListRolePolicies":         listRolePolicies,
	"ListAttachedRolePolicies": listAttachedRolePolicies,
}

type role struct {
	name, path, id, arn string
	trust               string
	created             time.Time
	inline              map[string]string // policy name -> document as put
	attached            []string          // managed policy ARNs, in attach order
}

// defaultTrustPolicy lets EC2 assume a role declared without a trust policy.
const defaultTrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func (a *Account) addRole(r Role, created time.Time) {
	path := r.Path
	if path == "" {
		path = "/"
	}
	trust := string(r.AssumeRolePolicyDocument)
	if trust == "" {
		trust = defaultTrustPolicy
	}
	ro := &role{name: r.Name, path: path, id: "AROA" + strings.ToUpper(derivedID("", "role/"+r.Name)[1:18]),
		arn: fmt.Sprintf("arn:%s:iam::%s:role%s%s", Partition(a.region), a.id, path, r.Name), trust: trust, created: created,
		inline: map[string]string{}, attached: slices.Clone(r.AttachedPolicies)}
	for n, d := range r.InlinePolicies {
		ro.inline[n] = string(d)
	}
	a.roles.put(r.Name, ro)
}

// iamEncode is how IAM returns policy documents: URL-encoded (RFC 3986), which the SDK passes on as is.
func iamEncode(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

type xIAMRole struct {
	Path                     string `xml:"Path"`
	RoleName                 string `xml:"RoleName"`
	RoleID                   string `xml:"RoleId"`
	Arn                      string `xml:"Arn"`
	CreateDate               string `xml:"CreateDate"`
	AssumeRolePolicyDocument string `xml:"AssumeRolePolicyDocument"`
	MaxSessionDuration       int    `xml:"MaxSessionDuration"`
}

type xInstanceProfile struct {
	Path                string     `xml:"Path"`
	InstanceProfileName string     `xml:"InstanceProfileName"`
	InstanceProfileID   string     `xml:"InstanceProfileId"`
	Arn                 string     `xml:"Arn"`
	CreateDate          string     `xml:"CreateDate"`
	Roles               []xIAMRole `xml:"Roles>member"`
}

type getInstanceProfileResult struct {
	InstanceProfile xInstanceProfile `xml:"InstanceProfile"`
}

type getRoleResult struct {
	Role xIAMRole `xml:"Role"`
}

type getRolePolicyResult struct {
	RoleName       string `xml:"RoleName"`
	PolicyName     string `xml:"PolicyName"`
	PolicyDocument string `xml:"PolicyDocument"`
}

type listRolePoliciesResult struct {
	PolicyNames []string `xml:"PolicyNames>member"`
	IsTruncated bool     `xml:"IsTruncated"`
	Marker      string   `xml:"Marker,omitempty"`
}

type xAttachedPolicy struct {
	PolicyName string `xml:"PolicyName"`
	PolicyArn  string `xml:"PolicyArn"`
}

type listAttachedRolePoliciesResult struct {
	AttachedPolicies []xAttachedPolicy `xml:"AttachedPolicies>member"`
	IsTruncated      bool              `xml:"IsTruncated"`
	Marker           string            `xml:"Marker,omitempty"`
}

func (r *role) xml() xIAMRole {
	return xIAMRole{Path: r.path, RoleName: r.name, RoleID: r.id, Arn: r.arn, CreateDate: iamTS(r.created),
		AssumeRolePolicyDocument: iamEncode(r.trust), MaxSessionDuration: 3600}
}

func iamTS(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

var iamName = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

func iamNameParam(req *request, param string, max int) (string, *apiError) {
	v := req.p.str(param)
	if v == "" {
		return "", errf(400, "ValidationError", "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(param))
	}
	if len(v) > max || !iamName.MatchString(v) {
		return "", errf(400, "ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", v, lowerFirst(param))
	}
	return v, nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func (a *Account) iamRole(req *request) (*role, *apiError) {
	name, err := iamNameParam(req, "RoleName", 64)
	if err != nil {
		return nil, err
	}
	r := a.roles.get(name)
	if r == nil {
		return nil, errf(404, "NoSuchEntity", "The role with name %s cannot be found.", name)
	}
	return r, nil
}

func getInstanceProfile(a *Account, req *request) (any, *apiError) {
	name, err := iamNameParam(req, "InstanceProfileName", 128)
	if err != nil {
		return nil, err
	}
	p := a.profiles.get(name)
	if p == nil {
		return nil, errf(404, "NoSuchEntity", "Instance Profile %s cannot be found.", name)
	}
	x := xInstanceProfile{Path: profilePath(p.arn), InstanceProfileName: p.name, InstanceProfileID: p.id, Arn: p.arn,
		CreateDate: iamTS(a.start.Add(-time.Hour))}
	if r := a.roles.get(p.role); r != nil {
		x.Roles = []xIAMRole{r.xml()}
	}
	return &getInstanceProfileResult{InstanceProfile: x}, nil
}

// profilePath is the path in an instance profile ARN: arn:aws:iam::123456789012:instance-profile/a/b/name -> /a/b/.
func profilePath(arn string) string {
	_, res, _ := strings.Cut(arn, ":instance-profile")
	if i := strings.LastIndex(res, "/"); i > 0 {
		return res[:i+1]
	}
	return "/"
}

func getRole(a *Account, req *request) (any, *apiError) {
	r, err := a.iamRole(req)
	if err != nil {
		return nil, err
	}
	return &getRoleResult{Role: r.xml()}, nil
}

// getRolePolicy answers the document URL-encoded, as IAM does
// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRolePolicy.html: "The policy document returned
// in this structure is URL-encoded compliant with RFC 3986"); the SDK does not decode it.
func getRolePolicy(a *Account, req *request) (any, *apiError) {
	r, err := a.iamRole(req)
	if err != nil {
		return nil, err
	}
	name, err := iamNameParam(req, "PolicyName", 128)
	if err != nil {
		return nil, err
	}
	doc, ok := r.inline[name]
	if !ok {
		return nil, errf(404, "NoSuchEntity", "The role policy with name %s cannot be found.", name)
	}
	return &getRolePolicyResult{RoleName: r.name, PolicyName: name, PolicyDocument: iamEncode(doc)}, nil
}

// inlinePolicyQuota is IAM's limit on the aggregate size of a role's inline policies (whitespace not counted).
const inlinePolicyQuota = 10240

func putRolePolicy(a *Account, req *request) (any, *apiError) {
	r, err := a.iamRole(req)
	if err != nil {
		return nil, err
	}
	name, err := iamNameParam(req, "PolicyName", 128)
	if err != nil {
		return nil, err
	}
	doc := req.p.str("PolicyDocument")
	if doc == "" {
		return nil, errf(400, "ValidationError", "1 validation error detected: Value null at 'policyDocument' failed to satisfy constraint: Member must not be null")
	}
	if err := checkPolicyDocument(doc); err != nil {
		return nil, err
	}
	size := 0
	for n, d := range r.inline {
		if n != name {
			size += policySize(d)
		}
	}
	if size+policySize(doc) > inlinePolicyQuota {
		return nil, errf(409, "LimitExceeded", "Maximum policy size of %d bytes exceeded for role %s", inlinePolicyQuota, r.name)
	}
	r.inline[name] = doc
	return nil, nil
}

func policySize(doc string) int {
	n := 0
	for _, c := range doc {
		if c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			n++
		}
	}
	return n
}

// checkPolicyDocument is IAM's grammar check, reduced to what a caller can get wrong in practice: JSON syntax, a
// known Version, and statements with Effect Allow|Deny, an action and a resource.
func checkPolicyDocument(doc string) *apiError {
	var p struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return errf(400, "MalformedPolicyDocument", "Syntax errors in policy.")
	}
	if p.Version != "" && p.Version != "2012-10-17" && p.Version != "2008-10-17" {
		return errf(400, "MalformedPolicyDocument", "The policy failed legacy parsing")
	}
	var stmts []map[string]json.RawMessage
	if err := json.Unmarshal(p.Statement, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(p.Statement, &one); err != nil || one == nil {
			return errf(400, "MalformedPolicyDocument", "Syntax errors in policy.")
		}
		stmts = []map[string]json.RawMessage{one}
	}
	if len(stmts) == 0 {
		return errf(400, "MalformedPolicyDocument", "Syntax errors in policy.")
	}
	for _, s := range stmts {
		var effect string
		_ = json.Unmarshal(s["Effect"], &effect)
		if effect != "Allow" && effect != "Deny" {
			return errf(400, "MalformedPolicyDocument", "Policy statement must contain a valid Effect.")
		}
		if s["Action"] == nil && s["NotAction"] == nil {
			return errf(400, "MalformedPolicyDocument", "Policy statement must contain actions.")
		}
		if s["Resource"] == nil && s["NotResource"] == nil {
			return errf(400, "MalformedPolicyDocument", "Policy statement must contain resources.")
		}
	}
	return nil
}

func deleteRolePolicy(a *Account, req *request) (any, *apiError) {
	r, err := a.iamRole(req)
	if err != nil {
		return nil, err
	}
	name, err := iamNameParam(req, "PolicyName", 128)
	if err != nil {
		return nil, err
	}
	if _, ok := r.inline[name]; !ok {
		return nil, errf(404, "NoSuchEntity", "The role policy with name %s cannot be found.", name)
	}
	delete(r.inline, name)
	return nil, nil
}

// page applies IAM's MaxItems/Marker pagination (the marker is the index of the next item).
func page[T any](req *request, items []T) ([]T, bool, string, *apiError) {
	from := 0
	if m := req.p.str("Marker"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > len(items) {
			return nil, false, "", errf(400, "ValidationError", "Invalid Marker.")
		}
		from = n
	}
	max := 100
	if v := req.p.str("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, false, "", errf(400, "ValidationError", "1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", v)
		}
		max = n
	}
	to := min(from+max, len(items))
	if to < len(items) {
		return items[from:to], true, strconv.Itoa(to), nil
	}
	return items[from:to], false, "", nil
}

func listRolePolicies(a *Account, req *request) (any, *apiError) {
	r, err := a.iamRole(req)
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(mapKeys(r.inline))
	items, trunc, marker, err := page(req, names)
	if err != nil {
		return nil, err
	}
	return &listRolePoliciesResult{PolicyNames: items, IsTruncated: trunc, Marker: marker}, nil
}

func listAttachedRolePolicies(a *Account, req *request) (any, *apiError) {
	r, err := a.iamRole(req)
	if err != nil {
		return nil, err
	}
	var all []xAttachedPolicy
	for _, arn := range r.attached {
		all = append(all, xAttachedPolicy{PolicyName: arn[strings.LastIndex(arn, "/")+1:], PolicyArn: arn})
	}
	items, trunc, marker, err := page(req, all)
	if err != nil {
		return nil, err
	}
	return &listAttachedRolePoliciesResult{AttachedPolicies: items, IsTruncated: trunc, Marker: marker}, nil
}

// ---- for tests (call inside Server.Update) ----

// RoleState is what IAM holds for a role: compare it before and after a run.
type RoleState struct {
	Name, Path, ARN  string
	InlinePolicies   map[string]string // name -> document as put (not URL-encoded)
	AttachedPolicies []string          // managed policy ARNs
}

// Role returns a role's state (ok false when there is no such role).
func (a *Account) Role(name string) (RoleState, bool) {
	r := a.roles.get(name)
	if r == nil {
		return RoleState{}, false
	}
	st := RoleState{Name: r.name, Path: r.path, ARN: r.arn, InlinePolicies: map[string]string{},
		AttachedPolicies: slices.Clone(r.attached)}
	for n, d := range r.inline {
		st.InlinePolicies[n] = d
	}
	return st, true
}

// PutRolePolicy sets an inline policy as another actor would (no validation).
func (a *Account) PutRolePolicy(roleName, policyName, document string) error {
	r := a.roles.get(roleName)
	if r == nil {
		return fmt.Errorf("no role %s", roleName)
	}
	r.inline[policyName] = document
	return nil
}
