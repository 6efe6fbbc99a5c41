package asl

import (
	"fmt"
	"strings"
)

// payload is a compiled Parameters or ResultSelector template. Keys ending in ".$" take the value of a path (of
// the effective input, or the context object for $$) or of an intrinsic function; other values are copied as they
// are. Nested objects and objects inside arrays are processed the same way.
type payload struct {
	fields []payloadField // object; nil fields with obj false means a literal
	elems  []*payload     // array
	isObj  bool
	isArr  bool
	lit    any
}

type payloadField struct {
	key  string
	val  *payload
	path *path
	call *intrinsicCall
}

func compilePayload(v any, where string) (*payload, error) {
	switch t := v.(type) {
	case map[string]any:
		p := &payload{isObj: true}
		seen := map[string]bool{}
		for _, k := range sortedKeys(t) {
			val := t[k]
			f := payloadField{key: k}
			if strings.HasSuffix(k, ".$") {
				f.key = strings.TrimSuffix(k, ".$")
				s, ok := val.(string)
				if !ok {
					return nil, invalid("%s: the value of %q must be a path or an intrinsic function string, not a %s", where, k, typeName(val))
				}
				switch {
				case strings.HasPrefix(s, "$"):
					pp, err := parsePath(s, payloadPath)
					if err != nil {
						return nil, wrapLoad(where+": "+k, err)
					}
					f.path = pp
				default:
					call, err := parseIntrinsic(s)
					if err != nil {
						return nil, wrapLoad(where+": "+k, err)
					}
					f.call = call
				}
			} else {
				sub, err := compilePayload(val, where+"."+k)
				if err != nil {
					return nil, err
				}
				f.val = sub
			}
			if f.key == "" {
				return nil, invalid("%s: empty key", where)
			}
			if seen[f.key] {
				return nil, invalid("%s: key %q appears both with and without .$", where, f.key)
			}
			seen[f.key] = true
			p.fields = append(p.fields, f)
		}
		return p, nil
	case []any:
		p := &payload{isArr: true}
		for i, e := range t {
			sub, err := compilePayload(e, fmt.Sprintf("%s[%d]", where, i))
			if err != nil {
				return nil, err
			}
			p.elems = append(p.elems, sub)
		}
		return p, nil
	default:
		return &payload{lit: v}, nil
	}
}

// wrapLoad prefixes a load error with where it occurred, keeping its sentinel (ErrUnsupported/ErrInvalidDefinition).
func wrapLoad(where string, err error) error {
	return fmt.Errorf("%s: %w", where, err)
}

// eval builds the payload from the effective input and the context object. Errors are States.Runtime causes.
func (p *payload) eval(input, ctxObj any) (any, error) {
	switch {
	case p.isObj:
		out := make(map[string]any, len(p.fields))
		for _, f := range p.fields {
			var v any
			var err error
			switch {
			case f.path != nil:
				v, err = evalPath(f.path, input, ctxObj)
				if err != nil {
					return nil, fmt.Errorf("the value of %q: %v", f.key+".$", err)
				}
			case f.call != nil:
				v, err = f.call.eval(input, ctxObj)
				if err != nil {
					return nil, fmt.Errorf("the value of %q: %v", f.key+".$", err)
				}
			default:
				v, err = f.val.eval(input, ctxObj)
				if err != nil {
					return nil, err
				}
			}
			out[f.key] = v
		}
		return out, nil
	case p.isArr:
		out := make([]any, len(p.elems))
		for i, e := range p.elems {
			v, err := e.eval(input, ctxObj)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	default:
		return deepCopy(p.lit), nil
	}
}

// evalPath reads a path from the input or (for $$) the context object. A path that selects nothing is an error
// (Step Functions reports it as States.Runtime); a wildcard path yields the list of what it selects.
func evalPath(p *path, input, ctxObj any) (any, error) {
	root := input
	if p.context {
		root = ctxObj
	}
	if p.wildcard {
		return p.collect(root), nil
	}
	v, ok := p.get(root)
	if !ok {
		what := "the effective input"
		if p.context {
			what = "the context object"
		}
		return nil, fmt.Errorf("invalid path '%s': no value at that path in %s", p.raw, what)
	}
	return v, nil
}
