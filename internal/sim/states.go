package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Step Functions API (AWS JSON 1.0, X-Amz-Target AWSStepFunctions.<Action>, signing name "states"): the
// StartExecution, ListExecutions and DescribeExecution calls the reconciler makes. The simulator has no ASL
// engine of its own: a test registers each state machine with a function that runs one execution to its end
// (internal/runner's), and StartExecution runs it in the background, so that ListExecutions sees it RUNNING
// meanwhile, as in AWS. Faults and latency are not applied to these calls.

// StateMachine runs one execution of a registered state machine to its end and returns its final status
// (SUCCEEDED, FAILED, TIMED_OUT, ABORTED).
type StateMachine func(ctx context.Context, name string, input []byte) string

// Execution is one execution the simulated Step Functions knows.
type Execution struct {
	ARN, StateMachineARN, Name, Input, Status string
	Start, Stop                               time.Time
}

type statesState struct {
	machines map[string]StateMachine // by ARN; nil value: executions are started and never end on their own
	execs    []*Execution            // in start order
	running  sync.WaitGroup
}

func (s *Server) statesLocked() *statesState {
	if s.states == nil {
		s.states = &statesState{machines: map[string]StateMachine{}}
	}
	return s.states
}

// StateMachineARN is the ARN of the state machine name in the simulated account.
func (s *Server) StateMachineARN(name string) string {
	return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", s.acct.region, s.acct.id, name)
}

// SetStateMachine registers (or replaces) the state machine name: run runs each execution StartExecution starts.
// A nil run keeps every execution RUNNING until FinishExecution ends it (an execution still at work).
func (s *Server) SetStateMachine(name string, run StateMachine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statesLocked().machines[s.StateMachineARN(name)] = run
}

// AddExecution records a RUNNING execution of the state machine name that runs nothing (one EventBridge started
// moments ago, still at work), and returns its ARN.
func (s *Server) AddExecution(machine, name, input string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	arn := s.StateMachineARN(machine)
	e := &Execution{ARN: executionARN(arn, name), StateMachineARN: arn, Name: name, Input: input, Status: "RUNNING",
		Start: s.clock.Now()}
	st := s.statesLocked()
	if _, ok := st.machines[arn]; !ok {
		st.machines[arn] = nil
	}
	st.execs = append(st.execs, e)
	return e.ARN
}

// FinishExecution ends a RUNNING execution with status.
func (s *Server) FinishExecution(arn, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.statesLocked().execs {
		if e.ARN == arn && e.Status == "RUNNING" {
			e.Status, e.Stop = status, s.clock.Now()
		}
	}
}

// WaitExecutions waits until every execution StartExecution ran has ended (those without a runner excepted).
func (s *Server) WaitExecutions() {
	s.mu.Lock()
	st := s.statesLocked()
	s.mu.Unlock()
	st.running.Wait()
}

// Executions lists every execution, in start order.
func (s *Server) Executions() []Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Execution
	for _, e := range s.statesLocked().execs {
		out = append(out, *e)
	}
	return out
}

func executionARN(machineARN, name string) string {
	return strings.Replace(machineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

// Execution names: 1 to 80 characters, none of whitespace, < > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : / or control
// characters (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
var badExecutionName = regexp.MustCompile(`[\s<>{}\[\]?*"#%\\^|~$&,;:/\x{0}-\x{1f}\x{7f}-\x{9f}` + "`]")

// serveStates answers one Step Functions request.
func (s *Server) serveStates(w http.ResponseWriter, r *http.Request, body []byte, caller string, start time.Time) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	var in map[string]any
	_ = json.Unmarshal(body, &in)
	params := url.Values{}
	for k, v := range in {
		if str, ok := v.(string); ok {
			params.Set(k, str)
		}
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.reqIDs++
	reqID := requestID(s.reqIDs)
	out, apiErr, launch := s.statesAct(action, params, in)
	status := http.StatusOK
	call := Call{Seq: seq, Service: "states", Action: action, Params: params, Caller: caller,
		Mutating: isMutating("states", action), RequestID: reqID, Start: start, End: s.clock.Now()}
	if apiErr != nil {
		status, call.ErrorCode = apiErr.Status, apiErr.Code
		out = map[string]any{"__type": apiErr.Code, "message": apiErr.Message}
	}
	call.HTTPStatus = status
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	if launch != nil {
		launch()
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-RequestId", reqID)
	if apiErr != nil {
		w.Header().Set("X-Amzn-ErrorType", apiErr.Code)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (e *Execution) list() map[string]any {
	m := map[string]any{"executionArn": e.ARN, "stateMachineArn": e.StateMachineARN, "name": e.Name,
		"status": e.Status, "startDate": epoch(e.Start)}
	if !e.Stop.IsZero() {
		m["stopDate"] = epoch(e.Stop)
	}
	return m
}

// statesAct runs the action with s.mu held; launch, when set, starts the new execution once the lock is released.
func (s *Server) statesAct(action string, p url.Values, in map[string]any) (out any, err *apiError, launch func()) {
	st := s.statesLocked()
	switch action {
	case "StartExecution":
		// https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html: a name is
		// unique per state machine for 90 days; the same name and input as an open execution succeeds and
		// returns that execution (idempotent); a closed one, or another input, is ExecutionAlreadyExists.
		arn := p.Get("stateMachineArn")
		run, ok := st.machines[arn]
		if !ok {
			return nil, errf(400, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn), nil
		}
		name, input := p.Get("name"), p.Get("input")
		if name == "" {
			s.reqIDs++
			name = requestID(s.reqIDs)
		}
		if input == "" {
			input = "{}"
		}
		if len(name) > 80 || badExecutionName.MatchString(name) {
			return nil, errf(400, "InvalidName", "Invalid Name: '%s'", name), nil
		}
		if !json.Valid([]byte(input)) {
			return nil, errf(400, "InvalidExecutionInput", "Invalid State Machine Execution Input: not JSON"), nil
		}
		for _, e := range st.execs {
			if e.StateMachineARN == arn && e.Name == name {
				if e.Status == "RUNNING" && e.Input == input {
					return map[string]any{"executionArn": e.ARN, "startDate": epoch(e.Start)}, nil, nil
				}
				return nil, errf(400, "ExecutionAlreadyExists", "Execution Already Exists: '%s'", e.ARN), nil
			}
		}
		e := &Execution{ARN: executionARN(arn, name), StateMachineARN: arn, Name: name, Input: input,
			Status: "RUNNING", Start: s.clock.Now()}
		st.execs = append(st.execs, e)
		if run != nil {
			st.running.Add(1)
			launch = func() {
				go func() {
					defer st.running.Done()
					status := run(context.Background(), name, []byte(input))
					s.mu.Lock()
					e.Status, e.Stop = status, s.clock.Now()
					s.mu.Unlock()
				}()
			}
		}
		return map[string]any{"executionArn": e.ARN, "startDate": epoch(e.Start)}, nil, launch
	case "ListExecutions":
		// https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html: most recent
		// first, maxResults up to 1000 (0: the default, 100), nextToken to page on.
		arn := p.Get("stateMachineArn")
		if _, ok := st.machines[arn]; !ok {
			return nil, errf(400, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'", arn), nil
		}
		limit := 100
		if v, ok := in["maxResults"].(float64); ok && v > 0 {
			limit = min(int(v), 1000)
		}
		var match []*Execution
		for _, e := range slices.Backward(st.execs) {
			if e.StateMachineARN == arn && (p.Get("statusFilter") == "" || p.Get("statusFilter") == e.Status) {
				match = append(match, e)
			}
		}
		from := 0
		if tok := p.Get("nextToken"); tok != "" {
			n, convErr := strconv.Atoi(tok)
			if convErr != nil || n < 0 || n > len(match) {
				return nil, errf(400, "InvalidToken", "Invalid Token: '%s'", tok), nil
			}
			from = n
		}
		to := min(from+limit, len(match))
		list := []map[string]any{}
		for _, e := range match[from:to] {
			list = append(list, e.list())
		}
		res := map[string]any{"executions": list}
		if to < len(match) {
			res["nextToken"] = strconv.Itoa(to)
		}
		return res, nil, nil
	case "DescribeExecution":
		arn := p.Get("executionArn")
		for _, e := range st.execs {
			if e.ARN == arn {
				m := e.list()
				m["input"] = e.Input
				return m, nil, nil
			}
		}
		return nil, errf(400, "ExecutionDoesNotExist", "Execution Does Not Exist: '%s'", arn), nil
	}
	return nil, errf(400, "UnknownOperationException", "The action %s is not simulated.", action), nil
}
