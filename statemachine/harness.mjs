// Shared by the flow tests (*.test.mjs): loads a definition with its DefinitionSubstitutions and runs it in
// aws-local-stepfunctions (an independent ASL implementation) with stubbed tasks.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { StateMachine } from 'aws-local-stepfunctions';

// aws-local-stepfunctions 3 calls Promise.withResolvers (Node >= 22); Debian's Node 20 lacks it.
Promise.withResolvers ??= function withResolvers() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

const here = new URL('.', import.meta.url);

// The evidence queue's URL as the template substitutes it (issue 16).
export const evidenceQueueUrl = 'https://sqs.us-east-1.amazonaws.com/123456789012/ec2-isolation-evidence';

// loadDefinition reads statemachine/<file> and substitutes the placeholders as the template's
// DefinitionSubstitutions do: ${…FunctionArn} (any function ARN will do: every task is stubbed), ${Partition},
// ${EvidenceQueueUrl}. aws-local-stepfunctions has no SQS integration: "Queue instance settings" is stubbed by
// its state name like the functions.
export function loadDefinition(file) {
  const raw = readFileSync(new URL(file, here), 'utf8');
  return JSON.parse(raw
    .replace(/\$\{(\w+)FunctionArn\}/g, 'arn:aws:lambda:us-east-1:123456789012:function:ec2-isolation-$1')
    .replaceAll('${Partition}', 'aws')
    .replaceAll('${EvidenceQueueUrl}', evidenceQueueUrl));
}

export function loadEvent(file) {
  return JSON.parse(readFileSync(new URL(`../events/${file}`, here), 'utf8'));
}

// taskNames lists every Task state of a definition, Parallel branches included.
export function taskNames(def) {
  const out = [];
  for (const [name, s] of Object.entries(def.States)) {
    if (s.Type === 'Task') out.push(name);
    for (const b of s.Branches ?? []) out.push(...taskNames(b));
  }
  return out;
}

export class StepError extends Error {
  constructor(type, message) {
    super(message);
    this.name = type; // aws-lambda-go reports the Go type name as errorType; ASL matches on it
  }
}

// notify follows internal/workflow.NotifyInput's contract: on a redrive (RedriveCount greater than every
// failure's), publish nothing and answer resumeAt; otherwise publish and, for FAILED, fail with failError.
export function notify(calls, failError) {
  return (input) => {
    if (input.outcome === 'FAILED') {
      const last = Math.max(...input.failures.map((f) => f.redriveCount));
      if (input.redriveCount > last) return { resumeAt: input.failures[0].state };
      calls.published.push(input);
      throw new StepError(failError, `failed: ${input.failures.map((f) => f.state).join(', ')}`);
    }
    calls.published.push(input);
    return { messageId: 'm-1' };
  };
}

// stubs returns task handlers that record their inputs; fail maps a state name to the error it throws (or a
// function of the call number that decides); ok maps a state name to its result (or a function of the input).
export function stubs(tasks, ok, failError, fail = {}) {
  const calls = { inputs: {}, published: [], order: [] };
  const handlers = {};
  for (const name of tasks) {
    handlers[name] = async (input) => {
      (calls.inputs[name] ??= []).push(structuredClone(input));
      calls.order.push(name);
      let f = fail[name];
      if (typeof f === 'function') f = f(calls.inputs[name].length);
      if (f) throw new StepError(f, `${name}: injected ${f}`);
      if (name.startsWith('Notify')) return notify(calls, failError)(input);
      const r = ok[name];
      return structuredClone(typeof r === 'function' ? r(input) : r);
    };
  }
  return { calls, handlers };
}

export const context = (input, redriveCount = 0, machine = 'isolation') => ({
  Execution: {
    Name: 'exec-1',
    Id: `arn:aws:states:us-east-1:123456789012:execution:${machine}:exec-1`,
    Input: input,
    RedriveCount: redriveCount,
  },
  // aws-local-stepfunctions keeps $$ as given (no per-state RetryCount): a constant 0, which the stubs ignore.
  State: { RetryCount: 0 },
});

// run executes the definition (from startAt, for a redrive) and returns the outcome and the event log.
export async function run(definition, handlers, { input, event = input, startAt, redriveCount = 0, machine } = {}) {
  const def = startAt ? { ...definition, StartAt: startAt } : definition;
  const sm = new StateMachine(def, { validationOptions: { checkArn: true, checkPaths: true } });
  const retryIntervalOverrides = Object.fromEntries(taskNames(definition).map((t) => [t, 0]));
  const execution = sm.run(input, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides },
    context: context(event, redriveCount, machine),
  });
  const events = [];
  const collect = (async () => {
    for await (const e of execution.eventLogs) events.push(e);
  })();
  let output, error;
  try {
    output = await execution.result;
  } catch (e) {
    error = e;
  }
  await collect;
  const failed = events.find((e) => e.type === 'ExecutionFailed');
  const lastFailedState = events.filter((e) => e.type === 'StateFailed').at(-1);
  const entered = events.filter((e) => e.type === 'StateEntered').map((e) => e.state.name);
  return { output, error, failed, lastFailedState, events, entered };
}

// stateInput returns the input of the last entry into a state (what a redrive restarts it with).
export const stateInput = (events, name) =>
  events.filter((e) => e.type === 'StateEntered' && e.state.name === name).at(-1)?.state.input;

export const failure = (state, error, redriveCount = 0) => ({
  state,
  error,
  cause: `${state}: injected ${error}`,
  redriveCount,
});

// redriveResumes runs a failing execution, redrives it from "Notify failure" and checks the resumption: it
// re-enters tc.resumesAt, re-runs tc.reruns and not tc.notRerun, and ends with exactly one failure and one
// success message (nothing published on resuming). It returns the calls for the caller's own checks.
export async function redriveResumes(tc, { setup, runMachine, tasks, event }) {
  const { calls, handlers } = setup(tc.fail);
  const first = await runMachine(handlers);
  assert.equal(first.lastFailedState.state.name, 'Notify failure');
  const input = stateInput(first.events, 'Notify failure');
  const before = Object.fromEntries(tasks.map((t) => [t, calls.inputs[t]?.length ?? 0]));

  const res = await runMachine(handlers, { input, event, startAt: 'Notify failure', redriveCount: 1 });
  assert.equal(res.error, undefined, `redrive failed: ${res.failed?.Error} ${res.failed?.Cause}`);
  assert.deepEqual(res.entered.slice(0, 4), ['Notify failure', 'Prepare to resume', 'Resume at failed state', tc.resumesAt]);
  for (const t of tc.reruns) assert.equal(calls.inputs[t].length, before[t] + 1, `${t} should run again`);
  for (const t of tc.notRerun ?? []) assert.equal(calls.inputs[t]?.length ?? 0, before[t], `${t} should not run again`);
  assert.equal(calls.published.length, 2, 'one failure message, then one success message; nothing on resuming');
  assert.equal(calls.published[1].outcome, 'SUCCEEDED');
  assert.equal(calls.published[1].redriveCount, 1);
  return calls;
}
