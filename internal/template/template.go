// Package template reads the SAM template (template.yaml) so that tests and tools can check what it deploys: the
// functions, their roles and the AWS actions each role allows. CloudFormation short-form tags (!Ref, !Sub,
// !GetAtt, !If, ...) are decoded into their long form ({"Ref": x}, {"Fn::Sub": x}, {"Fn::GetAtt": [r, a]}), so
// the result is the JSON form of the template.
package template

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// StepPolicyName is the inline policy of a function's role that allows exactly the AWS calls the function's code
// makes. The other policy of each role ("logs") lets the Lambda runtime write the function's log group.
const StepPolicyName = "aws-calls"

// Template is a decoded template.yaml.
type Template struct {
	Metadata   map[string]any
	Parameters map[string]map[string]any
	Rules      map[string]map[string]any
	Conditions map[string]any
	Globals    map[string]map[string]any
	Resources  map[string]Resource
	Outputs    map[string]map[string]any
	// Mappings is the Mappings section (issue 13: the log levels).
	Mappings map[string]any
}

// Resource is one entry of Resources.
type Resource struct {
	Type       string         `yaml:"Type"`
	Condition  string         `yaml:"Condition"`
	Properties map[string]any `yaml:"Properties"`
	Metadata   map[string]any `yaml:"Metadata"`
	// DeletionPolicy and UpdateReplacePolicy are "" when not set (CloudFormation's default: Delete).
	DeletionPolicy      string `yaml:"DeletionPolicy"`
	UpdateReplacePolicy string `yaml:"UpdateReplacePolicy"`
}

// Function is an AWS::Serverless::Function of the template.
type Function struct {
	LogicalID string
	// Dir is the function's directory under functions/ (ValidateAndRecordFunction -> validate-and-record).
	Dir string
	// Role is the logical id of the AWS::IAM::Role the function runs with ("" if it has no explicit role).
	Role string
}

// Statement is an IAM policy statement with Action and Resource normalised to lists.
type Statement struct {
	Effect    string
	Action    []string
	Resource  []any
	Condition map[string]any
}

// Load reads and decodes a SAM template.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse decodes a SAM template.
func Parse(b []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	v, err := convert(&doc)
	if err != nil {
		return nil, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("template is not a mapping")
	}
	t := &Template{Resources: map[string]Resource{}}
	t.Metadata, _ = root["Metadata"].(map[string]any)
	t.Parameters = mapOfMaps(root["Parameters"])
	t.Rules = mapOfMaps(root["Rules"])
	t.Conditions, _ = root["Conditions"].(map[string]any)
	t.Globals = mapOfMaps(root["Globals"])
	t.Outputs = mapOfMaps(root["Outputs"])
	t.Mappings, _ = root["Mappings"].(map[string]any)
	resources, ok := root["Resources"].(map[string]any)
	if !ok {
		return nil, errors.New("template has no Resources mapping")
	}
	for id, raw := range resources {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		r := Resource{}
		r.Type, _ = m["Type"].(string)
		r.Condition, _ = m["Condition"].(string)
		r.Properties, _ = m["Properties"].(map[string]any)
		r.Metadata, _ = m["Metadata"].(map[string]any)
		r.DeletionPolicy, _ = m["DeletionPolicy"].(string)
		r.UpdateReplacePolicy, _ = m["UpdateReplacePolicy"].(string)
		if r.Type == "" {
			return nil, fmt.Errorf("resource %s has no Type", id)
		}
		if r.Properties == nil {
			r.Properties = map[string]any{}
		}
		t.Resources[id] = r
	}
	return t, nil
}

func mapOfMaps(v any) map[string]map[string]any {
	out := map[string]map[string]any{}
	m, _ := v.(map[string]any)
	for k, e := range m {
		if em, ok := e.(map[string]any); ok {
			out[k] = em
		}
	}
	return out
}

// convert turns a YAML node into plain Go values (map[string]any, []any, string, int, float64, bool, nil),
// rewriting CloudFormation short-form tags into their long form.
func convert(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convert(n.Content[0])
	case yaml.AliasNode:
		return convert(n.Alias)
	}
	if tag := n.Tag; strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		return shortForm(tag[1:], n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			var k string
			if err := n.Content[i].Decode(&k); err != nil {
				return nil, fmt.Errorf("line %d: key: %w", n.Content[i].Line, err)
			}
			v, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convert(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}

// shortForm converts `!Name value` into {"Fn::Name": value} ({"Ref": value}, {"Condition": value}); a scalar
// !GetAtt "Resource.Attribute" becomes {"Fn::GetAtt": ["Resource", "Attribute"]}.
func shortForm(name string, n *yaml.Node) (any, error) {
	plain := *n
	plain.Tag = ""
	if n.Kind == yaml.ScalarNode {
		plain.Tag = "!!str"
	}
	v, err := convert(&plain)
	if err != nil {
		return nil, err
	}
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
	}
	return map[string]any{"Fn::" + name: v}, nil
}

// Functions returns the template's AWS::Serverless::Function resources, sorted by logical id.
func (t *Template) Functions() []Function {
	var fs []Function
	for id, r := range t.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		f := Function{LogicalID: id, Dir: FunctionDir(id)}
		f.Role, _ = GetAttResource(r.Properties["Role"], "Arn")
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b Function) int { return strings.Compare(a.LogicalID, b.LogicalID) })
	return fs
}

// FunctionDir is the directory under functions/ of a function's logical id: the id without its "Function" suffix,
// in kebab case (AttachIsolationProfileFunction -> attach-isolation-profile).
func FunctionDir(logicalID string) string {
	name := strings.TrimSuffix(logicalID, "Function")
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// GetAttResource returns the resource of {"Fn::GetAtt": [resource, attr]} when v is exactly that.
func GetAttResource(v any, attr string) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	args, ok := m["Fn::GetAtt"].([]any)
	if !ok || len(args) != 2 || args[1] != attr {
		return "", false
	}
	res, ok := args[0].(string)
	return res, ok
}

// RolePolicies returns the statements of each inline policy of an AWS::IAM::Role, by policy name.
func (t *Template) RolePolicies(roleID string) (map[string][]Statement, error) {
	r, ok := t.Resources[roleID]
	if !ok || r.Type != "AWS::IAM::Role" {
		return nil, fmt.Errorf("%s is not an AWS::IAM::Role of the template", roleID)
	}
	out := map[string][]Statement{}
	policies, _ := r.Properties["Policies"].([]any)
	for i, p := range policies {
		pm, _ := p.(map[string]any)
		name, _ := pm["PolicyName"].(string)
		if name == "" {
			return nil, fmt.Errorf("%s: policy %d has no literal PolicyName", roleID, i)
		}
		doc, _ := pm["PolicyDocument"].(map[string]any)
		stmts, err := Statements(doc)
		if err != nil {
			return nil, fmt.Errorf("%s policy %s: %w", roleID, name, err)
		}
		out[name] = stmts
	}
	return out, nil
}

// Statements normalises a policy document's Statement list.
func Statements(doc map[string]any) ([]Statement, error) {
	raw := doc["Statement"]
	list, ok := raw.([]any)
	if !ok {
		if raw == nil {
			return nil, errors.New("no Statement")
		}
		list = []any{raw}
	}
	var out []Statement
	for i, s := range list {
		sm, ok := s.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("statement %d is not a mapping", i)
		}
		st := Statement{}
		st.Effect, _ = sm["Effect"].(string)
		for _, a := range asList(sm["Action"]) {
			as, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("statement %d: Action %v is not a literal string", i, a)
			}
			st.Action = append(st.Action, as)
		}
		if _, ok := sm["NotAction"]; ok {
			return nil, fmt.Errorf("statement %d uses NotAction", i)
		}
		st.Resource = asList(sm["Resource"])
		st.Condition, _ = sm["Condition"].(map[string]any)
		out = append(out, st)
	}
	return out, nil
}

func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// FunctionActions returns, for each function (keyed by its directory under functions/, e.g.
// "validate-and-record"), the sorted actions its role's StepPolicyName policy allows, e.g.
// "ec2:DescribeInstances". A function without a role or without that policy maps to nil.
func (t *Template) FunctionActions() map[string][]string {
	out := map[string][]string{}
	for _, f := range t.Functions() {
		out[f.Dir] = nil
		if f.Role == "" {
			continue
		}
		policies, err := t.RolePolicies(f.Role)
		if err != nil {
			continue
		}
		var actions []string
		for _, st := range policies[StepPolicyName] {
			if st.Effect == "Allow" {
				actions = append(actions, st.Action...)
			}
		}
		slices.Sort(actions)
		out[f.Dir] = slices.Compact(actions)
	}
	return out
}

// Resolve renders a decoded template value as CloudFormation would, given the values of the names it refers to:
// parameters and pseudo parameters ("AWS::AccountId") by name, a resource's Ref by its logical id, an attribute
// by "Resource.Attribute". It handles Ref, Fn::GetAtt and Fn::Sub (${!x} is the literal ${x}), in maps and
// lists; any other function, or a name without a value, is an error. Tests render the templates' policies with
// it to load them into the simulator.
func Resolve(v any, values map[string]string) (any, error) {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			r, err := Resolve(e, values)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				switch k {
				case "Ref":
					return lookupValue(values, fmt.Sprint(arg))
				case "Fn::GetAtt":
					args, _ := arg.([]any)
					if len(args) != 2 {
						return nil, fmt.Errorf("Fn::GetAtt %v", arg)
					}
					return lookupValue(values, fmt.Sprintf("%v.%v", args[0], args[1]))
				case "Fn::Sub":
					s, ok := arg.(string)
					if !ok {
						return nil, fmt.Errorf("Fn::Sub with variables is not resolved: %v", arg)
					}
					return sub(s, values)
				}
				if strings.HasPrefix(k, "Fn::") {
					return nil, fmt.Errorf("%s is not resolved", k)
				}
			}
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			r, err := Resolve(e, values)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}

func lookupValue(values map[string]string, name string) (string, error) {
	if s, ok := values[name]; ok {
		return s, nil
	}
	return "", fmt.Errorf("no value for %s", name)
}

// sub renders a Fn::Sub string.
func sub(s string, values map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+j]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
		} else {
			v, err := lookupValue(values, name)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
		}
		s = s[i+j+1:]
	}
}
