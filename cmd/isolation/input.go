package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"regexp"
	"strings"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// The accepted range of --speed. Beyond 1000 the engine's scaled Task timeouts (60 s of simulated time = 60 ms)
// come closer to the handlers' own computing time than to a network call, and an execution fails with
// States.Timeout for no reason the scenario holds; below 0.01 a run takes hours.
const minSpeed, maxSpeed = 0.01, 1000

func checkSpeed(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < minSpeed || v > maxSpeed {
		return fmt.Errorf("--speed %v: want a number from %v to %v (how many times faster than real time the simulated clock runs)", v, minSpeed, maxSpeed)
	}
	return nil
}

func checkTracking(v string) error {
	if v != string(secgroup.ModeDirect) && v != string(secgroup.ModeUntrackFirst) {
		return fmt.Errorf("--tracking %q: want %s or %s (the stack parameter ConnectionTracking)", v, secgroup.ModeDirect, secgroup.ModeUntrackFirst)
	}
	return nil
}

// loadScenario reads a built-in scenario by name, else a file. An unknown name lists the built-in ones; a
// malformed file says where (line and column).
func loadScenario(name string) (sim.Scenario, error) {
	if data, err := scenarios.ReadFile("scenarios/" + name + ".json"); err == nil {
		return sim.ParseScenario(data)
	}
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return sim.Scenario{}, fmt.Errorf("--scenario %q is neither a built-in scenario (%s) nor a file", name, strings.Join(builtinScenarios(), ", "))
	}
	if err != nil {
		return sim.Scenario{}, fmt.Errorf("--scenario: %w", err)
	}
	sc, err := sim.ParseScenario(data)
	if err != nil {
		return sim.Scenario{}, fmt.Errorf("%s%s: %w", name, where(data, err), err)
	}
	return sc, nil
}

// loadEvent reads the event file and refuses what is not one JSON object, before any execution starts.
func loadEventChecked(file string) (json.RawMessage, error) {
	data, err := loadEvent(file)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s%s is not a JSON object: %w", orDefaultEvent(file), where(data, err), err)
	}
	return data, nil
}

func orDefaultEvent(file string) string {
	if file == "" {
		return "events/isolate.json"
	}
	return file
}

var unknownField = regexp.MustCompile(`unknown field "([^"]*)"`)

// where is ":line:column" of a JSON decoding error in data ("" when the error says no place): the offset of a
// syntax or type error, or the first occurrence of an unknown field's key.
func where(data []byte, err error) string {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		off int64 = -1
	)
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	default:
		if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
			if i := bytes.Index(data, []byte(`"`+m[1]+`"`)); i >= 0 {
				off = int64(i) + 1
			}
		}
	}
	if off < 0 {
		return ""
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return fmt.Sprintf(":%d:%d", line, col)
}

// paramNames says a function's environment variable as a responder knows it: the stack parameter and the flag
// that set it (issue 15, item 8). The longer names come first where one contains another.
var paramNames = strings.NewReplacer(
	"RELEASE_TAG_VALUE", "ReleaseTagValue (--release-value)",
	"TAG_KEY", "IsolationTagKey (--tag-key)",
	"TAG_VALUE", "IsolationTagValue (--tag-value)",
	"ISOLATION_GROUP_NAME", "IsolationGroupName (--group-name)",
	"ISOLATION_PROFILE_NAME", "the isolation instance profile (--profile-name)",
	"CONNECTION_TRACKING", "ConnectionTracking (--tracking)",
	"TOPIC_ARN", "the notification topic (--topic-arn)",
	"INCIDENT_BUCKET", "the incident bucket (--incident-bucket)",
	"REVOCABLE_ROLES", "RevocableRoles",
	"REVOKE_CREDENTIALS", "RevokeCredentials",
	"ENABLE_TERMINATION_PROTECTION", "EnableTerminationProtection",
	"STOP_ON_SHUTDOWN", "StopOnShutdown",
	"KEEP_VOLUMES", "KeepVolumes",
	"DETACH_AUTO_SCALING", "DetachFromAutoScaling",
	"DEREGISTER_TARGETS", "DeregisterFromTargetGroups",
)

// userFacing is err's message with the functions' environment variables named as the responder set them.
func userFacing(err error) string { return paramNames.Replace(err.Error()) }
