package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// restoreCheck compares every restorable attribute after the release with its value before the isolation.
type restoreCheck struct {
	// Compared lists the attributes compared; Differences those that are not back, with both values.
	Compared    []string     `json:"compared"`
	Differences []difference `json:"differences,omitempty"`
}

type difference struct {
	Attribute string          `json:"attribute"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
}

// OK says the release restored everything.
func (c restoreCheck) OK() bool { return len(c.Differences) == 0 }

// compareRestorable compares before and after attribute by attribute (their JSON fields).
func compareRestorable(before, after inspect.Restorable) restoreCheck {
	b, a := fields(before), fields(after)
	var c restoreCheck
	for name := range b {
		c.Compared = append(c.Compared, name)
	}
	slices.Sort(c.Compared)
	for _, name := range c.Compared {
		if !bytes.Equal(b[name], a[name]) {
			c.Differences = append(c.Differences, difference{Attribute: name, Before: b[name], After: a[name]})
		}
	}
	return c
}

func fields(r inspect.Restorable) map[string]json.RawMessage {
	data, _ := json.Marshal(r) // a struct of strings, bools, slices and maps: always encodes
	var m map[string]json.RawMessage
	_ = json.Unmarshal(data, &m)
	return m
}

func restorableClients(srv *sim.Server) inspect.Clients {
	cfg := srv.AWSConfig("inspect")
	return inspect.Clients{EC2: ec2.NewFromConfig(cfg), AutoScaling: autoscaling.NewFromConfig(cfg),
		ELB: elb.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg)}
}

// withTagValue is the tag change event that sets key to value on the same instance (the responder's second tag).
func withTagValue(event json.RawMessage, key, value string) (json.RawMessage, error) {
	var ev map[string]any
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, err
	}
	detail, ok := ev["detail"].(map[string]any)
	if !ok {
		return nil, errors.New("the isolation event has no detail object")
	}
	tags, _ := detail["tags"].(map[string]any)
	if tags == nil {
		tags = map[string]any{}
	}
	tags[key] = value
	detail["tags"] = tags
	detail["changed-tag-keys"] = []string{key}
	return json.Marshal(ev)
}

// applyTagChange makes the tag change the event reports on the simulated instance, as the responder's tag that
// produced it did: the workflows act on the current tag.
func applyTagChange(_ context.Context, srv *sim.Server, event json.RawMessage) {
	srv.ApplyTagEvent(event)
}

func printRestored(w io.Writer, c *restoreCheck) {
	if c == nil {
		return
	}
	if c.OK() {
		fmt.Fprintf(w, "\nRestored: yes, every attribute equals its pre-isolation value (%d compared: %s)\n", len(c.Compared), orNone(c.Compared))
		return
	}
	fmt.Fprintf(w, "\nRestored: NO, %d of %d attributes differ from their pre-isolation value:\n", len(c.Differences), len(c.Compared))
	for _, d := range c.Differences {
		fmt.Fprintf(w, "  - %s: before %s, after %s\n", d.Attribute, d.Before, d.After)
	}
}
