package reconcile

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// MetricNamespace is the CloudWatch namespace of the reconciler's metrics (template.yaml's alarm and dashboard
// use it); the one dimension, StateMachine, is the isolation state machine's name, so that two stacks of one
// region do not mix.
const MetricNamespace = "ec2-isolation/Reconciler"

// Metrics are the pass's metric names and values, as the dashboard and the alarm name them.
func (r Report) Metrics() map[string]int {
	return map[string]int{"TaggedInstances": r.Tagged, "ContainedInstances": r.Contained, "OpenInstances": r.Open,
		"DriftFound": r.Drift, "LostEvents": r.LostEvents, "ReleasesPending": r.ReleasePending,
		"ExecutionsStarted": r.Started, "ExecutionsDeferred": r.Deferred, "IsolationGroupsCreated": r.GroupsCreated,
		"IsolationGroupsEmptied": r.GroupsEmptied}
}

// emit writes the pass's metrics as one CloudWatch embedded metric format document: a JSON object on one line
// whose _aws member declares the metrics, their values at the root; CloudWatch Logs extracts them from the
// function's log (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
func (h *Handler) emit(r Report) {
	if h.Metrics == nil {
		return
	}
	arn := h.s.IsolationMachineARN
	machine := arn[strings.LastIndex(arn, ":")+1:]
	type metric struct {
		Name string
		Unit string
	}
	// level: the function's log is JSON, where Lambda filters application lines by their level.
	doc := map[string]any{"StateMachine": machine, "pass": r.Pass, "level": "INFO"}
	var ms []metric
	values := r.Metrics()
	for _, name := range slices.Sorted(maps.Keys(values)) {
		doc[name] = values[name]
		ms = append(ms, metric{Name: name, Unit: "Count"})
	}
	doc["_aws"] = map[string]any{
		"Timestamp": h.now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace": MetricNamespace, "Dimensions": [][]string{{"StateMachine"}}, "Metrics": ms,
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return
	}
	_, _ = h.Metrics.Write(append(b, '\n'))
}
