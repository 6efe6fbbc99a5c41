package asl_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/google/go-cmp/cmp"
)

// hello is the Lambda function of the AWS developer guide's "Creating a Lambda state machine" tutorial, which the
// ResultPath examples use: it returns "Hello, " + event.who + "!".
func hello(_ context.Context, in any, _ int) (any, error) {
	m, ok := in.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("hello: input is %T", in)
	}
	return fmt.Sprintf("Hello, %v!", m["who"]), nil
}

const helloFn = "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction"

// Examples from the developer guide pages "ResultPath" and "InputPath, ResultPath and OutputPath Example", with
// their inputs and outputs. (The guide's "Include the result with the input" output differs from its own input in
// two words, "of input" and "Default behavior"; the expected output here keeps the input's words.)
func TestInputResultOutputPathDocExamples(t *testing.T) {
	tutorialInput := `{"comment":"This is a test of the input and output of a Task state.","details":"Default example","who":"AWS Step Functions"}`
	tests := []struct {
		name   string
		fields string
		input  string
		want   string
	}{
		{"default ResultPath replaces the input", ``, tutorialInput, `"Hello, AWS Step Functions!"`},
		{"ResultPath $ replaces the input", `"ResultPath":"$",`, tutorialInput, `"Hello, AWS Step Functions!"`},
		{"ResultPath includes the result with the input", `"ResultPath":"$.taskresult",`, tutorialInput,
			`{"comment":"This is a test of the input and output of a Task state.","details":"Default example","who":"AWS Step Functions","taskresult":"Hello, AWS Step Functions!"}`},
		{"ResultPath into a child node",
			`"ResultPath":"$.strings.lambdaresult",`,
			`{"comment":"An input comment.","strings":{"string1":"foo","string2":"bar","string3":"baz"},"who":"AWS Step Functions"}`,
			`{"comment":"An input comment.","strings":{"string1":"foo","string2":"bar","string3":"baz","lambdaresult":"Hello, AWS Step Functions!"},"who":"AWS Step Functions"}`},
		{"ResultPath updates a node", `"ResultPath":"$.comment",`, tutorialInput,
			`{"comment":"Hello, AWS Step Functions!","details":"Default example","who":"AWS Step Functions"}`},
		{"ResultPath null discards the result", `"ResultPath":null,`, tutorialInput, tutorialInput},
		{"ResultPath creates missing objects", `"ResultPath":"$.a.b.c",`, `{"who":"x"}`, `{"who":"x","a":{"b":{"c":"Hello, x!"}}}`},
		{"InputPath, ResultPath and OutputPath example",
			`"InputPath":"$.lambda","ResultPath":"$.data.lambdaresult","OutputPath":"$.data",`,
			`{"comment":"An input comment.","data":{"val1":23,"val2":17},"extra":"foo","lambda":{"who":"AWS Step Functions"}}`,
			`{"val1":23,"val2":17,"lambdaresult":"Hello, AWS Step Functions!"}`},
		{"OutputPath null gives {}", `"OutputPath":null,`, tutorialInput, `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := `{"StartAt":"HelloWorld","States":{"HelloWorld":{"Type":"Task","Resource":"` + helloFn + `",` + tc.fields + `"End":true}}}`
			e, _ := run(t, def, tc.input, newInvoker(map[string]taskFunc{helloFn: hello}))
			if e.Status != asl.StatusSucceeded {
				t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
			}
			if diff := cmp.Diff(js(t, tc.want), decode(t, e.Output)); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// The developer guide's "InputPath and Parameters" examples: what the task receives.
func TestInputPathAndParametersDocExamples(t *testing.T) {
	tests := []struct {
		name   string
		fields string
		input  string
		want   string
	}{
		{"InputPath", `"InputPath":"$.dataset2",`,
			`{"comment":"Example for InputPath.","dataset1":{"val1":1,"val2":2,"val3":3},"dataset2":{"val1":"a","val2":"b","val3":"c"}}`,
			`{"val1":"a","val2":"b","val3":"c"}`},
		{"Parameters", `"Parameters":{"comment":"Selecting what I care about.","MyDetails":{"size.$":"$.product.details.size","exists.$":"$.product.availability","StaticValue":"foo"}},`,
			`{"comment":"Example for Parameters.","product":{"details":{"color":"blue","size":"small","material":"cotton"},"availability":"in stock","sku":"2317","cost":"$23"}}`,
			`{"comment":"Selecting what I care about.","MyDetails":{"size":"small","exists":"in stock","StaticValue":"foo"}}`},
		{"InputPath then Parameters", `"InputPath":"$.product","Parameters":{"sku.$":"$.sku"},`,
			`{"product":{"sku":"2317"},"sku":"outer"}`, `{"sku":"2317"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := newInvoker(map[string]taskFunc{"r": echo})
			e, _ := run(t, `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r",`+tc.fields+`"End":true}}}`, tc.input, inv)
			if e.Status != asl.StatusSucceeded {
				t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
			}
			got := inv.inputs("r")
			if diff := cmp.Diff([]any{js(t, tc.want)}, got); diff != "" {
				t.Errorf("task input (-want +got):\n%s", diff)
			}
		})
	}
}

// Paths, the context object and intrinsic functions, evaluated in a Pass state's Parameters.
func TestParametersPathsAndIntrinsics(t *testing.T) {
	input := `{"a":{"b":"B","n":3},"list":[{"id":"i-1","v":1},{"id":"i-2"},{"id":"i-3","v":3}],"x y":"spaced",
		"name":"Arnav","template":"Hello, my name is {}.","escapedJsonString":"{\"foo\": \"bar\"}",
		"unescapedJson":{"foo":"bar"},"Id":123456,"big":12345678901234567890,"html":"<a&b>"}`
	tests := []struct {
		name  string
		param string // the value of "v.$"
		want  string
	}{
		{"root", `$`, ""}, // filled in below: the whole input
		{"dot path", `$.a.b`, `"B"`},
		{"index", `$.list[1].id`, `"i-2"`},
		{"bracket quoted", `$['x y']`, `"spaced"`},
		{"bracket then dot", `$['a'].n`, `3`},
		{"wildcard", `$.list[*].id`, `["i-1","i-2","i-3"]`},
		{"wildcard drops missing members", `$.list[*].v`, `[1,3]`},
		{"big integer kept exactly", `$.big`, `12345678901234567890`},
		{"context execution name", `$$.Execution.Name`, `"exec-1"`},
		{"context execution id", `$$.Execution.Id`, `"arn:aws:states:us-east-1:123456789012:execution:test-machine:exec-1"`},
		{"context execution input", `$$.Execution.Input.a.b`, `"B"`},
		{"context redrive count", `$$.Execution.RedriveCount`, `0`},
		{"context state name", `$$.State.Name`, `"P"`},
		{"context retry count", `$$.State.RetryCount`, `0`},
		{"context machine name", `$$.StateMachine.Name`, `"test-machine"`},
		{"context start time", `$$.Execution.StartTime`, `"2026-11-22T10:00:00.001Z"`},
		{"Format (docs)", `States.Format('Hello, my name is {}.', $.name)`, `"Hello, my name is Arnav."`},
		{"Format template from a path (docs)", `States.Format($.template, $.name)`, `"Hello, my name is Arnav."`},
		{"Format numbers, booleans, null", `States.Format('{}-{}-{}-{}', $.a.n, true, null, 'x')`, `"3-true-null-x"`},
		{"Format escapes", `States.Format('\{\} \' \\ {}', $.a.b)`, `"{} ' \\ B"`},
		{"StringToJson (docs)", `States.StringToJson($.escapedJsonString)`, `{"foo":"bar"}`},
		{"JsonToString (docs)", `States.JsonToString($.unescapedJson)`, `"{\"foo\":\"bar\"}"`},
		{"JsonToString keeps < and &", `States.JsonToString($.html)`, `"\"<a&b>\""`},
		{"Array (docs)", `States.Array($.Id)`, `[123456]`},
		{"Array mixed and nested", `States.Array('a', 1, $.a.b, States.ArrayLength($.list))`, `["a",1,"B",3]`},
		{"ArrayLength", `States.ArrayLength($.list)`, `3`},
		{"empty Array", `States.Array()`, `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := `{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"v.$":` + quote(tc.param) + `,"static":{"k":[1,{"n.$":"$.a.n"}]}},"End":true}}}`
			if tc.want == "" {
				tc.want = input
			}
			e, _ := run(t, def, input, newInvoker(nil))
			if e.Status != asl.StatusSucceeded {
				t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
			}
			want := js(t, `{"v":`+tc.want+`,"static":{"k":[1,{"n":3}]}}`)
			if diff := cmp.Diff(want, decode(t, e.Output)); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// A path that selects nothing, a bad intrinsic argument or a ResultPath that cannot be applied is States.Runtime,
// which no catcher handles, not even States.ALL: the execution fails.
func TestRuntimeErrorsAreNotCaught(t *testing.T) {
	tests := []struct {
		name   string
		fields string
		input  string
		cause  string
	}{
		{"InputPath", `"InputPath":"$.missing",`, `{}`, "InputPath"},
		{"Parameters path", `"Parameters":{"x.$":"$.missing"},`, `{}`, "$.missing"},
		{"Parameters context", `"Parameters":{"x.$":"$$.Execution.Input.missing"},`, `{}`, "context object"},
		{"ResultSelector", `"ResultSelector":{"x.$":"$.missing"},`, `{}`, "ResultSelector"},
		{"ResultPath through a string", `"ResultPath":"$.s.x",`, `{"s":"text"}`, "ResultPath"},
		{"OutputPath", `"OutputPath":"$.missing",`, `{}`, "OutputPath"},
		{"StringToJson of a non-string", `"Parameters":{"x.$":"States.StringToJson($.n)"},`, `{"n":1}`, "StringToJson"},
		{"StringToJson of bad JSON", `"Parameters":{"x.$":"States.StringToJson($.s)"},`, `{"s":"{nope"}`, "StringToJson"},
		{"ArrayLength of an object", `"Parameters":{"x.$":"States.ArrayLength($.o)"},`, `{"o":{}}`, "ArrayLength"},
		{"Format of an object", `"Parameters":{"x.$":"States.Format('{}', $.o)"},`, `{"o":{}}`, "Format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r",` + tc.fields + `
				"Retry":[{"ErrorEquals":["States.ALL"]}],
				"Catch":[{"ErrorEquals":["States.ALL"],"Next":"Caught"}],"End":true},
				"Caught":{"Type":"Succeed"}}}`
			inv := newInvoker(map[string]taskFunc{"r": returns(map[string]any{"ok": true})})
			e, sl := run(t, def, tc.input, inv)
			if e.Status != asl.StatusFailed || e.Error != asl.ErrorRuntime {
				t.Fatalf("status %s error %s (%s), want FAILED States.Runtime", e.Status, e.Error, e.Cause)
			}
			if !strings.Contains(e.Cause, tc.cause) {
				t.Errorf("cause %q does not mention %q", e.Cause, tc.cause)
			}
			if len(sl.waits()) != 0 {
				t.Errorf("States.Runtime was retried: waits %v", sl.waits())
			}
		})
	}
}

// Pass: Result is the result; without it, the effective input is.
func TestPassState(t *testing.T) {
	tests := []struct {
		name, fields, input, want string
	}{
		{"passes its input", ``, `{"a":1}`, `{"a":1}`},
		{"Result with ResultPath", `"Result":{"x":[1,2]},"ResultPath":"$.r",`, `{"a":1}`, `{"a":1,"r":{"x":[1,2]}}`},
		{"Parameters become the result", `"Parameters":{"b.$":"$.a"},"ResultPath":"$.p",`, `{"a":1}`, `{"a":1,"p":{"b":1}}`},
		{"InputPath then OutputPath", `"InputPath":"$.a","Result":"r","ResultPath":"$.x","OutputPath":"$.x",`, `{"a":{"k":1}}`, `"r"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := run(t, `{"StartAt":"P","States":{"P":{"Type":"Pass",`+tc.fields+`"End":true}}}`, tc.input, newInvoker(nil))
			if e.Status != asl.StatusSucceeded {
				t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
			}
			if diff := cmp.Diff(js(t, tc.want), decode(t, e.Output)); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// Succeed, Fail and Wait.
func TestSucceedFailWait(t *testing.T) {
	e, sl := run(t, `{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":7,"OutputPath":"$.k","Next":"S"},"S":{"Type":"Succeed","InputPath":"$.v"}}}`,
		`{"k":{"v":"done"}}`, newInvoker(nil))
	if e.Status != asl.StatusSucceeded || string(e.Output) != `"done"` {
		t.Fatalf("status %s output %s", e.Status, e.Output)
	}
	if diff := cmp.Diff(secs(7), sl.waits()); diff != "" {
		t.Errorf("Wait (-want +got):\n%s", diff)
	}

	e, _ = run(t, `{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"IsolationFailed","Cause":"see notify"}}}`, `{}`, newInvoker(nil))
	if e.Status != asl.StatusFailed || e.Error != "IsolationFailed" || e.Cause != "see notify" {
		t.Fatalf("Fail: status %s error %q cause %q", e.Status, e.Error, e.Cause)
	}
	if diff := cmp.Diff([]asl.EventType{asl.ExecutionStarted, asl.FailStateEntered, asl.ExecutionFailed}, eventTypes(e)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestStartRejectsInvalidInput(t *testing.T) {
	m := mustLoad(t, `{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`)
	e := m.Start(testCtx(t), "bad", []byte(`{"a":`), newInvoker(nil), testOptions(&recSleeper{}))
	if e.Status != asl.StatusFailed || e.Error != "InvalidExecutionInput" {
		t.Fatalf("status %s error %s", e.Status, e.Error)
	}
	if err := m.Redrive(testCtx(t), e, newInvoker(nil)); !errors.Is(err, asl.ErrExecutionNotRedrivable) {
		t.Errorf("redrive of an execution that never started a state: %v, want ExecutionNotRedrivable", err)
	}
}
