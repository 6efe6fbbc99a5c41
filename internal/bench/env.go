package bench

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/template"
)

// deployment is what the bench reads from template.yaml: each function's environment as deployed with the
// parameters' defaults, and its memory size.
type deployment struct {
	// Env is every function's environment by functions/<dir>.
	Env map[string]map[string]string
	// Memory is each function's MemorySize in MB by functions/<dir>.
	Memory map[string]int
}

// readDeployment resolves the functions' Environment.Variables: a literal as is, a Ref to a parameter as its
// default, a Ref to the stack's topic or bucket as the scenario's (the simulated account's) first one, any other
// Ref as the logical id.
func readDeployment(t *template.Template, sc sim.Scenario) deployment {
	d := deployment{Env: map[string]map[string]string{}, Memory: map[string]int{}}
	globalMemory := 128 // Lambda's default
	if m, ok := asInt(t.Globals["Function"]["MemorySize"]); ok {
		globalMemory = m
	}
	var globalEnv map[string]any
	if e, ok := t.Globals["Function"]["Environment"].(map[string]any); ok {
		globalEnv, _ = e["Variables"].(map[string]any)
	}
	for _, f := range t.Functions() {
		props := t.Resources[f.LogicalID].Properties
		env := map[string]string{}
		for k, v := range globalEnv {
			env[k] = resolve(t, sc, v)
		}
		if e, ok := props["Environment"].(map[string]any); ok {
			vars, _ := e["Variables"].(map[string]any)
			for k, v := range vars {
				env[k] = resolve(t, sc, v)
			}
		}
		d.Env[f.Dir] = env
		d.Memory[f.Dir] = globalMemory
		if m, ok := asInt(props["MemorySize"]); ok {
			d.Memory[f.Dir] = m
		}
	}
	return d
}

func resolve(t *template.Template, sc sim.Scenario, v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		ref, ok := x["Ref"].(string)
		if !ok {
			return fmt.Sprint(x)
		}
		if p, ok := t.Parameters[ref]; ok {
			return fmt.Sprint(p["Default"])
		}
		switch t.Resources[ref].Type {
		case "AWS::SNS::Topic":
			if len(sc.Topics) > 0 {
				return fmt.Sprintf("arn:aws:sns:%s:%s:%s", region(sc), account(sc), sc.Topics[0].Name)
			}
		case "AWS::IAM::InstanceProfile":
			// CloudFormation names it; in the simulated account it is the scenario's isolation profile.
			for _, p := range sc.InstanceProfiles {
				if strings.Contains(p.Name, "isolation") {
					return p.Name
				}
			}
		case "AWS::S3::Bucket":
			if b := firstBucket(sc); b != "" {
				return b
			}
		}
		return ref
	}
	return fmt.Sprint(v)
}

// firstBucket is the scenario's first S3 bucket, read through JSON so that the bench does not depend on the
// simulator's S3 support.
func firstBucket(sc sim.Scenario) string {
	b, err := json.Marshal(sc)
	if err != nil {
		return ""
	}
	var m struct {
		Buckets []struct {
			Name string `json:"name"`
		} `json:"buckets"`
	}
	if json.Unmarshal(b, &m) != nil || len(m.Buckets) == 0 {
		return ""
	}
	return m.Buckets[0].Name
}

func region(sc sim.Scenario) string {
	if sc.Region != "" {
		return sc.Region
	}
	return "us-east-1"
}

func account(sc sim.Scenario) string {
	if sc.Account != "" {
		return sc.Account
	}
	return "123456789012"
}

func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		return int(x), true
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}
