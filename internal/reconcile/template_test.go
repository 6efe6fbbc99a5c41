package reconcile_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/reconcile"
	"github.com/ec2-isolation/ec2-isolation/internal/template"
)

// template.yaml and the reconciler agree: the schedule comes from ReconcileMinutes (default 5, 0 turns it off),
// the alarm watches a metric the reconciler emits, under its namespace and dimension, over two passes; the
// dashboard graphs only metrics it emits; the role may start executions of the stack's two state machines only.
func TestTemplateMatchesTheReconciler(t *testing.T) {
	tpl, err := template.Load("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := tpl.Parameters["ReconcileMinutes"]["Default"]; fmt.Sprint(d) != "5" {
		t.Errorf("ReconcileMinutes default %v, want 5", d)
	}
	sched := tpl.Resources["ReconcileSchedule"]
	if sched.Type != "AWS::Events::Rule" || sched.Condition != "ReconcileOn" ||
		!strings.Contains(fmt.Sprint(sched.Properties["ScheduleExpression"]), "rate(${ReconcileMinutes} minutes)") {
		t.Errorf("schedule %+v, want a rule on rate(ReconcileMinutes) under ReconcileOn", sched)
	}
	emitted := slices.Sorted(maps.Keys(reconcile.Report{}.Metrics()))
	alarm := tpl.Resources["ReconcileOpenAlarm"].Properties
	dims, _ := json.Marshal(alarm["Dimensions"])
	if alarm["Namespace"] != reconcile.MetricNamespace || alarm["MetricName"] != "OpenInstances" ||
		!slices.Contains(emitted, "OpenInstances") || alarm["EvaluationPeriods"] != 2 || alarm["DatapointsToAlarm"] != 2 ||
		!strings.Contains(string(dims), `"Name":"StateMachine"`) {
		t.Errorf("open alarm %+v, want OpenInstances of %s by StateMachine over 2 of 2 periods", alarm, reconcile.MetricNamespace)
	}
	body, _ := json.Marshal(tpl.Resources["ReconcileDashboard"].Properties["DashboardBody"])
	graphed := regexp.MustCompile(`\\"(?:ec2-isolation/Reconciler|\.)\\", \\"([A-Za-z]+)\\"`).FindAllStringSubmatch(string(body), -1)
	if len(graphed) == 0 {
		t.Fatalf("the dashboard graphs no reconciler metric: %s", body)
	}
	for _, m := range graphed {
		if !slices.Contains(emitted, m[1]) && !strings.HasPrefix(m[1], "Executions") {
			t.Errorf("the dashboard graphs %s, which the reconciler does not emit (%v)", m[1], emitted)
		}
	}
	stmts, err := tpl.RolePolicies("ReconcileRole")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stmts["aws-calls"] {
		if !slices.Contains(st.Action, "states:StartExecution") {
			continue
		}
		res, _ := json.Marshal(st.Resource)
		if string(res) != `[{"Ref":"IsolationStateMachine"},{"Ref":"ReleaseStateMachine"}]` {
			t.Errorf("states:StartExecution on %s, want the two state machines only", res)
		}
	}
}
