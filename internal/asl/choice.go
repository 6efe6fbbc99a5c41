package asl

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Comparators implemented; any other (StringMatches, NumericLessThan, TimestampEquals, ...) is refused at load.
var comparators = map[string]bool{
	"StringEquals":           true,
	"StringEqualsPath":       true,
	"NumericEquals":          true,
	"NumericGreaterThan":     true,
	"NumericGreaterThanPath": true,
	"BooleanEquals":          true,
	"IsPresent":              true,
	"IsNull":                 true,
	"IsString":               true,
}

// knownComparators are the other ASL comparison operators, so that using one reads as "not supported" rather
// than "unknown field".
var knownComparators = []string{"StringLessThan", "StringGreaterThan", "StringLessThanEquals",
	"StringGreaterThanEquals", "StringMatches", "NumericLessThan", "NumericGreaterThanEquals",
	"NumericLessThanEquals", "BooleanEqualsPath", "NumericEqualsPath", "IsNumeric", "IsBoolean", "IsTimestamp",
	"TimestampEquals", "TimestampLessThan", "TimestampGreaterThan", "TimestampLessThanEquals",
	"TimestampGreaterThanEquals", "Condition"}

type choiceRule struct {
	variable *path
	op       string
	str      string
	num      float64
	boolean  bool
	other    *path // *Path comparators
	and, or  []*choiceRule
	not      *choiceRule
	next     string
}

func parseChoiceRule(raw json.RawMessage, where string, top bool) (*choiceRule, error) {
	f, err := fieldsOf(raw, where)
	if err != nil {
		return nil, err
	}
	var ops []string
	for k := range f.m {
		switch {
		case k == "Variable" || k == "Next" || k == "Comment":
		case k == "And" || k == "Or" || k == "Not" || comparators[k]:
			ops = append(ops, k)
		default:
			for _, kc := range knownComparators {
				if k == kc {
					return nil, unsupported("%s: comparison operator %s", where, k)
				}
			}
			return nil, unsupported("%s: field %q", where, k)
		}
	}
	if len(ops) != 1 {
		return nil, invalid("%s: a choice rule needs exactly one comparison operator or And/Or/Not, found %v", where, sortedStrings(ops))
	}
	r := &choiceRule{op: ops[0]}
	next, hasNext, err := f.str("Next")
	if err != nil {
		return nil, err
	}
	if top && !hasNext {
		return nil, invalid("%s: a top-level choice rule needs Next", where)
	}
	if !top && hasNext {
		return nil, invalid("%s: a nested choice rule cannot have Next", where)
	}
	r.next = next
	variable, hasVar, err := f.str("Variable")
	if err != nil {
		return nil, err
	}
	switch r.op {
	case "And", "Or":
		if hasVar {
			return nil, invalid("%s: %s cannot have Variable", where, r.op)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(f.m[r.op], &list); err != nil || len(list) == 0 {
			return nil, invalid("%s: %s must be a non-empty array of rules", where, r.op)
		}
		for i, e := range list {
			sub, err := parseChoiceRule(e, fmt.Sprintf("%s.%s[%d]", where, r.op, i), false)
			if err != nil {
				return nil, err
			}
			if r.op == "And" {
				r.and = append(r.and, sub)
			} else {
				r.or = append(r.or, sub)
			}
		}
		return r, nil
	case "Not":
		if hasVar {
			return nil, invalid("%s: Not cannot have Variable", where)
		}
		sub, err := parseChoiceRule(f.m["Not"], where+".Not", false)
		if err != nil {
			return nil, err
		}
		r.not = sub
		return r, nil
	}
	if !hasVar {
		return nil, invalid("%s: %s needs Variable", where, r.op)
	}
	if r.variable, err = parsePath(variable, choicePath); err != nil {
		return nil, wrapLoad(where+": Variable", err)
	}
	v, err := decodeJSON(f.m[r.op])
	if err != nil {
		return nil, invalid("%s: %s: %v", where, r.op, err)
	}
	switch r.op {
	case "StringEquals":
		s, ok := v.(string)
		if !ok {
			return nil, invalid("%s: StringEquals needs a string", where)
		}
		r.str = s
	case "NumericEquals", "NumericGreaterThan":
		n, ok := toFloat(v)
		if !ok {
			return nil, invalid("%s: %s needs a number", where, r.op)
		}
		r.num = n
	case "BooleanEquals", "IsPresent", "IsNull", "IsString":
		b, ok := v.(bool)
		if !ok {
			return nil, invalid("%s: %s needs true or false", where, r.op)
		}
		r.boolean = b
	case "StringEqualsPath", "NumericGreaterThanPath":
		s, ok := v.(string)
		if !ok {
			return nil, invalid("%s: %s needs a path string", where, r.op)
		}
		if r.other, err = parsePath(s, choicePath); err != nil {
			return nil, wrapLoad(where+": "+r.op, err)
		}
	}
	return r, nil
}

// eval applies the rule to the effective input. Errors are States.Runtime causes: as in Step Functions, a
// Variable (or *Path operand) that selects nothing is an error for every comparator except IsPresent. And and Or
// stop at the first deciding rule, so And [IsPresent, compare] guards a missing field.
func (r *choiceRule) eval(input, ctxObj any) (bool, error) {
	switch r.op {
	case "And":
		for _, s := range r.and {
			ok, err := s.eval(input, ctxObj)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case "Or":
		for _, s := range r.or {
			ok, err := s.eval(input, ctxObj)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case "Not":
		ok, err := r.not.eval(input, ctxObj)
		return !ok, err
	}
	root := input
	if r.variable.context {
		root = ctxObj
	}
	v, present := r.variable.get(root)
	if r.op == "IsPresent" {
		return present == r.boolean, nil
	}
	if !present {
		return false, fmt.Errorf("invalid path '%s': the choice state's condition path references an invalid value", r.variable)
	}
	switch r.op {
	case "StringEquals":
		s, ok := v.(string)
		return ok && s == r.str, nil
	case "NumericEquals", "NumericGreaterThan":
		n, ok := toFloat(v)
		if !ok {
			return false, nil
		}
		if r.op == "NumericEquals" {
			return n == r.num, nil
		}
		return n > r.num, nil
	case "BooleanEquals":
		b, ok := v.(bool)
		return ok && b == r.boolean, nil
	case "IsNull":
		return (v == nil) == r.boolean, nil
	case "IsString":
		_, ok := v.(string)
		return ok == r.boolean, nil
	case "StringEqualsPath", "NumericGreaterThanPath":
		oroot := input
		if r.other.context {
			oroot = ctxObj
		}
		o, ok := r.other.get(oroot)
		if !ok {
			return false, fmt.Errorf("invalid path '%s': the choice state's condition path references an invalid value", r.other)
		}
		if r.op == "StringEqualsPath" {
			a, ok1 := v.(string)
			b, ok2 := o.(string)
			return ok1 && ok2 && a == b, nil
		}
		a, ok1 := toFloat(v)
		b, ok2 := toFloat(o)
		return ok1 && ok2 && a > b, nil
	}
	return false, fmt.Errorf("comparator %s not implemented", r.op)
}

func sortedStrings(s []string) string { return "[" + strings.Join(sortStrings(s), " ") + "]" }
