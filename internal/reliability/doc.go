// Package reliability holds the end-to-end reliability tests of the isolation workflow: the real definition,
// the real handlers (internal/runner) and the real AWS SDK clients against the simulated account (internal/sim),
// under faults and hostile input. Every test reads the account's final state back through the SDK's Describe
// calls and the notifications through the simulator's SNS log.
//
//   - soak_test.go: executions under random throttling, 5xx answers and timeouts (some of them applied, their
//     answer lost); each ends isolated, or failed and notified then isolated by a redrive. go test runs a short
//     soak; SOAK_EXECUTIONS=500 (or -soak.long) the long one. The seed is fixed (SOAK_SEED tries another).
//   - interleave_test.go: generated schedules of isolation and release executions for one instance, redrives,
//     hand changes and fault windows, each in its own simulated account, with checks (a)-(e) after each;
//     INTERLEAVE_SEED replays one schedule.
//
// The soak and the interleavings run in a testing/synctest bubble: simulated time only advances when every
// goroutine waits, so CPU load cannot change what they find (cpuhog is what CI runs beside them to show it).
// A schedule replays exactly from its seed: every call takes simulated time, the fault draws are keyed by
// caller, action and call count (sim.Faults.Keyed), and the retriers' jitter is fixed, so neither load nor the
// other schedules change its timing. The soak's seed fixes its fault draws, but which of 500 concurrent
// executions meets which draw depends on the order their calls arrive in: its counts vary a little between
// runs, its verdict does not.
//   - hostile_test.go: malformed and hostile events, and the account changing under a running execution.
//   - idempotency_test.go: every step twice, a redrive from every state, concurrent executions for one instance.
//
// The package has no non-test code but the cpuhog command.
package reliability
