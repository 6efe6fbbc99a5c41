// Package ec2isolation embeds the repository files that the Go programs ship with: the state machine
// definitions and the sample events, so that `go run ./cmd/isolation simulate` runs exactly what is deployed.
package ec2isolation

import "embed"

// Definition is statemachine/isolation.asl.json, with its ${…FunctionArn} placeholders.
//
//go:embed statemachine/isolation.asl.json
var Definition []byte

// ReleaseDefinition is statemachine/release.asl.json, with its ${…FunctionArn} placeholders.
//
//go:embed statemachine/release.asl.json
var ReleaseDefinition []byte

// EvidenceDefinition is statemachine/evidence.asl.json (issue 16: the second stage, the instance settings an
// isolation queued), with its ${…FunctionArn} placeholders.
//
//go:embed statemachine/evidence.asl.json
var EvidenceDefinition []byte

// Events holds the sample EventBridge events of events/.
//
//go:embed events/*.json
var Events embed.FS
