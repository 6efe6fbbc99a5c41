// Runs statemachine/release.asl.json in aws-local-stepfunctions with stubbed tasks: the data flow, the refusal
// path, the failure markers of the three Restore branches, the record, and the redrive resumption.
//
// Run: node --test statemachine/   (needs `npm ci` first)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDefinition, loadEvent, taskNames, stubs, run, stateInput, failure, context, redriveResumes } from './harness.mjs';

const definition = loadDefinition('release.asl.json');
const event = loadEvent('release.json');
const TASKS = taskNames(definition);
const exec = context(event, 0, 'release').Execution;

const instanceId = 'i-0a1b2c3d4e5f60718';
const instanceArn = event.resources[0];
const profileArn = 'arn:aws:iam::123456789012:instance-profile/web';
const incident = {
  bucket: 'incidents',
  key: `incidents/123456789012/us-east-1/${instanceId}.json`,
  versionId: 'v1',
  opened: false,
  openedAt: '2026-11-23T16:00:00Z',
  preIsolation: {
    record: { instanceId, instanceArn, profileAssociation: { associationId: 'iip-assoc-1', profileArn, state: 'associated' } },
    targetGroups: [],
  },
};
const release = { instanceId, instanceArn, executionName: 'exec-1', incident };
const restoreGroups = { changes: [{ step: 'Restore security groups', resource: 'eni-1', action: 'ModifyNetworkInterfaceAttribute' }] };
const restoreProfile = { changes: [{ step: 'Restore instance profile', resource: instanceId, action: 'ReplaceIamInstanceProfileAssociation' }] };
const liftRevocation = { roles: [{ roleName: 'web', policyName: `ec2-isolation-revoke-${instanceId}`, changed: true }] };
const restoreEvidence = { changes: [], skipped: ['no Auto Scaling group'] };
const recorded = { ...incident, versionId: 'v2' };

const ok = {
  'Read incident record': release,
  'Restore security groups': restoreGroups,
  'Restore instance profile': restoreProfile,
  'Lift credential revocation': liftRevocation,
  'Restore evidence settings': restoreEvidence,
  'Record release': recorded,
};

const setup = (fail = {}, results = {}) => stubs(TASKS, { ...ok, ...results }, 'ReleaseFailed', fail);
const runRelease = (handlers, opts = {}) => run(definition, handlers, { input: event, machine: 'release', ...opts });

const releaseInput = { instanceId, instanceArn, executionName: 'exec-1', incident };
const common = { workflow: 'release', executionName: 'exec-1', executionArn: exec.Id, instanceId };

test('release: every task gets exactly its workflow input; the record is written before the notification', async () => {
  const { calls, handlers } = setup();
  const res = await runRelease(handlers);
  assert.equal(res.error, undefined, `${res.failed?.Error} ${res.failed?.Cause}`);
  const ins = (n) => calls.inputs[n];
  assert.deepEqual(ins('Read incident record'), [{ event, executionName: 'exec-1' }]);
  assert.deepEqual(ins('Restore security groups'), [releaseInput]);
  assert.deepEqual(ins('Restore instance profile'), [releaseInput]);
  assert.deepEqual(ins('Restore evidence settings'), [releaseInput]);
  // releaseStartedAt: credentials issued before the release stay denied (issue 13).
  // The library sets $$.Execution.StartTime itself: check its shape.
  const [{ releaseStartedAt, ...lift }] = ins('Lift credential revocation');
  assert.match(releaseStartedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.deepEqual(lift, { instanceId, instanceArn, executionName: 'exec-1', profileArn });
  const outputs = { incident, restoreGroups, restoreProfile, liftRevocation, restoreEvidence };
  assert.deepEqual(ins('Record release'), [
    { phase: 'release', outcome: 'SUCCEEDED', ...common, ...outputs, failures: [], redriveCount: 0 },
  ]);
  // The execution's input (the tag event): the notification says when the reconciler started the release.
  assert.deepEqual(ins('Notify success'), [
    { outcome: 'SUCCEEDED', ...common, ...outputs, incident: recorded, redriveCount: 0, event },
  ]);
  assert.equal(ins('Notify failure'), undefined);
  assert.ok(calls.order.indexOf('Record release') < calls.order.indexOf('Notify success'));
  assert.ok(calls.order.indexOf('Restore instance profile') < calls.order.indexOf('Lift credential revocation'));
  assert.deepEqual(res.entered.at(-1), 'Released');
});

test('release of an instance that had no instance profile: nothing to lift', async () => {
  const noProfile = structuredClone(release);
  delete noProfile.incident.preIsolation.record.profileAssociation;
  const { calls, handlers } = setup({}, { 'Read incident record': noProfile });
  const res = await runRelease(handlers);
  assert.equal(res.error, undefined);
  assert.equal(calls.inputs['Lift credential revocation'], undefined);
  assert.equal(calls.inputs['Restore instance profile'].length, 1);
  assert.equal(calls.published.length, 1);
  assert.equal(calls.published[0].liftRevocation, null);
});

for (const refusal of ['NotIsolated', 'RecordMissing', 'InstanceNotFound', 'InvalidEvent']) {
  test(`refusal (${refusal}): exactly one notification, no other task runs, the execution fails with ReleaseFailed`, async () => {
    const { calls, handlers } = setup({ 'Read incident record': refusal });
    const res = await runRelease(handlers);
    assert.equal(res.failed?.Error, 'ReleaseFailed');
    assert.equal(res.lastFailedState.state.name, 'Notify failure');
    assert.deepEqual(calls.order, ['Read incident record', 'Notify failure'], 'not retried, nothing else runs');
    assert.equal(calls.published.length, 1);
    assert.deepEqual(calls.published[0], {
      outcome: 'FAILED',
      ...common,
      instanceId: null,
      incident: null,
      restoreGroups: null,
      restoreProfile: null,
      liftRevocation: null,
      restoreEvidence: null,
      failures: [failure('Read incident record', refusal)],
      redriveCount: 0,
      event,
    });
  });
}

test('a refusal of an execution input that is not an object is still notified once', async () => {
  const { calls, handlers } = setup({ 'Read incident record': 'InvalidEvent' });
  const res = await runRelease(handlers, { input: ['not', 'an', 'event'] });
  assert.equal(res.failed?.Error, 'ReleaseFailed');
  assert.equal(calls.published.length, 1);
});

test('a release waits for a running isolation (IsolationInProgress is retried), then restores (issue 12 case 7)', async () => {
  const { calls, handlers } = setup({ 'Read incident record': (n) => (n <= 3 ? 'IsolationInProgress' : undefined) });
  const res = await runRelease(handlers);
  assert.equal(res.error, undefined, `${res.failed?.Error} ${res.failed?.Cause}`);
  assert.equal(calls.inputs['Read incident record'].length, 4);
  assert.equal(calls.inputs['Restore security groups'].length, 1);
  assert.deepEqual(calls.published.map((p) => p.outcome), ['SUCCEEDED']);
});

test('a superseded release (the tag no longer says release) is not retried: no restore, one notification (issue 12 case 7)', async () => {
  const { calls, handlers } = setup({ 'Read incident record': 'Superseded' });
  const res = await runRelease(handlers);
  assert.equal(res.failed?.Error, 'ReleaseFailed');
  assert.equal(calls.inputs['Read incident record'].length, 1);
  for (const t of ['Restore security groups', 'Restore instance profile', 'Restore evidence settings', 'Record release']) {
    assert.equal(calls.inputs[t], undefined, `${t} must not run`);
  }
  assert.equal(calls.published.length, 1);
  assert.deepEqual(calls.published[0].failures, [failure('Read incident record', 'Superseded')]);
});

const branchCases = [
  {
    name: 'security groups',
    fail: { 'Restore security groups': 'AWSError' },
    failures: [failure('Restore security groups', 'AWSError')],
    reported: { restoreGroups: null, restoreProfile, liftRevocation, restoreEvidence },
  },
  {
    name: 'instance profile (then nothing is lifted)',
    fail: { 'Restore instance profile': 'AssociationPending' },
    failures: [failure('Restore instance profile', 'AssociationPending')],
    reported: { restoreGroups, restoreProfile: null, liftRevocation: null, restoreEvidence },
  },
  {
    name: 'lift and evidence, listed in branch order',
    fail: { 'Restore evidence settings': 'AWSError', 'Lift credential revocation': 'AWSError' },
    failures: [failure('Lift credential revocation', 'AWSError'), failure('Restore evidence settings', 'AWSError')],
    reported: { restoreGroups, restoreProfile, liftRevocation: null, restoreEvidence: null },
  },
];

for (const tc of branchCases) {
  test(`a failed restore (${tc.name}): the other branches complete, the record gets FAILED, one failure notification`, async () => {
    const { calls, handlers } = setup(tc.fail);
    const res = await runRelease(handlers);
    assert.equal(res.failed?.Error, 'ReleaseFailed');
    assert.equal(res.lastFailedState.state.name, 'Notify failure');
    for (const t of ['Restore security groups', 'Restore instance profile', 'Restore evidence settings']) {
      assert.ok(calls.inputs[t]?.length >= 1, `${t} should run`);
    }
    assert.deepEqual(calls.inputs['Record release'], [
      { phase: 'release', outcome: 'FAILED', ...common, incident, ...tc.reported, failures: tc.failures, redriveCount: 0 },
    ]);
    assert.equal(calls.published.length, 1);
    assert.deepEqual(calls.published[0], {
      outcome: 'FAILED',
      ...common,
      incident: recorded,
      ...tc.reported,
      failures: tc.failures,
      redriveCount: 0,
      event,
    });
  });
}

test('the record cannot be written after a clean release: notified as the only failure', async () => {
  const { calls, handlers } = setup({ 'Record release': 'Transient' });
  const res = await runRelease(handlers);
  assert.equal(res.failed?.Error, 'ReleaseFailed');
  assert.equal(calls.inputs['Notify success'], undefined);
  assert.equal(calls.published.length, 1);
  assert.deepEqual(calls.published[0].failures, [failure('Record release', 'Transient')]);
  assert.deepEqual(calls.published[0].incident, incident, 'the incident as read');
});

test('the record cannot be written after a failed restore: the restore failure is notified, once', async () => {
  const { calls, handlers } = setup({ 'Record release': 'AWSError', 'Restore security groups': 'AWSError' });
  const res = await runRelease(handlers);
  assert.equal(res.failed?.Error, 'ReleaseFailed');
  assert.equal(calls.inputs['Record release'].length, 1, 'not run twice');
  assert.equal(calls.published.length, 1);
  assert.deepEqual(calls.published[0].failures, [failure('Restore security groups', 'AWSError')]);
});

test('the success notification fails: the record is updated to FAILED, then Notify failure', async () => {
  const { calls, handlers } = setup({ 'Notify success': 'AWSError' });
  const res = await runRelease(handlers);
  assert.equal(res.failed?.Error, 'ReleaseFailed');
  assert.deepEqual(
    calls.inputs['Record release'].map((i) => i.outcome),
    ['SUCCEEDED', 'FAILED'],
  );
  assert.deepEqual(calls.inputs['Record release'][1].failures, [failure('Notify success', 'AWSError')]);
  assert.equal(calls.published.length, 1);
  assert.deepEqual(calls.published[0].failures, [failure('Notify success', 'AWSError')]);
});

const redriveCases = [
  {
    fail: { 'Read incident record': (n) => (n === 1 ? 'RecordMissing' : undefined) },
    resumesAt: 'Read incident record',
    reruns: ['Read incident record', 'Restore security groups', 'Restore instance profile', 'Record release'],
  },
  {
    fail: { 'Lift credential revocation': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Restore',
    reruns: ['Restore security groups', 'Restore instance profile', 'Lift credential revocation', 'Restore evidence settings', 'Record release'],
  },
  {
    fail: { 'Record release': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Release complete?',
    reruns: ['Record release'],
    notRerun: ['Restore security groups', 'Read incident record'],
  },
  {
    fail: { 'Notify success': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Notify success',
    reruns: [],
    notRerun: ['Record release'],
  },
];

for (const tc of redriveCases) {
  test(`redrive resumes at ${tc.resumesAt} and completes the release`, async () => {
    const calls = await redriveResumes(tc, { setup, runMachine: runRelease, tasks: TASKS, event });
    assert.equal(calls.published[1].workflow, 'release');
  });
}

test('a notify answer without a state to resume at ends in the Fail state ReleaseFailed', async () => {
  const { handlers } = setup({ 'Restore security groups': 'AWSError' });
  const first = await runRelease(handlers);
  const input = stateInput(first.events, 'Notify failure');
  handlers['Notify failure'] = async () => ({ messageId: 'm-2' });
  const res = await runRelease(handlers, { input, event, startAt: 'Notify failure', redriveCount: 1 });
  assert.equal(res.failed.Error, 'ReleaseFailed');
  assert.deepEqual(res.entered.slice(-1), ['Release failed']);
});
