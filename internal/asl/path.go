package asl

import (
	"fmt"
	"strconv"
	"strings"
)

type segKind int

const (
	segField segKind = iota
	segIndex
	segWildcard
)

type segment struct {
	kind  segKind
	name  string
	index int
}

// path is a parsed JSONPath of the subset ASL reference paths use: `$`, `.name`, `['name']`, `[n]`, and (only in
// Parameters and ResultSelector) `[*]`. A path starting with `$$` reads the context object.
type path struct {
	raw      string
	context  bool
	segs     []segment
	wildcard bool
}

func (p *path) String() string { return p.raw }

// pathMode says where a path appears, which decides what it may contain.
type pathMode int

const (
	// refPath: InputPath, OutputPath, ResultPath: a single node of the state's input.
	refPath pathMode = iota
	// choicePath: Choice Variable and the *Path comparators: a single node of the input or the context object.
	choicePath
	// payloadPath: a `.$` value in Parameters/ResultSelector or an intrinsic argument: input or context object,
	// and `[*]` on arrays.
	payloadPath
)

const nameForbidden = "[]'\"()@,:?*$ \t\r\n"

// parsePath parses a path; its errors wrap ErrInvalidDefinition or ErrUnsupported.
func parsePath(s string, mode pathMode) (*path, error) {
	p, err := parsePathSyntax(s, mode)
	if err != nil {
		return nil, asInvalid(err)
	}
	return p, nil
}

func parsePathSyntax(s string, mode pathMode) (*path, error) {
	if !strings.HasPrefix(s, "$") {
		return nil, fmt.Errorf("path %q must start with $", s)
	}
	p := &path{raw: s}
	i := 1
	if strings.HasPrefix(s, "$$") {
		if mode == refPath {
			return nil, fmt.Errorf("path %q: the context object ($$) cannot be used here", s)
		}
		p.context = true
		i = 2
	}
	for i < len(s) {
		switch s[i] {
		case '.':
			i++
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			name := s[i:j]
			if name == "" {
				return nil, fmt.Errorf("path %q: empty member name (the .. operator is not supported)", s)
			}
			if strings.ContainsAny(name, nameForbidden) {
				return nil, fmt.Errorf("path %q: member %q needs bracket notation ['...'] (operators @ .. , : ? * are not supported)", s, name)
			}
			p.segs = append(p.segs, segment{kind: segField, name: name})
			i = j
		case '[':
			if i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"') {
				q := s[i+1]
				k := strings.IndexByte(s[i+2:], q)
				if k < 0 || i+2+k+1 >= len(s) || s[i+2+k+1] != ']' {
					return nil, fmt.Errorf("path %q: unterminated quoted member at offset %d", s, i)
				}
				p.segs = append(p.segs, segment{kind: segField, name: s[i+2 : i+2+k]})
				i = i + 2 + k + 2
				continue
			}
			k := strings.IndexByte(s[i:], ']')
			if k < 0 {
				return nil, fmt.Errorf("path %q: unterminated [ at offset %d", s, i)
			}
			inner := s[i+1 : i+k]
			switch {
			case inner == "*":
				if mode != payloadPath {
					return nil, fmt.Errorf("path %q: [*] is only allowed in Parameters and ResultSelector", s)
				}
				p.segs = append(p.segs, segment{kind: segWildcard})
				p.wildcard = true
			case inner != "" && strings.Trim(inner, "0123456789") == "":
				n, err := strconv.Atoi(inner)
				if err != nil {
					return nil, fmt.Errorf("path %q: bad index %q", s, inner)
				}
				p.segs = append(p.segs, segment{kind: segIndex, index: n})
			default:
				return nil, fmt.Errorf("path %q: [%s] is not supported (only [n], [*] and ['name'])", s, inner)
			}
			i += k + 1
		default:
			return nil, fmt.Errorf("path %q: unexpected %q at offset %d", s, s[i], i)
		}
	}
	if p.context {
		if err := checkContextPath(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// contextFields are the context object fields this engine provides; any other $$ path is refused at load time.
var contextFields = map[string]map[string]bool{
	"Execution":    {"Id": true, "Name": true, "Input": true, "StartTime": true, "RedriveCount": true},
	"State":        {"Name": true, "EnteredTime": true, "RetryCount": true},
	"StateMachine": {"Name": true},
}

func checkContextPath(p *path) error {
	if len(p.segs) < 2 || p.segs[0].kind != segField || p.segs[1].kind != segField {
		return unsupported("context path %q: only $$.Execution.{Id,Name,Input,StartTime,RedriveCount}, "+
			"$$.State.{Name,EnteredTime,RetryCount} and $$.StateMachine.Name are provided", p.raw)
	}
	group, ok := contextFields[p.segs[0].name]
	if !ok || !group[p.segs[1].name] {
		return unsupported("context path %q: $$.%s.%s is not provided by this engine", p.raw, p.segs[0].name, p.segs[1].name)
	}
	if len(p.segs) > 2 && !(p.segs[0].name == "Execution" && p.segs[1].name == "Input") {
		return invalid("context path %q: $$.%s.%s has no members", p.raw, p.segs[0].name, p.segs[1].name)
	}
	return nil
}

// get returns the single node the path selects in root (the input, or the context object for a $$ path).
func (p *path) get(root any) (any, bool) {
	cur := root
	for _, sg := range p.segs {
		switch sg.kind {
		case segField:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			v, ok := m[sg.name]
			if !ok {
				return nil, false
			}
			cur = v
		case segIndex:
			a, ok := cur.([]any)
			if !ok || sg.index >= len(a) {
				return nil, false
			}
			cur = a[sg.index]
		case segWildcard:
			return nil, false // callers use collect for wildcard paths
		}
	}
	return cur, true
}

// collect evaluates a wildcard path: the list of every node it selects, members missing from an array element
// dropped (as Step Functions' JsonPath does).
func (p *path) collect(root any) []any {
	out := []any{}
	var walk func(node any, segs []segment)
	walk = func(node any, segs []segment) {
		if len(segs) == 0 {
			out = append(out, node)
			return
		}
		sg := segs[0]
		switch sg.kind {
		case segField:
			if m, ok := node.(map[string]any); ok {
				if v, ok := m[sg.name]; ok {
					walk(v, segs[1:])
				}
			}
		case segIndex:
			if a, ok := node.([]any); ok && sg.index < len(a) {
				walk(a[sg.index], segs[1:])
			}
		case segWildcard:
			if a, ok := node.([]any); ok {
				for _, v := range a {
					walk(v, segs[1:])
				}
			}
		}
	}
	walk(root, p.segs)
	return out
}

// set returns a copy of root with value placed at the path (ResultPath), creating missing objects on the way.
// root is not modified.
func (p *path) set(root, value any) (any, error) {
	if len(p.segs) == 0 {
		return value, nil
	}
	root = deepCopy(root)
	if root == nil {
		root = map[string]any{}
	}
	cur := root
	for i, sg := range p.segs {
		last := i == len(p.segs)-1
		switch sg.kind {
		case segField:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("cannot set %s: %s is not an object", p.raw, prefix(p, i))
			}
			if last {
				m[sg.name] = value
				return root, nil
			}
			next, ok := m[sg.name]
			if !ok || next == nil {
				next = map[string]any{}
				m[sg.name] = next
			}
			cur = next
		case segIndex:
			a, ok := cur.([]any)
			if !ok || sg.index >= len(a) {
				return nil, fmt.Errorf("cannot set %s: %s has no element %d", p.raw, prefix(p, i), sg.index)
			}
			if last {
				a[sg.index] = value
				return root, nil
			}
			cur = a[sg.index]
		}
	}
	return root, nil
}

// prefix renders the first n segments of p, for error messages.
func prefix(p *path, n int) string {
	var b strings.Builder
	if p.context {
		b.WriteString("$$")
	} else {
		b.WriteString("$")
	}
	for _, sg := range p.segs[:n] {
		switch sg.kind {
		case segField:
			b.WriteString("['" + sg.name + "']")
		case segIndex:
			b.WriteString("[" + strconv.Itoa(sg.index) + "]")
		case segWildcard:
			b.WriteString("[*]")
		}
	}
	return b.String()
}
