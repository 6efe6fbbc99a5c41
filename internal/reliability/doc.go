// Package reliability holds the end-to-end reliability tests of the isolation workflow: the real definition,
// the real handlers (internal/runner) and the real AWS SDK clients against the simulated account (internal/sim),
// under faults and hostile input. Every test reads the account's final state back through the SDK's Describe
// calls and the notifications through the simulator's SNS log.
//
//   - soak_test.go: executions under random throttling, 5xx answers and timeouts (some of them applied, their
//     answer lost); each ends isolated, or failed and notified then isolated by a redrive. go test runs a short
//     soak; SOAK_EXECUTIONS=500 (or -soak.long) the long one. SOAK_SEED reproduces a run.
//   - hostile_test.go: malformed and hostile events, and the account changing under a running execution.
//   - idempotency_test.go: every step twice, a redrive from every state, concurrent executions for one instance.
//
// The package has no non-test code.
package reliability
