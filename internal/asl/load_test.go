package asl_test

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/citest"
)

// task wraps extra fields into a one-Task machine.
func taskDef(extra string) string {
	return `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r",` + extra + `"End":true}}}`
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name     string
		def      string
		subs     map[string]string
		sentinel error
		mention  string
	}{
		{"Map state", `{"StartAt":"M","States":{"M":{"Type":"Map","ItemProcessor":{},"End":true}}}`, nil, asl.ErrUnsupported, "Type Map"},
		{"Task Credentials", taskDef(`"Credentials":{"RoleArn":"x"},`), nil, asl.ErrUnsupported, `"Credentials"`},
		{"Task Arguments", taskDef(`"Arguments":{"a":1},`), nil, asl.ErrUnsupported, `"Arguments"`},
		{"Task HeartbeatSeconds", taskDef(`"HeartbeatSeconds":5,`), nil, asl.ErrUnsupported, `"HeartbeatSeconds"`},
		{"Task Assign", taskDef(`"Assign":{"x":1},`), nil, asl.ErrUnsupported, `"Assign"`},
		{"JSONata machine", `{"QueryLanguage":"JSONata","StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`, nil, asl.ErrUnsupported, "JSONata"},
		{"JSONata state", taskDef(`"QueryLanguage":"JSONata",`), nil, asl.ErrUnsupported, "JSONata"},
		{"unknown top-level field", `{"StartAt":"P","Foo":1,"States":{"P":{"Type":"Pass","End":true}}}`, nil, asl.ErrUnsupported, `"Foo"`},
		{"unknown type", `{"StartAt":"P","States":{"P":{"Type":"Pas","End":true}}}`, nil, asl.ErrInvalidDefinition, `"Pas"`},
		{"Pass ResultSelector", `{"StartAt":"P","States":{"P":{"Type":"Pass","ResultSelector":{},"End":true}}}`, nil, asl.ErrUnsupported, `"ResultSelector"`},
		{"Wait Timestamp", `{"StartAt":"W","States":{"W":{"Type":"Wait","Timestamp":"2026-01-01T00:00:00Z","End":true}}}`, nil, asl.ErrUnsupported, `"Timestamp"`},
		{"Fail CausePath", `{"StartAt":"F","States":{"F":{"Type":"Fail","CausePath":"$.c"}}}`, nil, asl.ErrUnsupported, `"CausePath"`},
		{"unimplemented comparator", `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.n","NumericLessThan":1,"Next":"P"}],"Default":"P"},"P":{"Type":"Pass","End":true}}}`, nil, asl.ErrUnsupported, "NumericLessThan"},
		{"unimplemented intrinsic", taskDef(`"Parameters":{"u.$":"States.UUID()"},`), nil, asl.ErrUnsupported, "States.UUID"},
		{"unknown context field", taskDef(`"Parameters":{"u.$":"$$.Task.Token"},`), nil, asl.ErrUnsupported, "$$.Task.Token"},
		{"recursive descent", taskDef(`"Parameters":{"u.$":"$..a"},`), nil, asl.ErrInvalidDefinition, ".."},
		{"filter expression", taskDef(`"Parameters":{"u.$":"$.a[?(@.b)]"},`), nil, asl.ErrInvalidDefinition, "$.a[?(@.b)]"},
		{"wildcard in InputPath", taskDef(`"InputPath":"$.a[*]",`), nil, asl.ErrInvalidDefinition, "[*]"},
		{"context in ResultPath", taskDef(`"ResultPath":"$$.Execution.Id",`), nil, asl.ErrInvalidDefinition, "context object"},
		{"Format placeholder count", taskDef(`"Parameters":{"u.$":"States.Format('{} and {}', $.a)"},`), nil, asl.ErrInvalidDefinition, "2 {} placeholder(s) but 1"},
		{".$ with a non-string", taskDef(`"Parameters":{"u.$":3},`), nil, asl.ErrInvalidDefinition, `"u.$"`},
		{"Next target missing", `{"StartAt":"P","States":{"P":{"Type":"Pass","Next":"Q"}}}`, nil, asl.ErrInvalidDefinition, `"Q"`},
		{"StartAt missing", `{"StartAt":"X","States":{"P":{"Type":"Pass","End":true}}}`, nil, asl.ErrInvalidDefinition, `"X"`},
		{"Default target missing", `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.a","IsPresent":true,"Next":"P"}],"Default":"Z"},"P":{"Type":"Pass","End":true}}}`, nil, asl.ErrInvalidDefinition, `"Z"`},
		{"Catch target missing", taskDef(`"Catch":[{"ErrorEquals":["States.ALL"],"Next":"Z"}],`), nil, asl.ErrInvalidDefinition, `"Z"`},
		{"unreachable state", `{"StartAt":"P","States":{"P":{"Type":"Pass","End":true},"Q":{"Type":"Pass","End":true}}}`, nil, asl.ErrInvalidDefinition, `"Q" is not reachable`},
		{"Next and End", `{"StartAt":"P","States":{"P":{"Type":"Pass","Next":"P","End":true}}}`, nil, asl.ErrInvalidDefinition, "exactly one of Next and End"},
		{"neither Next nor End", `{"StartAt":"P","States":{"P":{"Type":"Pass"}}}`, nil, asl.ErrInvalidDefinition, "exactly one of Next and End"},
		{"Choice with Next", `{"StartAt":"C","States":{"C":{"Type":"Choice","Next":"P","Choices":[{"Variable":"$.a","IsPresent":true,"Next":"P"}]},"P":{"Type":"Pass","End":true}}}`, nil, asl.ErrUnsupported, `"Next"`},
		{"branch jumps out", `{"StartAt":"Par","States":{"Par":{"Type":"Parallel","Branches":[{"StartAt":"B","States":{"B":{"Type":"Pass","Next":"After"}}}],"Next":"After"},"After":{"Type":"Pass","End":true}}}`, nil, asl.ErrInvalidDefinition, `"After"`},
		{"duplicate name across branches", `{"StartAt":"Par","States":{"Par":{"Type":"Parallel","Branches":[{"StartAt":"B","States":{"B":{"Type":"Pass","End":true}}},{"StartAt":"B","States":{"B":{"Type":"Pass","End":true}}}],"End":true}}}`, nil, asl.ErrInvalidDefinition, "more than once"},
		{"States.ALL retrier not last", taskDef(`"Retry":[{"ErrorEquals":["States.ALL"]},{"ErrorEquals":["X"]}],`), nil, asl.ErrInvalidDefinition, "last"},
		{"States.ALL catcher not alone", taskDef(`"Catch":[{"ErrorEquals":["States.ALL","X"],"Next":"T"}],`), nil, asl.ErrInvalidDefinition, "alone"},
		{"empty ErrorEquals", taskDef(`"Retry":[{"ErrorEquals":[]}],`), nil, asl.ErrInvalidDefinition, "ErrorEquals"},
		{"BackoffRate below 1", taskDef(`"Retry":[{"ErrorEquals":["X"],"BackoffRate":0.5}],`), nil, asl.ErrInvalidDefinition, "BackoffRate"},
		{"IntervalSeconds 0", taskDef(`"Retry":[{"ErrorEquals":["X"],"IntervalSeconds":0}],`), nil, asl.ErrInvalidDefinition, "IntervalSeconds"},
		{"fractional MaxAttempts", taskDef(`"Retry":[{"ErrorEquals":["X"],"MaxAttempts":1.5}],`), nil, asl.ErrInvalidDefinition, "MaxAttempts"},
		{"bad JitterStrategy", taskDef(`"Retry":[{"ErrorEquals":["X"],"JitterStrategy":"HALF"}],`), nil, asl.ErrInvalidDefinition, "JitterStrategy"},
		{"unknown retrier field", taskDef(`"Retry":[{"ErrorEquals":["X"],"Backoff":2}],`), nil, asl.ErrUnsupported, `"Backoff"`},
		{"catcher without Next", taskDef(`"Catch":[{"ErrorEquals":["X"]}],`), nil, asl.ErrInvalidDefinition, "Next is required"},
		{"unresolved substitution", taskDef(`"Comment":"${Missing}",`), map[string]string{"Other": "x"}, asl.ErrInvalidDefinition, "${Missing}"},
		{"Version 2", `{"Version":"2.0","StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}`, nil, asl.ErrInvalidDefinition, "Version"},
		{"not JSON", `{"StartAt":`, nil, asl.ErrInvalidDefinition, "definition"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := asl.Load([]byte(tc.def), tc.subs)
			if err == nil {
				t.Fatalf("Load accepted it (machine %v)", m != nil)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("error %q does not wrap %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestLoadSubstitutesBeforeParsing(t *testing.T) {
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"${Fn}","TimeoutSeconds":${Timeout},"End":true}}}`
	m, err := asl.Load([]byte(def), map[string]string{"Fn": "arn:aws:lambda:us-east-1:123456789012:function:f", "Timeout": "30"})
	if err != nil {
		t.Fatal(err)
	}
	inv := newInvoker(map[string]taskFunc{"arn:aws:lambda:us-east-1:123456789012:function:f": returns("ok")})
	e := m.Start(testCtx(t), "x", []byte(`{}`), inv, testOptions(&recSleeper{}))
	if e.Status != asl.StatusSucceeded || string(e.Output) != `"ok"` {
		t.Fatalf("status %s output %s error %s %s", e.Status, e.Output, e.Error, e.Cause)
	}
}

// The project's definition must load with the stack's substitutions.
func TestLoadIsolationDefinition(t *testing.T) {
	def, err := os.ReadFile("../../statemachine/isolation.asl.json")
	if err != nil {
		citest.Skipf(t, "definition not present: %v", err)
	}
	subs := map[string]string{}
	for _, n := range regexp.MustCompile(`\$\{(\w+)FunctionArn\}`).FindAllStringSubmatch(string(def), -1) {
		subs[n[1]+"FunctionArn"] = "arn:aws:lambda:us-east-1:123456789012:function:" + n[1]
	}
	if len(subs) < 10 {
		t.Fatalf("%d function substitutions in the definition: %v", len(subs), subs)
	}
	subs["Partition"], subs["EvidenceQueueUrl"] = "aws", "https://sqs.us-east-1.amazonaws.com/123456789012/ec2-isolation-evidence"
	if _, err := asl.Load(def, subs); err != nil {
		t.Fatal(err)
	}
}
