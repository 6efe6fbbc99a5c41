package crosscheck

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// run is one execution (or one redrive of it) as either engine reports it. The Node script prints this shape.
type run struct {
	Status string  `json:"status"`
	Error  string  `json:"error,omitempty"`
	Cause  string  `json:"cause,omitempty"`
	Output any     `json:"output,omitempty"` // SUCCEEDED only
	Visits []visit `json:"visits"`
	// Tasks lists, per Task state, the payload (effective input, after Parameters) of each invocation in order.
	Tasks map[string][]any `json:"tasks,omitempty"`
	// Retries counts retries per state. Logged, not compared: how often a step meets a not-yet-settled AWS
	// state depends on how the two Parallel branches interleave their calls.
	Retries map[string]int `json:"retries,omitempty"`
}

// visit is one entry into a state, with the raw input it was entered with (before InputPath/Parameters). The
// input of every state is the output of the one before, so comparing inputs compares all the data flow.
type visit struct {
	State    string `json:"state"`
	Parallel string `json:"parallel,omitempty"`
	Branch   int    `json:"branch,omitempty"`
	Input    any    `json:"input"`
}

// trace is what is compared: the top-level path, and each Parallel branch's own path (the order in which the
// two branches' states interleave is scheduling, not semantics), with the outcome.
type trace struct {
	Status   string            `json:"status"`
	Error    string            `json:"error,omitempty"`
	Cause    string            `json:"cause,omitempty"`
	Output   any               `json:"output,omitempty"`
	Path     []step            `json:"path"`
	Branches map[string][]step `json:"branches,omitempty"` // key "Contain[0]"
	// Tasks: what each Task state sent its function. A retry sends the same payload again (the definition's
	// Parameters do not read $$.State.RetryCount), and how many retries a step needs depends on how the branches'
	// calls interleave, so repeats in a row are collapsed.
	Tasks map[string][]any `json:"tasks,omitempty"`
}

type step struct {
	State string `json:"state"`
	Input any    `json:"input"`
}

func (r run) trace() trace {
	tr := trace{Status: r.Status, Error: r.Error, Cause: r.Cause, Output: r.Output}
	for state, payloads := range r.Tasks {
		if tr.Tasks == nil {
			tr.Tasks = map[string][]any{}
		}
		for _, p := range payloads {
			if l := tr.Tasks[state]; len(l) == 0 || !reflect.DeepEqual(l[len(l)-1], p) {
				tr.Tasks[state] = append(l, p)
			}
		}
	}
	for _, v := range r.Visits {
		s := step{State: v.State, Input: v.Input}
		if v.Parallel == "" {
			tr.Path = append(tr.Path, s)
			continue
		}
		if tr.Branches == nil {
			tr.Branches = map[string][]step{}
		}
		k := fmt.Sprintf("%s[%d]", v.Parallel, v.Branch)
		tr.Branches[k] = append(tr.Branches[k], s)
	}
	return tr
}

// goRun is the part of e that ran with RedriveCount n (0: the execution, 1: its first redrive).
func goRun(t *testing.T, e *asl.Execution, n int) run {
	t.Helper()
	r := run{Status: string(e.Status), Error: e.Error, Cause: e.Cause}
	if len(e.Output) > 0 {
		if err := json.Unmarshal(e.Output, &r.Output); err != nil {
			t.Fatalf("our engine: output: %v", err)
		}
	}
	// The events of run n are those after its n-th ExecutionRedriven event.
	runs := 0
	for _, ev := range e.History.Events() {
		switch {
		case ev.Type == asl.ExecutionRedriven:
			runs++
		case ev.Type == asl.TaskScheduled && runs == n:
			var p any
			if err := json.Unmarshal(ev.Input, &p); err != nil {
				t.Fatalf("our engine: payload of %s: %v", ev.State, err)
			}
			if r.Tasks == nil {
				r.Tasks = map[string][]any{}
			}
			r.Tasks[ev.State] = append(r.Tasks[ev.State], p)
		}
	}
	for _, s := range e.History.Summary() {
		if s.RedriveCount != n {
			continue
		}
		v := visit{State: s.Name, Parallel: s.Parallel, Branch: s.Branch}
		if err := json.Unmarshal(s.Input, &v.Input); err != nil {
			t.Fatalf("our engine: input of %s: %v", s.Name, err)
		}
		r.Visits = append(r.Visits, v)
		if s.Retries > 0 {
			if r.Retries == nil {
				r.Retries = map[string]int{}
			}
			r.Retries[s.Name] += s.Retries
		}
	}
	return r
}

// Normalisation. Two runs against two fresh simulators legitimately differ in exactly these:
//
//   - recordedAt: "Validate and record" stamps the wall-clock time of its run; so do the incident record
//     (openedAt, startedAt, …) and every change ("at"): any RFC 3339 time is replaced by <time>.
//   - versionId: the S3 version ids of the incident record, drawn by each simulator.
//   - ids the simulator generates during the run (sg-, snap-, iip-assoc-, … : prefix-0 + 16 hex digits): the
//     simulator draws them from one seeded sequence in call order, and the two Parallel branches' calls
//     interleave differently from run to run, so the same resource can get another draw. They are replaced by
//     prefix-#n, n counting first appearances per prefix in a fixed walk of the trace (map keys sorted), so the
//     same id must still appear in the same places on both sides.
//   - UUID-shaped ids (SNS message ids, EC2 request ids in error messages): same reason, one sequence per server.
//   - preIsolation.instance, the full description in the incident record, read beside the network branch.
//   - the groups Ensure creates are named after their VPC, and every "changes" list is sorted: Ensure and Apply
//     act on several VPCs and ENIs at once, so the ids the simulator draws for the groups and the order in which
//     the changes are reported follow the goroutines, not the engine.
//
// Ids that the scenario or the event names (instances, ENIs, volumes, existing groups) are not generated and are
// kept verbatim.
var (
	genID  = regexp.MustCompile(`\b([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*)-0[0-9a-f]{16}\b`)
	uuidID = regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
)

type normaliser struct {
	fixed map[string]bool   // ids named by the scenario or the event
	seen  map[string]string // generated id -> placeholder
	count map[string]int    // per prefix
}

// newNormaliser keeps every id that occurs in the given documents (scenario, event).
func newNormaliser(docs ...[]byte) *normaliser {
	n := &normaliser{fixed: map[string]bool{}, seen: map[string]string{}, count: map[string]int{}}
	for _, d := range docs {
		for _, id := range genID.FindAllString(string(d), -1) {
			n.fixed[id] = true
		}
	}
	return n
}

// traces normalises one engine's runs with one normaliser, so an id that two runs share (the execution and its
// redrive) maps to one placeholder.
func (n *normaliser) traces(t *testing.T, runs []run) []any {
	t.Helper()
	var decoded []any
	for _, r := range runs {
		b, err := json.Marshal(r.trace())
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		n.groupsByVPC(v)
		decoded = append(decoded, v)
	}
	var out []any
	for _, v := range decoded {
		out = append(out, sortChanges("", n.value("", v)))
	}
	return out
}

// groupsByVPC names the groups the run created after their VPC ({vpcId, isolationGroupId, untrackGroupId}
// objects): Ensure creates the groups of several VPCs at once, so which VPC's group gets which simulator id, and
// where an id first appears, depends on the goroutines' order, not on the engine.
func (n *normaliser) groupsByVPC(v any) {
	switch v := v.(type) {
	case map[string]any:
		if vpc, ok := v["vpcId"].(string); ok {
			for key, kind := range map[string]string{"isolationGroupId": "isolation", "untrackGroupId": "untrack"} {
				if id, ok := v[key].(string); ok && id != "" && !n.fixed[id] {
					n.seen[id] = "sg(" + kind + " group of " + vpc + ")"
				}
			}
		}
		for _, e := range v {
			n.groupsByVPC(e)
		}
	case []any:
		for _, e := range v {
			n.groupsByVPC(e)
		}
	}
}

// sortChanges orders every "changes" list (workflow.Change) by content: a step that changes several resources at
// once (Ensure, Apply) reports them in the order its concurrent calls completed.
func sortChanges(key string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = sortChanges(k, e)
		}
	case []any:
		for i, e := range v {
			v[i] = sortChanges("", e)
		}
		if key == "changes" {
			slices.SortStableFunc(v, func(a, b any) int {
				x, _ := json.Marshal(a)
				y, _ := json.Marshal(b)
				return strings.Compare(string(x), string(y))
			})
		}
	}
	return v
}

func (n *normaliser) value(key string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		if key == "instance" {
			// The incident's full DescribeInstances description: "Record pre-isolation state" reads it beside
			// the network branch, so whether it shows the groups before or after Apply is a race of the run that
			// made the record (the release cases' setup), not of the engine.
			return "<instance description>"
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v[k] = n.value(k, v[k])
		}
		return v
	case []any:
		for i := range v {
			v[i] = n.value("", v[i])
		}
		return v
	case string:
		if key == "recordedAt" {
			return "<recordedAt>"
		}
		var body map[string]any
		if key == "MessageBody" && json.Unmarshal([]byte(v), &body) == nil {
			// The evidence job, as JSON text: compared as what it says (either engine's key order).
			return n.value("", body)
		}
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return "<time>"
		}
		if key == "versionId" {
			return n.placeholder("version", v)
		}
		return n.ids(v)
	}
	return v
}

func (n *normaliser) ids(s string) string {
	s = genID.ReplaceAllStringFunc(s, func(id string) string {
		if n.fixed[id] {
			return id
		}
		return n.placeholder(genID.FindStringSubmatch(id)[1], id)
	})
	return uuidID.ReplaceAllStringFunc(s, func(id string) string { return n.placeholder("uuid", id) })
}

func (n *normaliser) placeholder(kind, id string) string {
	if p, ok := n.seen[id]; ok {
		return p
	}
	n.count[kind]++
	p := fmt.Sprintf("%s-#%d", kind, n.count[kind])
	n.seen[id] = p
	return p
}

// pathNames lists a run's states in the order entered, for the log.
func pathNames(r run) []string {
	var names []string
	for _, v := range r.Visits {
		names = append(names, v.State)
	}
	return slices.Clip(names)
}
