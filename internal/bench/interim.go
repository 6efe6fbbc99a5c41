package bench

import (
	"encoding/json"
	"fmt"
	"maps"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
)

// Until slice T's stage split is merged (issue 16, design16.md items 1-3), the bench builds the two stages from
// what exists: the isolation definition has no "Queue instance settings" yet and Preserve evidence ignores
// "stage". So stage 1's functions run with the instance-settings parameters off and stage 2's with the fleet
// parameters off (the parts each stage value selects), and the job is queued when stage 1's Preserve evidence
// is invoked: first in the evidence branch, where "Queue instance settings" goes. This file goes when T lands.

// interimEnv is the environment of stage 1 and of stage 2.
func interimEnv(env map[string]string) (map[string]string, map[string]string) {
	env1, env2 := maps.Clone(env), maps.Clone(env)
	for _, k := range []string{evidence.EnvTerminationProtection, evidence.EnvStopOnShutdown, evidence.EnvKeepVolumes} {
		env1[k] = "false"
	}
	for _, k := range []string{evidence.EnvDetachAutoScaling, evidence.EnvDeregisterTargets} {
		env2[k] = "false"
	}
	return env1, env2
}

// interimQueue sends stage 1's Preserve evidence's job.
func (h *harness) interimQueue(resource string, input json.RawMessage) {
	if h.names[resource] != "preserve-evidence" || h.queue == nil {
		return
	}
	var in struct {
		InstanceID    string          `json:"instanceId"`
		ExecutionName string          `json:"executionName"`
		Record        json.RawMessage `json:"record"`
	}
	if json.Unmarshal(input, &in) != nil {
		return
	}
	job, err := json.Marshal(map[string]any{"instanceId": in.InstanceID, "isolationExecution": in.ExecutionName, "record": in.Record})
	if err == nil {
		h.queue(evidenceJob{Name: in.ExecutionName, Input: job})
	}
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
