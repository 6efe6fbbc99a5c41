package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
)

// Until slice T's stage split is merged (issue 16, design16.md items 1-3), the bench builds the two stages from
// what exists: the isolation definition has no "Queue instance settings" yet and Preserve evidence ignores
// "stage". So stage 1's functions run with the instance-settings parameters off and stage 2's with the fleet
// parameters off (the parts each stage value selects), and the job is queued when stage 1's Preserve evidence
// is invoked: first in the evidence branch, where "Queue instance settings" goes. This file goes when T lands.
type interimStages struct {
	env1 map[string]string
	run2 *runner.Runner
}

func newInterimStages(env map[string]string, newRunner func(map[string]string) (*runner.Runner, error)) (*interimStages, error) {
	env1, env2 := maps.Clone(env), maps.Clone(env)
	for _, k := range []string{evidence.EnvTerminationProtection, evidence.EnvStopOnShutdown, evidence.EnvKeepVolumes} {
		env1[k] = "false"
	}
	for _, k := range []string{evidence.EnvDetachAutoScaling, evidence.EnvDeregisterTargets} {
		env2[k] = "false"
	}
	r, err := newRunner(env2)
	if err != nil {
		return nil, err
	}
	return &interimStages{env1: env1, run2: r}, nil
}

func (s *interimStages) invoke(ctx context.Context, h *harness, resource string, input json.RawMessage) (json.RawMessage, error) {
	if ctx.Value(stage2Key{}) != nil {
		return s.run2.Invoke(ctx, resource, input)
	}
	if h.names[resource] == "preserve-evidence" && h.queue != nil {
		var in struct {
			InstanceID    string          `json:"instanceId"`
			ExecutionName string          `json:"executionName"`
			Record        json.RawMessage `json:"record"`
		}
		if json.Unmarshal(input, &in) == nil {
			job, err := json.Marshal(map[string]any{"instanceId": in.InstanceID, "isolationExecution": in.ExecutionName, "record": in.Record})
			if err == nil {
				h.queue(evidenceJob{Name: in.ExecutionName, Input: job})
			}
		}
	}
	return h.run.Invoke(ctx, resource, input)
}

// interimEvidence is design16.md item 2's evidence state machine, built from the isolation definition's
// "Preserve evidence" (the same Retry), until statemachine/evidence.asl.json exists.
func interimEvidence(isolation []byte) ([]byte, error) {
	var def struct {
		States map[string]struct {
			Branches []struct {
				States map[string]map[string]any
			}
		}
	}
	if err := json.Unmarshal(isolation, &def); err != nil {
		return nil, err
	}
	var preserve map[string]any
	for _, b := range def.States["Contain"].Branches {
		if s, ok := b.States["Preserve evidence"]; ok {
			preserve = s
		}
	}
	if preserve == nil {
		return nil, fmt.Errorf("no Preserve evidence state in the isolation definition")
	}
	preserve["Parameters"] = map[string]any{"instanceId.$": "$.instanceId", "executionName.$": "$.isolationExecution",
		"record.$": "$.record", "attempt.$": "$$.State.RetryCount", "redriveCount.$": "$$.Execution.RedriveCount",
		"stage": "settings"}
	preserve["Catch"] = []any{map[string]any{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.error", "Next": "Evidence failed"}}
	return json.Marshal(map[string]any{
		"Comment": "interim evidence state machine (bench)",
		"StartAt": "Preserve evidence",
		"States": map[string]any{
			"Preserve evidence": preserve,
			"Evidence failed":   map[string]any{"Type": "Fail", "Error": "EvidenceFailed"},
		},
	})
}

// evidenceDefinition is the evidence state machine the storm's stage 2 runs.
func evidenceDefinition() ([]byte, error) { return interimEvidence(ec2isolation.Definition) }
