package asl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Machine is a loaded, validated state machine definition. It is immutable and may run many executions at once.
type Machine struct {
	Comment        string
	TimeoutSeconds int
	top            *stateList
}

// stateList is the top level or one Parallel branch: its own StartAt and States (Next targets stay inside it).
type stateList struct {
	startAt string
	states  map[string]*state
}

type state struct {
	name    string
	typ     string
	next    string
	end     bool
	comment string

	inputPath, outputPath optionalPath
	resultPath            resultPath
	parameters            *payload
	resultSelector        *payload

	result    any  // Pass
	hasResult bool // Pass

	resource       string // Task
	timeoutSeconds int    // Task

	retry []retrier
	catch []catcher

	branches []*stateList // Parallel

	choices []*choiceRule // Choice
	dflt    string

	errName, cause string // Fail

	seconds int // Wait
}

// optionalPath is InputPath/OutputPath: absent means $, null means the empty object {}.
type optionalPath struct {
	null bool
	p    *path // nil: $
}

// resultPath: absent means $ (the result replaces the input), null means the result is discarded.
type resultPath struct {
	discard bool
	p       *path // nil: $
}

type retrier struct {
	errorEquals     []string
	intervalSeconds int64
	maxAttempts     int64
	backoffRate     float64
	maxDelaySeconds int64 // 0: no cap
	fullJitter      bool
}

type catcher struct {
	errorEquals []string
	next        string
	resultPath  resultPath
}

var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

// Load substitutes `${Name}` DefinitionSubstitutions in the definition text (as CloudFormation/SAM does, before
// parsing), parses it and validates it. A placeholder without a substitution is an error. Any field, state type,
// comparator, intrinsic function or context field this engine does not implement is refused (ErrUnsupported)
// rather than ignored.
func Load(definition []byte, substitutions map[string]string) (*Machine, error) {
	var missing []string
	text := placeholder.ReplaceAllStringFunc(string(definition), func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := substitutions[name]
		if !ok {
			missing = append(missing, m)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return nil, invalid("no substitution for %s", strings.Join(slices.Compact(sortStrings(missing)), ", "))
	}
	f, err := fieldsOf(json.RawMessage(text), "definition")
	if err != nil {
		return nil, err
	}
	if err := f.allow("Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"); err != nil {
		return nil, err
	}
	if err := f.queryLanguage(); err != nil {
		return nil, err
	}
	m := &Machine{}
	if m.Comment, _, err = f.str("Comment"); err != nil {
		return nil, err
	}
	if v, ok, err := f.str("Version"); err != nil {
		return nil, err
	} else if ok && v != "1.0" {
		return nil, invalid("definition: Version %q (only \"1.0\" exists)", v)
	}
	if t, ok, err := f.integer("TimeoutSeconds", 1, 99999999); err != nil {
		return nil, err
	} else if ok {
		m.TimeoutSeconds = int(t)
	}
	names := map[string]bool{}
	if m.top, err = parseStateList(f, "definition", names); err != nil {
		return nil, err
	}
	return m, nil
}

func parseStateList(f *fields, where string, names map[string]bool) (*stateList, error) {
	l := &stateList{states: map[string]*state{}}
	var err error
	var ok bool
	if l.startAt, ok, err = f.str("StartAt"); err != nil {
		return nil, err
	} else if !ok {
		return nil, invalid("%s: StartAt is required", where)
	}
	raw, ok := f.m["States"]
	if !ok {
		return nil, invalid("%s: States is required", where)
	}
	var states map[string]json.RawMessage
	if err := json.Unmarshal(raw, &states); err != nil || len(states) == 0 {
		return nil, invalid("%s: States must be a non-empty object", where)
	}
	for _, name := range sortedKeys(states) {
		if name == "" || len(name) > 80 {
			return nil, invalid("%s: state name %q must be 1 to 80 characters", where, name)
		}
		if names[name] {
			return nil, invalid("state name %q is used more than once (names are unique across the whole machine, branches included)", name)
		}
		names[name] = true
		st, err := parseState(name, states[name], names)
		if err != nil {
			return nil, err
		}
		l.states[name] = st
	}
	return l, l.validate(where)
}

// validate checks transitions and reachability within one state list.
func (l *stateList) validate(where string) error {
	if _, ok := l.states[l.startAt]; !ok {
		return invalid("%s: StartAt %q is not a state here", where, l.startAt)
	}
	for _, name := range sortedKeys(l.states) {
		for _, t := range l.states[name].targets() {
			if _, ok := l.states[t]; !ok {
				return invalid("state %q: transition to %q, which is not a state in the same scope", name, t)
			}
		}
	}
	seen := map[string]bool{l.startAt: true}
	queue := []string{l.startAt}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, t := range l.states[n].targets() {
			if !seen[t] {
				seen[t] = true
				queue = append(queue, t)
			}
		}
	}
	for _, name := range sortedKeys(l.states) {
		if !seen[name] {
			return invalid("state %q is not reachable from %s", name, l.startAt)
		}
	}
	return nil
}

func (s *state) targets() []string {
	var t []string
	if s.next != "" {
		t = append(t, s.next)
	}
	for _, c := range s.choices {
		t = append(t, c.next)
	}
	if s.dflt != "" {
		t = append(t, s.dflt)
	}
	for _, c := range s.catch {
		t = append(t, c.next)
	}
	return t
}

// Fields each state type accepts. Everything else is refused.
var stateFields = map[string][]string{
	"Task": {"Type", "Comment", "Resource", "Parameters", "ResultSelector", "ResultPath", "InputPath", "OutputPath",
		"TimeoutSeconds", "Retry", "Catch", "Next", "End", "QueryLanguage"},
	"Parallel": {"Type", "Comment", "Branches", "Parameters", "ResultSelector", "ResultPath", "InputPath",
		"OutputPath", "Retry", "Catch", "Next", "End", "QueryLanguage"},
	"Pass": {"Type", "Comment", "Result", "Parameters", "ResultPath", "InputPath", "OutputPath", "Next", "End",
		"QueryLanguage"},
	"Choice":  {"Type", "Comment", "Choices", "Default", "InputPath", "OutputPath", "QueryLanguage"},
	"Fail":    {"Type", "Comment", "Error", "Cause", "QueryLanguage"},
	"Succeed": {"Type", "Comment", "InputPath", "OutputPath", "QueryLanguage"},
	"Wait":    {"Type", "Comment", "Seconds", "Next", "End", "InputPath", "OutputPath", "QueryLanguage"},
}

func parseState(name string, raw json.RawMessage, names map[string]bool) (*state, error) {
	where := fmt.Sprintf("state %q", name)
	f, err := fieldsOf(raw, where)
	if err != nil {
		return nil, err
	}
	typ, ok, err := f.str("Type")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("%s: Type is required", where)
	}
	allowed, ok := stateFields[typ]
	if !ok {
		if typ == "Map" {
			return nil, unsupported("%s: Type Map", where)
		}
		return nil, invalid("%s: unknown Type %q", where, typ)
	}
	where = fmt.Sprintf("state %q (%s)", name, typ)
	f.where = where
	if err := f.allow(allowed...); err != nil {
		return nil, err
	}
	if err := f.queryLanguage(); err != nil {
		return nil, err
	}
	s := &state{name: name, typ: typ}
	if s.comment, _, err = f.str("Comment"); err != nil {
		return nil, err
	}

	// Transitions.
	switch typ {
	case "Task", "Parallel", "Pass", "Wait":
		var hasNext bool
		if s.next, hasNext, err = f.str("Next"); err != nil {
			return nil, err
		}
		end, hasEnd, err := f.boolean("End")
		if err != nil {
			return nil, err
		}
		if hasEnd && !end {
			return nil, invalid("%s: End must be true when present", where)
		}
		s.end = end
		if hasNext == s.end {
			return nil, invalid("%s: exactly one of Next and End is required", where)
		}
	}

	// Input and output processing.
	if s.inputPath, err = f.optionalPath("InputPath"); err != nil {
		return nil, err
	}
	if s.outputPath, err = f.optionalPath("OutputPath"); err != nil {
		return nil, err
	}
	if s.resultPath, err = f.resultPath("ResultPath"); err != nil {
		return nil, err
	}
	if s.parameters, err = f.payload("Parameters"); err != nil {
		return nil, err
	}
	if s.resultSelector, err = f.payload("ResultSelector"); err != nil {
		return nil, err
	}

	switch typ {
	case "Task":
		if s.resource, ok, err = f.str("Resource"); err != nil {
			return nil, err
		} else if !ok || s.resource == "" {
			return nil, invalid("%s: Resource is required", where)
		} else if serviceIntegration.MatchString(s.resource) && !IsSQSSendMessage(s.resource) {
			return nil, unsupported("%s: Resource %s: the only service integration run is sqs:sendMessage", where, s.resource)
		}
		if t, ok, err := f.integer("TimeoutSeconds", 1, 99999999); err != nil {
			return nil, err
		} else if ok {
			s.timeoutSeconds = int(t)
		}
	case "Pass":
		if r, ok := f.m["Result"]; ok {
			if s.result, err = decodeJSON(r); err != nil {
				return nil, invalid("%s: Result: %v", where, err)
			}
			s.hasResult = true
		}
	case "Parallel":
		var branches []json.RawMessage
		if err := json.Unmarshal(f.m["Branches"], &branches); err != nil || len(branches) == 0 {
			return nil, invalid("%s: Branches must be a non-empty array", where)
		}
		for i, b := range branches {
			bw := fmt.Sprintf("%s branch %d", where, i)
			bf, err := fieldsOf(b, bw)
			if err != nil {
				return nil, err
			}
			if err := bf.allow("StartAt", "States", "Comment"); err != nil {
				return nil, err
			}
			if _, _, err := bf.str("Comment"); err != nil {
				return nil, err
			}
			l, err := parseStateList(bf, bw, names)
			if err != nil {
				return nil, err
			}
			s.branches = append(s.branches, l)
		}
	case "Choice":
		var rules []json.RawMessage
		if err := json.Unmarshal(f.m["Choices"], &rules); err != nil || len(rules) == 0 {
			return nil, invalid("%s: Choices must be a non-empty array", where)
		}
		for i, r := range rules {
			rule, err := parseChoiceRule(r, fmt.Sprintf("%s Choices[%d]", where, i), true)
			if err != nil {
				return nil, err
			}
			s.choices = append(s.choices, rule)
		}
		if s.dflt, _, err = f.str("Default"); err != nil {
			return nil, err
		}
	case "Fail":
		if s.errName, _, err = f.str("Error"); err != nil {
			return nil, err
		}
		if s.cause, _, err = f.str("Cause"); err != nil {
			return nil, err
		}
	case "Wait":
		t, ok, err := f.integer("Seconds", 0, 99999999)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, invalid("%s: Seconds is required (Timestamp, SecondsPath and TimestampPath are not supported)", where)
		}
		s.seconds = int(t)
	}

	if s.retry, err = f.retriers(); err != nil {
		return nil, err
	}
	if s.catch, err = f.catchers(); err != nil {
		return nil, err
	}
	return s, nil
}

// fields is a JSON object being decoded strictly.
type fields struct {
	where string
	m     map[string]json.RawMessage
}

func fieldsOf(raw json.RawMessage, where string) (*fields, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		if err == nil {
			err = fmt.Errorf("not an object")
		}
		return nil, invalid("%s: %v", where, err)
	}
	return &fields{where: where, m: m}, nil
}

func (f *fields) allow(names ...string) error {
	for _, k := range sortedKeys(f.m) {
		if !slices.Contains(names, k) {
			return unsupported("%s: field %q", f.where, k)
		}
	}
	return nil
}

// queryLanguage accepts only JSONPath (the default); JSONata is not implemented.
func (f *fields) queryLanguage() error {
	q, ok, err := f.str("QueryLanguage")
	if err != nil || !ok || q == "JSONPath" {
		return err
	}
	return unsupported("%s: QueryLanguage %q (only JSONPath is implemented)", f.where, q)
}

func (f *fields) str(key string) (string, bool, error) {
	raw, ok := f.m[key]
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || string(raw) == "null" {
		return "", false, invalid("%s: %s must be a string", f.where, key)
	}
	return s, true, nil
}

func (f *fields) boolean(key string) (bool, bool, error) {
	raw, ok := f.m[key]
	if !ok {
		return false, false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil || string(raw) == "null" {
		return false, false, invalid("%s: %s must be true or false", f.where, key)
	}
	return b, true, nil
}

func (f *fields) integer(key string, min, max int64) (int64, bool, error) {
	raw, ok := f.m[key]
	if !ok {
		return 0, false, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return 0, false, invalid("%s: %s: %v", f.where, key, err)
	}
	n, ok := asInt(v, min, max)
	if !ok {
		return 0, false, invalid("%s: %s must be an integer from %d to %d", f.where, key, min, max)
	}
	return n, true, nil
}

func (f *fields) optionalPath(key string) (optionalPath, error) {
	raw, ok := f.m[key]
	if !ok {
		return optionalPath{}, nil
	}
	if string(raw) == "null" {
		return optionalPath{null: true}, nil
	}
	s, _, err := f.str(key)
	if err != nil {
		return optionalPath{}, err
	}
	p, err := parsePath(s, refPath)
	if err != nil {
		return optionalPath{}, wrapLoad(f.where+": "+key, err)
	}
	if len(p.segs) == 0 {
		return optionalPath{}, nil
	}
	return optionalPath{p: p}, nil
}

func (f *fields) resultPath(key string) (resultPath, error) {
	raw, ok := f.m[key]
	if !ok {
		return resultPath{}, nil
	}
	if string(raw) == "null" {
		return resultPath{discard: true}, nil
	}
	s, _, err := f.str(key)
	if err != nil {
		return resultPath{}, err
	}
	p, err := parsePath(s, refPath)
	if err != nil {
		return resultPath{}, wrapLoad(f.where+": "+key, err)
	}
	if len(p.segs) == 0 {
		return resultPath{}, nil
	}
	return resultPath{p: p}, nil
}

func (f *fields) payload(key string) (*payload, error) {
	raw, ok := f.m[key]
	if !ok {
		return nil, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, invalid("%s: %s: %v", f.where, key, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, invalid("%s: %s must be an object", f.where, key)
	}
	return compilePayload(v, f.where+" "+key)
}

func (f *fields) errorEquals(where string) ([]string, error) {
	var eq []string
	if err := json.Unmarshal(f.m["ErrorEquals"], &eq); err != nil || len(eq) == 0 {
		return nil, invalid("%s: ErrorEquals must be a non-empty array of error names", where)
	}
	for _, e := range eq {
		if e == "" {
			return nil, invalid("%s: empty error name in ErrorEquals", where)
		}
		if e == ErrorAll && len(eq) > 1 {
			return nil, invalid("%s: States.ALL must appear alone in ErrorEquals", where)
		}
	}
	return eq, nil
}

func (f *fields) retriers() ([]retrier, error) {
	raw, ok := f.m["Retry"]
	if !ok {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("%s: Retry must be an array", f.where)
	}
	var out []retrier
	for i, r := range list {
		where := fmt.Sprintf("%s Retry[%d]", f.where, i)
		rf, err := fieldsOf(r, where)
		if err != nil {
			return nil, err
		}
		if err := rf.allow("ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy", "Comment"); err != nil {
			return nil, err
		}
		rt := retrier{intervalSeconds: 1, maxAttempts: 3, backoffRate: 2.0}
		if rt.errorEquals, err = rf.errorEquals(where); err != nil {
			return nil, err
		}
		if slices.Contains(rt.errorEquals, ErrorAll) && i != len(list)-1 {
			return nil, invalid("%s: a States.ALL retrier must be the last one", where)
		}
		if v, ok, err := rf.integer("IntervalSeconds", 1, 99999999); err != nil {
			return nil, err
		} else if ok {
			rt.intervalSeconds = v
		}
		if v, ok, err := rf.integer("MaxAttempts", 0, 99999999); err != nil {
			return nil, err
		} else if ok {
			rt.maxAttempts = v
		}
		if v, ok, err := rf.integer("MaxDelaySeconds", 1, 31622400); err != nil {
			return nil, err
		} else if ok {
			rt.maxDelaySeconds = v
		}
		if b, ok := rf.m["BackoffRate"]; ok {
			v, err := decodeJSON(b)
			n, isNum := toFloat(v)
			if err != nil || !isNum || n < 1.0 || math.IsInf(n, 0) {
				return nil, invalid("%s: BackoffRate must be a number >= 1.0", where)
			}
			rt.backoffRate = n
		}
		if j, ok, err := rf.str("JitterStrategy"); err != nil {
			return nil, err
		} else if ok {
			switch j {
			case "FULL":
				rt.fullJitter = true
			case "NONE":
			default:
				return nil, invalid("%s: JitterStrategy must be FULL or NONE", where)
			}
		}
		if _, _, err := rf.str("Comment"); err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

func (f *fields) catchers() ([]catcher, error) {
	raw, ok := f.m["Catch"]
	if !ok {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("%s: Catch must be an array", f.where)
	}
	var out []catcher
	for i, r := range list {
		where := fmt.Sprintf("%s Catch[%d]", f.where, i)
		cf, err := fieldsOf(r, where)
		if err != nil {
			return nil, err
		}
		if err := cf.allow("ErrorEquals", "Next", "ResultPath", "Comment"); err != nil {
			return nil, err
		}
		var c catcher
		if c.errorEquals, err = cf.errorEquals(where); err != nil {
			return nil, err
		}
		if slices.Contains(c.errorEquals, ErrorAll) && i != len(list)-1 {
			return nil, invalid("%s: a States.ALL catcher must be the last one", where)
		}
		var hasNext bool
		if c.next, hasNext, err = cf.str("Next"); err != nil {
			return nil, err
		} else if !hasNext {
			return nil, invalid("%s: Next is required", where)
		}
		if c.resultPath, err = cf.resultPath("ResultPath"); err != nil {
			return nil, err
		}
		if _, _, err := cf.str("Comment"); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// asInvalid marks a plain path syntax error as ErrInvalidDefinition (sentinel-carrying errors pass through).
func asInvalid(err error) error {
	if isSentinel(err) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrInvalidDefinition, err)
}

func isSentinel(err error) bool {
	return errors.Is(err, ErrInvalidDefinition) || errors.Is(err, ErrUnsupported)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortStrings(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}
