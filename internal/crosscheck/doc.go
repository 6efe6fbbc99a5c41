// Package crosscheck holds only a test: it proves that an independent ASL engine, npm aws-local-stepfunctions
// (pinned in package.json), running statemachine/isolation.asl.json with its Task states calling our real Go
// handlers against the simulator, takes the same path of states, with the same inputs, and ends with the same
// status, error and output as our engine (internal/asl through internal/runner). See crosscheck_test.go.
package crosscheck
