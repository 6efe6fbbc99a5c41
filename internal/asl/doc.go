// Package asl is a small, strict interpreter of the Amazon States Language (JSONPath flavour) that runs
// statemachine/isolation.asl.json in-process, Task states calling Go functions through an Invoker. It exists so
// `cmd/isolation simulate` and the tests run the real definition, with its real Retry, Catch, Parallel and
// redrive behaviour, without an AWS account.
//
// # Why not github.com/hussainpithawala/state-machine-amz-go
//
// We looked at it first. It does not fit: its state implementation lives under internal/ (not importable); a Task
// retries with the MaxAttempts of the first retrier only and one shared backoff, not per-retrier counters;
// JitterStrategy is parsed but never applied; errors are matched on the error message text, so a Catch cannot
// tell error names apart and Cause equals Error; a failing Parallel branch does not cancel the others and the
// Parallel state ignores its own Retry/Catch; there is no $$ context object and no redrive in the Step Functions
// sense (it persists executions to Postgres/Redis instead); it would add lib/pq, uuid, yaml and testify to our
// module. The subset we need is small, and what matters is matching Step Functions exactly, so we wrote our own.
//
// # What is implemented (anything else is refused by Load, never ignored)
//
// Top level: Comment, StartAt, States, TimeoutSeconds, Version ("1.0"), QueryLanguage "JSONPath".
// `${Name}` DefinitionSubstitutions are replaced in the raw text before parsing; an unresolved one is an error.
// Validation: every StartAt/Next/Default/Catch target exists in the same scope, every state is reachable, exactly
// one of Next/End where required, state names unique across the machine, Retry/Catch shapes, States.ALL alone
// and in the last retrier/catcher.
//
// Task resources: a function ARN (whatever the Invoker runs), or the one service integration the definitions use,
// Amazon SQS SendMessage ("arn:<partition>:states:::sqs:sendMessage", integration.go: a MessageBody object is sent
// as its JSON text, the Invoker performs the call); any other "arn:…:states:::" resource is refused.
//
// States: Task (Resource, Parameters, ResultSelector, ResultPath, InputPath, OutputPath, TimeoutSeconds, Retry,
// Catch), Parallel (Branches, Parameters, ResultSelector, ResultPath, InputPath, OutputPath, Retry, Catch), Pass
// (Result, Parameters, ResultPath, InputPath, OutputPath), Choice (StringEquals, StringEqualsPath,
// NumericEquals, NumericGreaterThan, NumericGreaterThanPath, BooleanEquals, IsPresent, IsNull, IsString, And, Or,
// Not; Default), Fail (Error, Cause), Succeed, Wait (Seconds). Refused, for example: Map, HeartbeatSeconds,
// Credentials, Arguments, Output, Assign, QueryLanguage JSONata, Wait Timestamp/SecondsPath, Fail ErrorPath.
//
// Paths: `$`, `$.a.b`, `$.a[0]`, `$['x y']`; `[*]` on arrays in Parameters/ResultSelector (a list of what
// matches, missing members dropped). Context object: $$.Execution.{Id,Name,Input,StartTime,RedriveCount},
// $$.State.{Name,EnteredTime,RetryCount}, $$.StateMachine.Name. Intrinsics: States.Format, States.Array,
// States.StringToJson, States.JsonToString, States.ArrayLength.
//
// # Step Functions semantics followed (and where they are documented)
//
// Input/output processing (developer guide, "Input and Output Processing", "ResultPath", "InputPath, ResultPath
// and OutputPath Example"): InputPath, then Parameters, then the task; then ResultSelector, then ResultPath
// applied to the state's raw input (not the InputPath-filtered one), then OutputPath. ResultPath null keeps the
// input, `$` replaces it, `$.a.b` creates missing objects. A path that selects nothing fails the state with
// States.Runtime.
//
// Errors (developer guide, "Handling errors in Step Functions workflows"): States.ALL matches any error name
// except States.Runtime and States.DataLimitExceeded, which are terminal: no retrier or catcher handles them and
// the execution fails. As a matcher, States.TaskFailed matches any error except States.Timeout. The guide marks
// States.NoChoiceMatched as reserved and says a Choice without a match reports States.Runtime, so that is what
// this engine reports (with "States.NoChoiceMatched" in the Cause). A Task exceeding TimeoutSeconds fails with
// States.Timeout (its context is cancelled). An Invoker error of type *TaskError keeps its name; any other error
// is States.TaskFailed with the message as Cause.
//
// Retry (same page, and the ASL specification at states-language.net, "Retrying after error"): retriers are
// scanned in order and only the first whose ErrorEquals matches is used, even when it has no attempts left; each
// retrier counts its own attempts, over every error it matched, across the state's visit (the specification's
// ErrorA, ErrorB, ErrorC, ErrorB example: the fourth error finds the first retrier used up; an older version of
// the AWS guide told that example differently, per error name, which we do not follow). Wait = IntervalSeconds (default 1) × BackoffRate (default 2.0) ^ attempts so far by that
// retrier, capped at MaxDelaySeconds; JitterStrategy FULL takes a uniform random value in [0, that wait]
// (CDK JitterType docs). MaxAttempts defaults to 3; 0 never retries. Catch puts {"Error","Cause"} at its
// ResultPath (default `$`) of the raw state input.
//
// Parallel ("Parallel workflow state"): branches run concurrently on copies of the effective input; the output
// is the array of branch outputs in branch order; if a branch fails, the other branches are stopped and the
// Parallel state fails with that branch's error, to which its own Retry and Catch then apply (a retry runs every
// branch again).
//
// Redrive (developer guide "Restarting state machine executions with redrive"; API reference
// RedriveExecution, ExecutionRedrivenEventDetails): only an execution that did not succeed can be redriven
// (otherwise ExecutionNotRedrivable). It continues from the unsuccessful state with the same input that state
// had, keeps the history and results of the successful states without re-running them, uses the same definition
// and execution ARN, increments redriveCount (visible as $$.Execution.RedriveCount) and records an
// ExecutionRedriven event; the machine-level TimeoutSeconds starts again. For a Parallel state only the branches
// that failed or were aborted run again (each from its own unsuccessful state); the succeeded branches keep their
// outputs. Not found in the documentation, so chosen here: the redriven state's retriers start from zero
// attempts (they count per visit).
//
// Tasks and time: an Invoker runs each Task (Options.Sleep, Now, Rand and WithTimeout make retry waits, Wait
// states, timestamps, jitter and timeouts injectable, so a simulation can compress time and tests are fast and
// deterministic; StateName tells WithTimeout and the Invoker which Task state a context belongs to, so a test can
// time out one state only). When a task is stopped from outside (a sibling branch failed, the execution timed out or was
// aborted) the engine waits for its Invoke to return, so nothing still runs when Start or Redrive returns; after
// a Task's own TimeoutSeconds it does not wait, as Step Functions does not wait for a timed-out Lambda function.
//
// History: events carry ids, previous ids (each Parallel branch forms its own chain from ParallelStateStarted),
// Step Functions event type names, timestamps from Options.Now, inputs/outputs, error/cause and the retry count.
// History.Summary gives one row per state visit (the console's table view); Options.OnEvent streams events as
// they are recorded.
package asl
