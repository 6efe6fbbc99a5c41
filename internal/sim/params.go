package sim

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/glob"
)

// node is the tree of Query parameters: "Filter.1.Value.2=x" becomes Filter -> 1 -> Value -> 2 = x. EC2 lists
// are "Name.N"; SNS (awsquery) lists are "Name.member.N" and maps "Name.entry.N.key/value".
type node struct {
	val  string
	set  bool
	kids map[string]*node
}

func parseParams(v url.Values) *node {
	root := &node{}
	for k, vs := range v {
		n := root
		for _, part := range strings.Split(k, ".") {
			if n.kids == nil {
				n.kids = map[string]*node{}
			}
			c := n.kids[part]
			if c == nil {
				c = &node{}
				n.kids[part] = c
			}
			n = c
		}
		if len(vs) > 0 {
			n.val, n.set = vs[0], true
		}
	}
	return root
}

// get follows a path of keys; nil when absent.
func (n *node) get(path ...string) *node {
	for _, p := range path {
		if n == nil || n.kids == nil {
			return nil
		}
		n = n.kids[p]
	}
	return n
}

// str is the value at path, "" when absent.
func (n *node) str(path ...string) string {
	if c := n.get(path...); c != nil {
		return c.val
	}
	return ""
}

// has tells whether a value is set at path.
func (n *node) has(path ...string) bool {
	c := n.get(path...)
	return c != nil && (c.set || len(c.kids) > 0)
}

// list returns the numbered children of the node at path, in numeric order ("X.1", "X.2", ...).
func (n *node) list(path ...string) []*node {
	c := n.get(path...)
	if c == nil {
		return nil
	}
	type item struct {
		i int
		n *node
	}
	var items []item
	for k, v := range c.kids {
		if i, err := strconv.Atoi(k); err == nil {
			items = append(items, item{i, v})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return a.i - b.i })
	out := make([]*node, len(items))
	for i, it := range items {
		out[i] = it.n
	}
	return out
}

// strs returns the values of the numbered children at path.
func (n *node) strs(path ...string) []string {
	var out []string
	for _, c := range n.list(path...) {
		out = append(out, c.val)
	}
	return out
}

// filter is one Filter.N of a Describe request.
type filter struct {
	name   string
	values []string
}

func (n *node) filters() []filter {
	var out []filter
	for _, f := range n.list("Filter") {
		out = append(out, filter{name: f.str("Name"), values: f.strs("Value")})
	}
	return out
}

// tagSpecs returns the tags of TagSpecification.N for the given resource type.
func (n *node) tagSpecs(resourceType string) map[string]string {
	var tags map[string]string
	for _, ts := range n.list("TagSpecification") {
		if ts.str("ResourceType") != resourceType {
			continue
		}
		for _, t := range ts.list("Tag") {
			if tags == nil {
				tags = map[string]string{}
			}
			tags[t.str("Key")] = t.str("Value")
		}
	}
	return tags
}

// globMatch matches EC2 filter values: "*" matches any sequence, "?" one character.
func globMatch(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	return glob.Match(pattern, s)
}

// matchFilters applies Describe filters to one resource: fields returns the resource's values for a filter
// name (ok false for an unsupported name), tags its tags. Filters are ANDed; a filter's values are ORed.
func matchFilters(fs []filter, tags map[string]string, fields func(name string) ([]string, bool)) (bool, *apiError) {
	for _, f := range fs {
		var vals []string
		switch {
		case strings.HasPrefix(f.name, "tag:"):
			if v, ok := tags[strings.TrimPrefix(f.name, "tag:")]; ok {
				vals = []string{v}
			}
		case f.name == "tag-key":
			for k := range tags {
				vals = append(vals, k)
			}
		case f.name == "tag-value":
			for _, v := range tags {
				vals = append(vals, v)
			}
		default:
			var ok bool
			vals, ok = fields(f.name)
			if !ok {
				return false, errf(400, "InvalidParameterValue", "The filter '%s' is invalid", f.name)
			}
		}
		hit := false
		for _, want := range f.values {
			for _, v := range vals {
				if globMatch(want, v) {
					hit = true
				}
			}
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}
