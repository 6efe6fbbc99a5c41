package asl

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Intrinsic functions supported in Parameters and ResultSelector `.$` values. Any other States.* function is
// refused at load time.
var intrinsicArity = map[string][2]int{ // min, max (-1: unbounded)
	"States.Format":       {1, -1},
	"States.Array":        {0, -1},
	"States.StringToJson": {1, 1},
	"States.JsonToString": {1, 1},
	"States.ArrayLength":  {1, 1},
}

type argKind int

const (
	argString argKind = iota
	argLiteral
	argPath
	argCall
)

type intrinsicArg struct {
	kind argKind
	str  strLit // argString
	lit  any    // argLiteral: json.Number, bool or nil
	path *path
	call *intrinsicCall
}

// strLit is a quoted intrinsic string with its escapes resolved. parts are the text between unescaped `{}`
// placeholders (len(parts) == holes+1); value renders the placeholders back as "{}".
type strLit struct {
	value string
	parts []string
}

type intrinsicCall struct {
	name string
	args []intrinsicArg
}

type intrinsicParser struct {
	s string
	i int
}

func parseIntrinsic(s string) (*intrinsicCall, error) {
	p := &intrinsicParser{s: s}
	c, err := p.call()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, invalid("intrinsic %q: unexpected %q after the call", s, p.s[p.i:])
	}
	return c, nil
}

func (p *intrinsicParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *intrinsicParser) call() (*intrinsicCall, error) {
	start := p.i
	for p.i < len(p.s) && (isAlnum(p.s[p.i]) || p.s[p.i] == '.') {
		p.i++
	}
	name := p.s[start:p.i]
	arity, ok := intrinsicArity[name]
	if !ok {
		if strings.HasPrefix(name, "States.") {
			return nil, unsupported("intrinsic function %s (in %q): only States.Format, States.Array, "+
				"States.StringToJson, States.JsonToString and States.ArrayLength are implemented", name, p.s)
		}
		return nil, invalid("%q is neither a path nor an intrinsic function", p.s)
	}
	if p.i >= len(p.s) || p.s[p.i] != '(' {
		return nil, invalid("intrinsic %q: expected ( after %s", p.s, name)
	}
	p.i++
	c := &intrinsicCall{name: name}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ')' {
		p.i++
	} else {
		for {
			p.space()
			a, err := p.arg()
			if err != nil {
				return nil, err
			}
			c.args = append(c.args, a)
			p.space()
			if p.i >= len(p.s) {
				return nil, invalid("intrinsic %q: missing )", p.s)
			}
			if p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.s[p.i] == ')' {
				p.i++
				break
			}
			return nil, invalid("intrinsic %q: unexpected %q", p.s, p.s[p.i])
		}
	}
	if len(c.args) < arity[0] || (arity[1] >= 0 && len(c.args) > arity[1]) {
		return nil, invalid("intrinsic %q: %s takes %s, got %d", p.s, name, arityText(arity), len(c.args))
	}
	return c, c.check(p.s)
}

func arityText(a [2]int) string {
	switch {
	case a[1] < 0:
		return fmt.Sprintf("at least %d argument(s)", a[0])
	case a[0] == a[1]:
		return fmt.Sprintf("%d argument(s)", a[0])
	}
	return fmt.Sprintf("%d to %d arguments", a[0], a[1])
}

// check validates argument kinds that are known at load time.
func (c *intrinsicCall) check(src string) error {
	switch c.name {
	case "States.Format":
		t := c.args[0]
		switch t.kind {
		case argString:
			if holes := len(t.str.parts) - 1; holes != len(c.args)-1 {
				return invalid("intrinsic %q: the template has %d {} placeholder(s) but %d value(s) follow", src, holes, len(c.args)-1)
			}
		case argPath:
		default:
			return invalid("intrinsic %q: the first argument of States.Format must be a string or a path", src)
		}
	case "States.JsonToString":
		if c.args[0].kind != argPath {
			return invalid("intrinsic %q: the argument of States.JsonToString must be a path", src)
		}
	case "States.StringToJson", "States.ArrayLength":
		if k := c.args[0].kind; k == argLiteral {
			return invalid("intrinsic %q: the argument of %s cannot be %v", src, c.name, c.args[0].lit)
		}
	}
	return nil
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func (p *intrinsicParser) arg() (intrinsicArg, error) {
	if p.i >= len(p.s) {
		return intrinsicArg{}, invalid("intrinsic %q: missing argument", p.s)
	}
	switch c := p.s[p.i]; {
	case c == '\'':
		lit, err := p.stringLit()
		return intrinsicArg{kind: argString, str: lit}, err
	case c == '$':
		start := p.i
		quote := byte(0)
		for p.i < len(p.s) {
			ch := p.s[p.i]
			if quote != 0 {
				if ch == quote {
					quote = 0
				}
			} else if ch == '\'' || ch == '"' {
				quote = ch
			} else if ch == ',' || ch == ')' || ch == ' ' {
				break
			}
			p.i++
		}
		pp, err := parsePath(p.s[start:p.i], payloadPath)
		if err != nil {
			return intrinsicArg{}, wrapLoad(fmt.Sprintf("intrinsic %q", p.s), err)
		}
		if pp.wildcard {
			return intrinsicArg{}, invalid("intrinsic %q: [*] is not supported in intrinsic arguments", p.s)
		}
		return intrinsicArg{kind: argPath, path: pp}, nil
	case strings.HasPrefix(p.s[p.i:], "States."):
		call, err := p.call()
		return intrinsicArg{kind: argCall, call: call}, err
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		for p.i < len(p.s) && strings.IndexByte("+-.eE0123456789", p.s[p.i]) >= 0 {
			p.i++
		}
		num := p.s[start:p.i]
		if _, err := strconv.ParseFloat(num, 64); err != nil || !json.Valid([]byte(num)) {
			return intrinsicArg{}, invalid("intrinsic %q: bad number %q", p.s, num)
		}
		return intrinsicArg{kind: argLiteral, lit: json.Number(num)}, nil
	default:
		for word, v := range map[string]any{"null": nil, "true": true, "false": false} {
			if strings.HasPrefix(p.s[p.i:], word) {
				p.i += len(word)
				return intrinsicArg{kind: argLiteral, lit: v}, nil
			}
		}
		return intrinsicArg{}, invalid("intrinsic %q: unexpected %q (strings are quoted with ')", p.s, p.s[p.i:])
	}
}

// stringLit reads a '...' literal. Documented escapes: \' \{ \} \\ ; any other backslash is an error.
// An unescaped {} is a States.Format placeholder; a lone unescaped { or } is an error.
func (p *intrinsicParser) stringLit() (strLit, error) {
	p.i++ // opening quote
	var cur, all strings.Builder
	var parts []string
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '\\':
			if p.i+1 >= len(p.s) || strings.IndexByte(`'{}\`, p.s[p.i+1]) < 0 {
				return strLit{}, invalid("intrinsic %q: open escape \\ at offset %d (only \\' \\{ \\} \\\\ are escapes)", p.s, p.i)
			}
			cur.WriteByte(p.s[p.i+1])
			all.WriteByte(p.s[p.i+1])
			p.i += 2
		case '\'':
			p.i++
			parts = append(parts, cur.String())
			return strLit{value: all.String(), parts: parts}, nil
		case '{':
			if p.i+1 >= len(p.s) || p.s[p.i+1] != '}' {
				return strLit{}, invalid("intrinsic %q: unescaped { at offset %d", p.s, p.i)
			}
			parts = append(parts, cur.String())
			cur.Reset()
			all.WriteString("{}")
			p.i += 2
		case '}':
			return strLit{}, invalid("intrinsic %q: unescaped } at offset %d", p.s, p.i)
		default:
			cur.WriteByte(c)
			all.WriteByte(c)
			p.i++
		}
	}
	return strLit{}, invalid("intrinsic %q: unterminated string", p.s)
}

// eval runs the call; errors are States.Runtime causes.
func (c *intrinsicCall) eval(input, ctxObj any) (any, error) {
	args := make([]any, len(c.args))
	for i, a := range c.args {
		switch a.kind {
		case argString:
			args[i] = a.str.value
		case argLiteral:
			args[i] = a.lit
		case argPath:
			v, err := evalPath(a.path, input, ctxObj)
			if err != nil {
				return nil, err
			}
			args[i] = v
		case argCall:
			v, err := a.call.eval(input, ctxObj)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
	}
	switch c.name {
	case "States.Format":
		var parts []string
		if c.args[0].kind == argString {
			parts = c.args[0].str.parts
		} else {
			t, ok := args[0].(string)
			if !ok {
				return nil, fmt.Errorf("States.Format: the template %s is a %s, not a string", c.args[0].path, typeName(args[0]))
			}
			parts = strings.Split(t, "{}")
			if len(parts)-1 != len(args)-1 {
				return nil, fmt.Errorf("States.Format: the template has %d {} placeholder(s) but %d value(s) follow", len(parts)-1, len(args)-1)
			}
		}
		var b strings.Builder
		b.WriteString(parts[0])
		for i, v := range args[1:] {
			s, err := formatValue(v)
			if err != nil {
				return nil, fmt.Errorf("States.Format argument %d: %v", i+2, err)
			}
			b.WriteString(s)
			b.WriteString(parts[i+1])
		}
		return b.String(), nil
	case "States.Array":
		return args, nil
	case "States.StringToJson":
		s, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("States.StringToJson: the argument is a %s, not a string", typeName(args[0]))
		}
		v, err := decodeJSON([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("States.StringToJson: %v", err)
		}
		return v, nil
	case "States.JsonToString":
		return string(encodeJSON(args[0])), nil
	case "States.ArrayLength":
		a, ok := args[0].([]any)
		if !ok {
			return nil, fmt.Errorf("States.ArrayLength: the argument is a %s, not an array", typeName(args[0]))
		}
		return json.Number(strconv.Itoa(len(a))), nil
	}
	return nil, fmt.Errorf("intrinsic %s not implemented", c.name)
}

// formatValue renders a States.Format argument: strings as they are, numbers, booleans and null as JSON text.
// Objects and arrays are refused (use States.JsonToString).
func formatValue(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case nil, bool, json.Number, float64, int:
		return string(encodeJSON(t)), nil
	}
	return "", fmt.Errorf("a %s cannot be formatted (wrap it in States.JsonToString)", typeName(v))
}
