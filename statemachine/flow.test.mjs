// Runs statemachine/isolation.asl.json in aws-local-stepfunctions (an independent ASL implementation) with
// stubbed tasks, to check the data flow, the failure markers and the redrive resumption without AWS.
// The stubs follow the workflow contract (internal/workflow); the real handlers are exercised by the Go engine
// (internal/asl) and `go run ./cmd/isolation simulate`.
//
// Run: node --test statemachine/   (needs `npm ci` first)
import { test } from 'node:test';
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
const raw = readFileSync(new URL('isolation.asl.json', here), 'utf8');
// DefinitionSubstitutions, as the template passes them (any function ARN will do: every task is stubbed).
const definition = JSON.parse(
  raw.replace(/\$\{(\w+)FunctionArn\}/g, 'arn:aws:lambda:us-east-1:123456789012:function:ec2-isolation-$1'),
);
const event = JSON.parse(readFileSync(new URL('../events/isolate.json', here), 'utf8'));

const TASKS = [
  'Validate and record',
  'Ensure isolation security group',
  'Apply isolation security group',
  'Disassociate profile',
  'Attach isolation profile',
  'Snapshot volumes',
  'Notify success',
  'Notify failure',
];

const record = {
  instanceId: 'i-0a1b2c3d4e5f60718',
  instanceArn: event.resources[0],
  vpcIds: ['vpc-1', 'vpc-2'],
  reason: 'tag Isolate=true',
};
const groups = { groups: [{ vpcId: 'vpc-1', isolationGroupId: 'sg-1' }, { vpcId: 'vpc-2', isolationGroupId: 'sg-2' }] };
const apply = { networkInterfaces: [{ networkInterfaceId: 'eni-1', after: ['sg-1'], changed: true }] };
const disassociate = { disassociated: [{ associationId: 'iip-assoc-1' }] };
const attach = { associationId: 'iip-assoc-2', changed: true };
const snapshot = { snapshots: [{ snapshotId: 'snap-1', volumeId: 'vol-1' }], created: true };

class StepError extends Error {
  constructor(type, message) {
    super(message);
    this.name = type; // aws-lambda-go reports the Go type name as errorType; ASL matches on it
  }
}

// notify follows internal/workflow.NotifyInput's contract: on a redrive (RedriveCount greater than every
// failure's), publish nothing and answer resumeAt; otherwise publish and, for FAILED, fail with IsolationFailed.
function notify(calls) {
  return (input) => {
    if (input.outcome === 'FAILED') {
      const last = Math.max(...input.failures.map((f) => f.redriveCount));
      if (input.redriveCount > last) return { resumeAt: input.failures[0].state };
      calls.published.push(input);
      throw new StepError('IsolationFailed', `isolation failed: ${input.failures.map((f) => f.state).join(', ')}`);
    }
    calls.published.push(input);
    return { messageId: 'm-1' };
  };
}

// stubs returns task handlers that record their inputs; fail maps a state name to the error it throws (or a
// function that decides per call).
function stubs(fail = {}, results = {}) {
  const calls = { inputs: {}, published: [] };
  const ok = {
    'Validate and record': record,
    'Ensure isolation security group': groups,
    'Apply isolation security group': apply,
    'Disassociate profile': disassociate,
    'Attach isolation profile': attach,
    'Snapshot volumes': snapshot,
    ...results,
  };
  const handlers = {};
  for (const name of TASKS) {
    handlers[name] = async (input) => {
      (calls.inputs[name] ??= []).push(structuredClone(input));
      let f = fail[name];
      if (typeof f === 'function') f = f(calls.inputs[name].length);
      if (f) throw new StepError(f, `${name}: injected ${f}`);
      if (name.startsWith('Notify')) return notify(calls)(input);
      return structuredClone(ok[name]);
    };
  }
  return { calls, handlers };
}

const context = (redriveCount = 0) => ({
  Execution: { Name: 'exec-1', Id: 'arn:aws:states:us-east-1:123456789012:execution:isolation:exec-1', Input: event, RedriveCount: redriveCount },
});

// run executes the definition (from startAt, for a redrive) and returns the outcome and the event log.
async function run(handlers, { input = event, startAt, redriveCount = 0 } = {}) {
  const def = startAt ? { ...definition, StartAt: startAt } : definition;
  const sm = new StateMachine(def, { validationOptions: { checkArn: true, checkPaths: true } });
  const retryIntervalOverrides = Object.fromEntries(TASKS.map((t) => [t, 0]));
  const execution = sm.run(input, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides },
    context: context(redriveCount),
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
  return { output, error, failed, lastFailedState, events };
}

// stateInput returns the input of the last entry into a state (what a redrive restarts it with).
const stateInput = (events, name) => events.filter((e) => e.type === 'StateEntered' && e.state.name === name).at(-1)?.state.input;

const failure = (state, error, redriveCount = 0) => ({
  state,
  error,
  cause: `${state}: injected ${error}`,
  redriveCount,
});

test('success: every task gets exactly its workflow input and Notify success reports every output', async () => {
  const { calls, handlers } = stubs();
  const res = await run(handlers);
  assert.equal(res.error, undefined);
  const ins = (n) => calls.inputs[n];
  const inst = { instanceId: record.instanceId, executionName: 'exec-1', reason: record.reason };
  assert.deepEqual(ins('Validate and record'), [{ event, executionName: 'exec-1' }]);
  assert.deepEqual(ins('Ensure isolation security group'), [
    { instanceId: record.instanceId, executionName: 'exec-1', vpcIds: record.vpcIds, record },
  ]);
  assert.deepEqual(ins('Apply isolation security group'), [
    { instanceId: record.instanceId, executionName: 'exec-1', record, ensured: groups },
  ]);
  assert.deepEqual(ins('Disassociate profile'), [inst]);
  assert.deepEqual(ins('Attach isolation profile'), [inst]);
  assert.deepEqual(ins('Snapshot volumes'), [inst]);
  assert.equal(ins('Notify failure'), undefined);
  assert.deepEqual(ins('Notify success'), [
    {
      outcome: 'SUCCEEDED',
      executionName: 'exec-1',
      executionArn: context().Execution.Id,
      instanceId: record.instanceId,
      record,
      groups,
      apply,
      disassociate,
      attach,
      snapshot,
      redriveCount: 0,
    },
  ]);
  assert.deepEqual(res.output.notify, { messageId: 'm-1' });
});

test('warm path: the groups Validate and record found are applied at once, Ensure does not run', async () => {
  const found = [{ vpcId: 'vpc-1', isolationGroupId: 'sg-1' }, { vpcId: 'vpc-2', isolationGroupId: 'sg-2' }];
  const ready = { ...record, isolationGroups: found, groupsReady: true };
  const { calls, handlers } = stubs({}, { 'Validate and record': ready });
  const res = await run(handlers);
  assert.equal(res.error, undefined);
  assert.equal(calls.inputs['Ensure isolation security group'], undefined);
  assert.deepEqual(calls.inputs['Apply isolation security group'], [
    { instanceId: record.instanceId, executionName: 'exec-1', record: ready, ensured: null },
  ]);
  assert.equal(calls.published.length, 1);
  assert.equal(calls.published[0].outcome, 'SUCCEEDED');
  assert.deepEqual(calls.published[0].apply, apply);
});

test('retries: throttling and pending associations are retried, then the workflow goes on', async () => {
  const { calls, handlers } = stubs({
    'Apply isolation security group': (n) => (n <= 5 ? 'Throttled' : undefined),
    'Attach isolation profile': (n) => (n <= 3 ? 'AssociationPending' : undefined),
    'Ensure isolation security group': (n) => (n <= 2 ? 'GroupNotVisible' : undefined),
    'Snapshot volumes': (n) => (n === 1 ? 'Lambda.TooManyRequestsException' : undefined),
  });
  const res = await run(handlers);
  assert.equal(res.error, undefined);
  assert.equal(calls.inputs['Apply isolation security group'].length, 6);
  assert.equal(calls.inputs['Attach isolation profile'].length, 4);
  assert.equal(calls.published.length, 1);
  assert.equal(calls.published[0].outcome, 'SUCCEEDED');
});

test('a step error that no retry fixes is not retried', async () => {
  const { calls, handlers } = stubs({ 'Validate and record': 'InstanceNotFound' });
  await run(handlers);
  assert.equal(calls.inputs['Validate and record'].length, 1);
});

const failureCases = [
  {
    name: 'validation fails: nothing else runs',
    fail: { 'Validate and record': 'InstanceNotFound' },
    failures: [failure('Validate and record', 'InstanceNotFound')],
    notRun: ['Ensure isolation security group', 'Disassociate profile', 'Snapshot volumes', 'Notify success'],
    reported: { instanceId: null, record: null, groups: null, apply: null, disassociate: null, attach: null, snapshot: null },
  },
  {
    name: 'network branch fails: the IAM branch still completes, the volumes are still snapshotted',
    fail: { 'Apply isolation security group': 'AWSError' },
    failures: [failure('Apply isolation security group', 'AWSError')],
    notRun: ['Notify success'],
    reported: { instanceId: record.instanceId, record, groups, apply: null, disassociate, attach, snapshot },
  },
  {
    name: 'IAM branch fails: the network branch still completes, the volumes are still snapshotted',
    fail: { 'Disassociate profile': 'AWSError' },
    failures: [failure('Disassociate profile', 'AWSError')],
    notRun: ['Attach isolation profile', 'Notify success'],
    reported: { instanceId: record.instanceId, record, groups, apply, disassociate: null, attach: null, snapshot },
  },
  {
    name: 'both branches fail: both failures are reported, network first',
    fail: { 'Ensure isolation security group': 'ConfigError', 'Attach isolation profile': 'ProfileNotReady' },
    failures: [failure('Ensure isolation security group', 'ConfigError'), failure('Attach isolation profile', 'ProfileNotReady')],
    notRun: ['Apply isolation security group', 'Notify success'],
    reported: { instanceId: record.instanceId, record, groups: null, apply: null, disassociate, attach: null, snapshot },
  },
  {
    name: 'snapshot fails after containment',
    fail: { 'Snapshot volumes': 'AWSError' },
    failures: [failure('Snapshot volumes', 'AWSError')],
    notRun: ['Notify success'],
    reported: { instanceId: record.instanceId, record, groups, apply, disassociate, attach, snapshot: null },
  },
  {
    name: 'containment fails and then the snapshot fails too: the containment failure is reported',
    fail: { 'Attach isolation profile': 'AWSError', 'Snapshot volumes': 'AWSError' },
    failures: [failure('Attach isolation profile', 'AWSError')],
    notRun: ['Notify success'],
    reported: { instanceId: record.instanceId, record, groups, apply, disassociate, attach: null, snapshot: null },
  },
  {
    name: 'the success notification fails',
    fail: { 'Notify success': 'AWSError' },
    failures: [failure('Notify success', 'AWSError')],
    notRun: [],
    reported: { instanceId: record.instanceId, record, groups, apply, disassociate, attach, snapshot },
  },
];

for (const tc of failureCases) {
  test(`failure: ${tc.name}; Notify failure reports it and the execution fails there`, async () => {
    const { calls, handlers } = stubs(tc.fail);
    const res = await run(handlers);
    assert.ok(res.error, 'execution should fail');
    assert.equal(res.failed.Error, 'IsolationFailed');
    assert.equal(res.lastFailedState.state.name, 'Notify failure');
    for (const n of tc.notRun) assert.equal(calls.inputs[n], undefined, `${n} should not run`);
    assert.equal(calls.published.length, 1);
    assert.deepEqual(calls.published[0], {
      outcome: 'FAILED',
      executionName: 'exec-1',
      executionArn: context().Execution.Id,
      event,
      ...tc.reported,
      failures: tc.failures,
      redriveCount: 0,
    });
  });
}

// A redrive restarts the execution at the state that failed ("Notify failure") with the input it had.
const redriveCases = [
  {
    fail: { 'Validate and record': (n) => (n === 1 ? 'InstanceNotIsolatable' : undefined) },
    resumesAt: 'Validate and record',
    reruns: ['Validate and record', 'Ensure isolation security group', 'Disassociate profile', 'Snapshot volumes'],
  },
  {
    fail: { 'Apply isolation security group': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Contain',
    reruns: ['Ensure isolation security group', 'Apply isolation security group', 'Disassociate profile', 'Attach isolation profile', 'Snapshot volumes'],
  },
  {
    fail: { 'Snapshot volumes': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Snapshot volumes',
    reruns: ['Snapshot volumes'],
  },
  {
    fail: { 'Notify success': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Notify success',
    reruns: [],
  },
];

for (const tc of redriveCases) {
  test(`redrive resumes at ${tc.resumesAt} and completes the isolation`, async () => {
    const { calls, handlers } = stubs(tc.fail);
    const first = await run(handlers);
    assert.equal(first.lastFailedState.state.name, 'Notify failure');
    const input = stateInput(first.events, 'Notify failure');
    const before = Object.fromEntries(TASKS.map((t) => [t, calls.inputs[t]?.length ?? 0]));

    const res = await run(handlers, { input, startAt: 'Notify failure', redriveCount: 1 });
    assert.equal(res.error, undefined, `redrive failed: ${res.failed?.Error} ${res.failed?.Cause}`);
    const entered = res.events.filter((e) => e.type === 'StateEntered').map((e) => e.state.name);
    assert.deepEqual(entered.slice(0, 4), ['Notify failure', 'Prepare to resume', 'Resume at failed state', tc.resumesAt]);
    for (const t of tc.reruns) assert.equal(calls.inputs[t].length, before[t] + 1, `${t} should run again`);
    assert.equal(calls.published.length, 2, 'one failure message, then one success message; nothing on resuming');
    assert.equal(calls.published[1].outcome, 'SUCCEEDED');
    assert.equal(calls.published[1].redriveCount, 1);
    assert.deepEqual(calls.published[1].snapshot, snapshot);
  });
}

test('a redrive that fails again reports the new failure with the new redrive count', async () => {
  const { calls, handlers } = stubs({ 'Attach isolation profile': 'AWSError' });
  const first = await run(handlers);
  const input = stateInput(first.events, 'Notify failure');
  const res = await run(handlers, { input, startAt: 'Notify failure', redriveCount: 1 });
  assert.equal(res.failed.Error, 'IsolationFailed');
  assert.equal(res.lastFailedState.state.name, 'Notify failure');
  assert.equal(calls.published.length, 2);
  assert.deepEqual(calls.published[1].failures, [failure('Attach isolation profile', 'AWSError', 1)]);
});

test('a notify answer without a state to resume at ends in the Fail state', async () => {
  const { handlers } = stubs({ 'Snapshot volumes': 'AWSError' });
  const first = await run(handlers);
  const input = stateInput(first.events, 'Notify failure');
  handlers['Notify failure'] = async () => ({ messageId: 'm-2' });
  const res = await run(handlers, { input, startAt: 'Notify failure', redriveCount: 1 });
  assert.equal(res.failed.Error, 'IsolationFailed');
  assert.notEqual(res.lastFailedState?.state.name, 'Notify failure');
  const entered = res.events.filter((e) => e.type === 'StateEntered').map((e) => e.state.name);
  assert.deepEqual(entered.slice(-1), ['Isolation failed']);
});
