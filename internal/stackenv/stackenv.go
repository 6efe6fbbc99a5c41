// Package stackenv is the functions' environment as the stack sets it from its default parameters, for the
// places that run the handlers outside Lambda: isolation simulate, the bench and the tests. One map, so a new
// stack parameter reaches all of them at once.
package stackenv

import (
	"fmt"
	"github.com/ec2-isolation/ec2-isolation/internal/partition"
	"maps"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// Defaults are template.yaml's parameter defaults, keyed by the environment variable that carries each
// (internal/template's tests check that they agree). TOPIC_ARN and INCIDENT_BUCKET name stack resources: see
// ForSim.
func Defaults() map[string]string {
	return map[string]string{
		"TAG_KEY":                       "Isolate",
		"TAG_VALUE":                     "true",
		"RELEASE_TAG_VALUE":             "release",
		"ISOLATION_GROUP_NAME":          "ec2-isolation-quarantine",
		"ISOLATION_PROFILE_NAME":        "ec2-isolation-quarantine",
		"CONNECTION_TRACKING":           "direct",
		"REVOCABLE_ROLES":               "*",
		"REVOKE_CREDENTIALS":            "true",
		"ENABLE_TERMINATION_PROTECTION": "true",
		"STOP_ON_SHUTDOWN":              "true",
		"KEEP_VOLUMES":                  "true",
		"DETACH_AUTO_SCALING":           "true",
		"DEREGISTER_TARGETS":            "true",
		// The organization's central topic and bucket (issue 13, item 15): none by default.
		"CENTRAL_TOPIC_ARN":     "",
		"CENTRAL_BUCKET":        "",
		"CENTRAL_BUCKET_REGION": "",
		"PRECREATE_GROUPS":      "true", // the reconciler's (issue 14)
		"ADMISSION_WINDOW":      "60",   // the admission starter's (issue 16)
		"EVIDENCE_WINDOW":       "4",    // its stage-2 window: evidence executions running at once
	}
}

// ForSim is Defaults with the simulated account's first SNS topic as TOPIC_ARN and its first S3 bucket as
// INCIDENT_BUCKET, then the overrides.
func ForSim(sc sim.Scenario, region, account string, overrides map[string]string) map[string]string {
	env := Defaults()
	if len(sc.Topics) > 0 {
		env["TOPIC_ARN"] = fmt.Sprintf("arn:%s:sns:%s:%s:%s", partition.Of(region), region, account, sc.Topics[0].Name)
	}
	if len(sc.Buckets) > 0 {
		env["INCIDENT_BUCKET"] = sc.Buckets[0].Name
	}
	maps.Copy(env, overrides)
	return env
}

// Getenv looks a variable up in env, as os.Getenv would in Lambda.
func Getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}
