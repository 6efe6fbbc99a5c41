// Runs statemachine/isolation.asl.json in aws-local-stepfunctions (an independent ASL implementation) with
// stubbed tasks, to check the data flow, the failure markers, the incident record and the redrive resumption
// without AWS. The stubs follow the workflow contract (internal/workflow); the real handlers are exercised by the
// Go engine (internal/asl) and `go run ./cmd/isolation simulate`.
//
// Run: node --test statemachine/   (needs `npm ci` first)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDefinition, loadEvent, taskNames, stubs, run, stateInput, failure, context, redriveResumes, evidenceQueueUrl } from './harness.mjs';

const definition = loadDefinition('isolation.asl.json');
const event = loadEvent('isolate.json');
const TASKS = taskNames(definition);
const exec = context(event).Execution;

const profileArn = 'arn:aws:iam::123456789012:instance-profile/web';
const record = {
  instanceId: 'i-0a1b2c3d4e5f60718',
  instanceArn: event.resources[0],
  vpcIds: ['vpc-1', 'vpc-2'],
  profileAssociation: { associationId: 'iip-assoc-1', profileArn, state: 'associated' },
  reason: 'tag Isolate=true',
  // Validate and record always writes volumes (workflow.Record, no omitempty); Snapshot volumes takes them.
  volumes: [{ volumeId: 'vol-1', deviceName: '/dev/xvda', deleteOnTermination: true }],
};
const incident = {
  bucket: 'incidents',
  key: `incidents/123456789012/us-east-1/${record.instanceId}.json`,
  versionId: 'v1',
  opened: true,
  openedAt: '2026-11-23T16:00:00Z',
  preIsolation: { record, targetGroups: [] },
};
const recorded = { ...incident, versionId: 'v2' };
const groups = { groups: [{ vpcId: 'vpc-1', isolationGroupId: 'sg-1' }, { vpcId: 'vpc-2', isolationGroupId: 'sg-2' }] };
const apply = { networkInterfaces: [{ networkInterfaceId: 'eni-1', after: ['sg-1'], changed: true }] };
const disassociate = { disassociated: [{ associationId: 'iip-assoc-1' }] };
const attach = { associationId: 'iip-assoc-2', changed: true };
const revoke = { roles: [{ roleName: 'web', policyName: `ec2-isolation-revoke-${record.instanceId}`, changed: true }] };
const preserve = { changes: [{ step: 'Preserve evidence', resource: record.instanceId, action: 'ModifyInstanceAttribute' }] };
const snapshot = { snapshots: [{ snapshotId: 'snap-1', volumeId: 'vol-1' }], created: true };
const verify = {
  contained: true,
  networkInterfaces: [{ networkInterfaceId: 'eni-1', vpcId: 'vpc-1', groups: ['sg-1'], isolationGroupId: 'sg-1' }],
  groups: [{ vpcId: 'vpc-1', groupId: 'sg-1', ingress: 0, egress: 0 }],
  associations: [{ associationId: 'iip-assoc-2', profileArn: 'arn:aws:iam::123456789012:instance-profile/quarantine', state: 'associated' }],
  rounds: 1,
};

const ok = {
  'Validate and record': record,
  'Ensure isolation security group': groups,
  'Apply isolation security group': apply,
  'Record pre-isolation state': incident,
  'Disassociate profile': disassociate,
  'Attach isolation profile': attach,
  'Revoke credentials': revoke,
  'Queue instance settings': { MessageId: 'm-queued', MD5OfMessageBody: '0f343b0931126a20f133d67c2b018a3b' },
  'Preserve evidence': preserve,
  'Verify containment': verify,
  'Snapshot volumes': snapshot,
  'Record outcome': recorded,
};
const setup = (fail = {}, results = {}) => stubs(TASKS, { ...ok, ...results }, 'IsolationFailed', fail);
const runIsolation = (handlers, opts = {}) => run(definition, handlers, { input: event, ...opts });

const common = { workflow: 'isolation', executionName: 'exec-1', executionArn: exec.Id };
const all = { record, incident, disassociate, attach, revoke, preserve, groups, apply, verify, snapshot };

test('success: every task gets exactly its workflow input; the outcome is recorded, then Notify success reports every output', async () => {
  const { calls, handlers } = setup();
  const res = await runIsolation(handlers);
  assert.equal(res.error, undefined, `${res.failed?.Error} ${res.failed?.Cause}`);
  const ins = (n) => calls.inputs[n];
  const inst = { instanceId: record.instanceId, executionName: 'exec-1', reason: record.reason };
  assert.deepEqual(ins('Validate and record'), [{ event, executionName: 'exec-1' }]);
  assert.deepEqual(ins('Ensure isolation security group'), [
    { instanceId: record.instanceId, executionName: 'exec-1', vpcIds: record.vpcIds, record, groupMissing: null, previous: null, attempt: 0, redriveCount: 0 },
  ]);
  assert.deepEqual(ins('Apply isolation security group'), [
    { instanceId: record.instanceId, executionName: 'exec-1', record, ensured: groups, attempt: 0, redriveCount: 0 },
  ]);
  assert.deepEqual(ins('Record pre-isolation state'), [{ phase: 'open', record, executionName: 'exec-1', executionArn: exec.Id }]);
  // Issue 16: its first run trusts Validate's record (a retry or a redrive reads EC2's associations).
  assert.deepEqual(ins('Disassociate profile'), [{ ...inst, record, attempt: 0, redriveCount: 0 }]);
  assert.deepEqual(ins('Attach isolation profile'), [inst]);
  assert.deepEqual(ins('Revoke credentials'), [
    { instanceId: record.instanceId, instanceArn: record.instanceArn, executionName: 'exec-1', profileArn },
  ]);
  // Issue 16: the instance settings are queued for the evidence state machine (the whole job, Validate's record
  // in it); Preserve evidence then takes the instance out of its fleet only.
  assert.deepEqual(ins('Queue instance settings'), [
    { QueueUrl: evidenceQueueUrl, MessageBody: { evidenceJob: { instanceId: record.instanceId, isolationExecution: 'exec-1', record } } },
  ]);
  assert.deepEqual(ins('Preserve evidence'), [{ instanceId: record.instanceId, executionName: 'exec-1', record, attempt: 0, redriveCount: 0, stage: 'fleet' }]);
  assert.ok(calls.order.indexOf('Queue instance settings') < calls.order.indexOf('Preserve evidence'));
  assert.deepEqual(ins('Verify containment'), [
    { instanceId: record.instanceId, executionName: 'exec-1', record, groups, apply, attempt: 0, redriveCount: 0 },
  ]);
  assert.deepEqual(ins('Snapshot volumes'), [{ ...inst, record }]);
  assert.deepEqual(ins('Record outcome'), [
    { phase: 'outcome', outcome: 'SUCCEEDED', ...common, instanceId: record.instanceId, ...all, failures: [], redriveCount: 0 },
  ]);
  assert.equal(ins('Notify failure'), undefined);
  assert.deepEqual(ins('Notify success'), [
    { outcome: 'SUCCEEDED', ...common, instanceId: record.instanceId, ...all, incident: recorded, redriveCount: 0 },
  ]);
  assert.deepEqual(res.output.notify, { messageId: 'm-1' });
  // The IAM branch's order: the record before any IAM change, revocation after the profile swap. Evidence is a
  // branch of its own; the read-back comes after every branch, then the snapshot.
  const iam = ['Record pre-isolation state', 'Disassociate profile', 'Attach isolation profile', 'Revoke credentials'];
  assert.deepEqual(calls.order.filter((n) => iam.includes(n)), iam);
  assert.deepEqual(calls.order.slice(-4), ['Verify containment', 'Snapshot volumes', 'Record outcome', 'Notify success']);
});

test('the revocation targets the pre-isolation profile of the incident, not the profile the instance has now', async () => {
  // A repeated execution: Validate and record finds the isolation profile attached; the incident keeps the original.
  const now = { ...record, profileAssociation: { associationId: 'iip-assoc-9', profileArn: 'arn:aws:iam::123456789012:instance-profile/quarantine', state: 'associated' } };
  const { calls, handlers } = setup({}, { 'Validate and record': now, 'Record pre-isolation state': { ...incident, opened: false } });
  const res = await runIsolation(handlers);
  assert.equal(res.error, undefined);
  assert.equal(calls.inputs['Revoke credentials'][0].profileArn, profileArn);
});

test('an instance that had no instance profile: no revocation, evidence still preserved', async () => {
  const bare = structuredClone(record);
  delete bare.profileAssociation;
  const { calls, handlers } = setup({}, { 'Validate and record': bare, 'Record pre-isolation state': { ...incident, preIsolation: { record: bare, targetGroups: [] } } });
  const res = await runIsolation(handlers);
  assert.equal(res.error, undefined);
  assert.equal(calls.inputs['Revoke credentials'], undefined);
  assert.equal(calls.inputs['Preserve evidence'].length, 1);
  assert.equal(calls.published[0].revoke, null);
});

test('warm path: the groups Validate and record found are applied at once, Ensure does not run', async () => {
  const found = [{ vpcId: 'vpc-1', isolationGroupId: 'sg-1' }, { vpcId: 'vpc-2', isolationGroupId: 'sg-2' }];
  const ready = { ...record, isolationGroups: found, groupsReady: true };
  const { calls, handlers } = setup({}, { 'Validate and record': ready });
  const res = await runIsolation(handlers);
  assert.equal(res.error, undefined);
  assert.equal(calls.inputs['Ensure isolation security group'], undefined);
  assert.deepEqual(calls.inputs['Apply isolation security group'], [
    { instanceId: record.instanceId, executionName: 'exec-1', record: ready, ensured: null, attempt: 0, redriveCount: 0 },
  ]);
  assert.equal(calls.inputs['Verify containment'][0].groups, null, 'warm path: Verify gets no Ensure output');
  assert.equal(calls.published.length, 1);
  assert.equal(calls.published[0].outcome, 'SUCCEEDED');
  assert.deepEqual(calls.published[0].apply, apply);
});

test('the network branch never waits for the record: it completes even when the record cannot be written', async () => {
  const { calls, handlers } = setup({ 'Record pre-isolation state': 'AWSError' });
  const res = await runIsolation(handlers);
  assert.equal(res.failed?.Error, 'IsolationFailed');
  assert.equal(calls.inputs['Apply isolation security group'].length, 1);
  for (const n of ['Disassociate profile', 'Attach isolation profile', 'Revoke credentials']) {
    assert.equal(calls.inputs[n], undefined, `${n} must wait for the record`);
  }
  assert.equal(calls.inputs['Preserve evidence'].length, 1, 'evidence is preserved without waiting for the record (issue 12 case 5)');
  assert.equal(calls.inputs['Snapshot volumes'].length, 1, 'the evidence is still snapshotted');
  // Record outcome gets no incident and the record: it opens the incident itself (incident.Recorder).
  assert.equal(calls.inputs['Record outcome'][0].incident, null);
  assert.deepEqual(calls.inputs['Record outcome'][0].record, record);
});

test('evidence does not wait for the record nor the IAM steps: Preserve evidence runs while the record is still being written (issue 12 case 5)', async () => {
  // The record's stub returns only once Preserve evidence has started: if evidence waited for the record (or for
  // the profile steps after it), the gate would never open and the record would fail.
  let opened;
  const gate = new Promise((resolve) => (opened = resolve));
  const { calls, handlers } = setup();
  const preserve = handlers['Preserve evidence'];
  handlers['Preserve evidence'] = async (input) => {
    opened();
    return preserve(input);
  };
  const record = handlers['Record pre-isolation state'];
  handlers['Record pre-isolation state'] = async (input) => {
    const waited = await Promise.race([gate.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000).unref())]);
    if (!waited) throw new Error('Preserve evidence did not start while the record was being written');
    return record(input);
  };
  const res = await runIsolation(handlers);
  assert.equal(res.error, undefined, `${res.failed?.Error} ${res.failed?.Cause}`);
  assert.ok(calls.order.indexOf('Preserve evidence') < calls.order.indexOf('Disassociate profile'));
});

test('a group deleted between Validate and Apply (GroupMissing) leads back to Ensure, which gets the error and its earlier output; not retried (issue 12 case 4)', async () => {
  const caught = { Error: 'GroupMissing', Cause: 'Apply isolation security group: injected GroupMissing' };
  const again = { groups: [{ vpcId: 'vpc-1', isolationGroupId: 'sg-3' }, { vpcId: 'vpc-2', isolationGroupId: 'sg-2' }], round: 1 };
  const { calls, handlers } = setup(
    { 'Apply isolation security group': (n) => (n === 1 ? 'GroupMissing' : undefined) },
    { 'Ensure isolation security group': (input) => (input.groupMissing ? again : groups) },
  );
  const res = await runIsolation(handlers);
  assert.equal(res.error, undefined, `${res.failed?.Error} ${res.failed?.Cause}`);
  const ensure = calls.inputs['Ensure isolation security group'];
  assert.equal(ensure.length, 2);
  assert.deepEqual([ensure[0].groupMissing, ensure[0].previous], [null, null]);
  assert.deepEqual([ensure[1].groupMissing, ensure[1].previous], [caught, groups]);
  const applied = calls.inputs['Apply isolation security group'];
  assert.equal(applied.length, 2, 'GroupMissing is not retried: Apply runs again only after Ensure');
  assert.deepEqual(applied[1].ensured, again);
  assert.deepEqual(calls.inputs['Verify containment'][0].groups, again);
  assert.equal(calls.published[0].outcome, 'SUCCEEDED');
});

test('warm path: a group deleted since Validate sends Apply to Ensure, which the warm path skipped (issue 12 case 4)', async () => {
  const found = [{ vpcId: 'vpc-1', isolationGroupId: 'sg-1' }, { vpcId: 'vpc-2', isolationGroupId: 'sg-2' }];
  const ready = { ...record, isolationGroups: found, groupsReady: true };
  const { calls, handlers } = setup(
    { 'Apply isolation security group': (n) => (n === 1 ? 'GroupMissing' : undefined) },
    { 'Validate and record': ready },
  );
  const res = await runIsolation(handlers);
  assert.equal(res.error, undefined, `${res.failed?.Error} ${res.failed?.Cause}`);
  const ensure = calls.inputs['Ensure isolation security group'];
  assert.equal(ensure.length, 1);
  assert.equal(ensure[0].groupMissing.Error, 'GroupMissing');
  assert.equal(ensure[0].previous, null);
  assert.deepEqual(calls.inputs['Apply isolation security group'].map((i) => i.ensured), [null, groups]);
});

test('groups that keep disappearing: Ensure ends the loop with its own error, notified as a network failure', async () => {
  const { calls, handlers } = setup(
    { 'Apply isolation security group': 'GroupMissing', 'Ensure isolation security group': (n) => (n >= 3 ? 'AWSError' : undefined) },
  );
  const res = await runIsolation(handlers);
  assert.equal(res.failed?.Error, 'IsolationFailed');
  assert.equal(calls.inputs['Apply isolation security group'].length, 2);
  assert.deepEqual(calls.published[0].failures, [failure('Ensure isolation security group', 'AWSError')]);
});

test('retries: throttling and pending associations are retried, then the workflow goes on', async () => {
  const { calls, handlers } = setup({
    'Apply isolation security group': (n) => (n <= 5 ? 'Throttled' : undefined),
    'Attach isolation profile': (n) => (n <= 3 ? 'AssociationPending' : undefined),
    'Ensure isolation security group': (n) => (n <= 2 ? 'GroupNotVisible' : undefined),
    'Snapshot volumes': (n) => (n === 1 ? 'Lambda.TooManyRequestsException' : undefined),
    'Revoke credentials': (n) => (n <= 2 ? 'Throttled' : undefined),
    'Record outcome': (n) => (n === 1 ? 'Transient' : undefined),
  });
  const res = await runIsolation(handlers);
  assert.equal(res.error, undefined);
  assert.equal(calls.inputs['Apply isolation security group'].length, 6);
  assert.equal(calls.inputs['Attach isolation profile'].length, 4);
  assert.equal(calls.inputs['Revoke credentials'].length, 3);
  assert.equal(calls.inputs['Record outcome'].length, 2);
  assert.equal(calls.published.length, 1);
  assert.equal(calls.published[0].outcome, 'SUCCEEDED');
});

test('a superseded isolation (the tag no longer says isolate) is not retried: nothing else runs, one notification (issue 12 case 7)', async () => {
  const { calls, handlers } = setup({ 'Validate and record': 'Superseded' });
  const res = await runIsolation(handlers);
  assert.equal(res.failed?.Error, 'IsolationFailed');
  assert.deepEqual(calls.order, ['Validate and record', 'Notify failure']);
  assert.equal(calls.published.length, 1);
  assert.deepEqual(calls.published[0].failures, [failure('Validate and record', 'Superseded')]);
});

test('a step error that no retry fixes is not retried', async () => {
  const { calls, handlers } = setup({ 'Validate and record': 'InstanceNotFound' });
  await runIsolation(handlers);
  assert.equal(calls.inputs['Validate and record'].length, 1);
});

const none = { instanceId: null, record: null, incident: null, disassociate: null, attach: null, revoke: null, preserve: null, groups: null, apply: null, verify: null, snapshot: null };
const failureCases = [
  {
    name: 'validation fails: nothing else runs, no record',
    fail: { 'Validate and record': 'InstanceNotFound' },
    failures: [failure('Validate and record', 'InstanceNotFound')],
    notRun: ['Ensure isolation security group', 'Record pre-isolation state', 'Disassociate profile', 'Snapshot volumes', 'Record outcome', 'Notify success'],
    reported: none,
    recorded: false,
  },
  {
    name: 'network branch fails: the IAM branch still completes, the volumes are still snapshotted',
    fail: { 'Apply isolation security group': 'AWSError' },
    failures: [failure('Apply isolation security group', 'AWSError')],
    notRun: ['Verify containment', 'Notify success'],
    reported: { ...all, apply: null, verify: null },
  },
  {
    name: 'Apply times out (States.Timeout): the IAM and evidence branches still complete (issue 12 case 8)',
    fail: { 'Apply isolation security group': 'States.Timeout' },
    failures: [failure('Apply isolation security group', 'States.Timeout')],
    notRun: ['Verify containment', 'Notify success'],
    reported: { ...all, apply: null, verify: null },
  },
  {
    name: 'IAM branch fails: the network and evidence branches still complete, the volumes are still snapshotted',
    fail: { 'Disassociate profile': 'AWSError' },
    failures: [failure('Disassociate profile', 'AWSError')],
    notRun: ['Attach isolation profile', 'Revoke credentials', 'Verify containment', 'Notify success'],
    reported: { ...all, disassociate: null, attach: null, revoke: null, verify: null },
  },
  {
    name: 'the revocation fails: evidence is still preserved, the network is contained',
    fail: { 'Revoke credentials': 'AWSError' },
    failures: [failure('Revoke credentials', 'AWSError')],
    notRun: ['Verify containment', 'Notify success'],
    reported: { ...all, revoke: null, verify: null },
  },
  {
    name: 'the instance settings cannot be queued (issue 16): the evidence branch ends with its marker, containment is done',
    fail: { 'Queue instance settings': 'SQS.AmazonSQSException' },
    failures: [failure('Queue instance settings', 'SQS.AmazonSQSException')],
    notRun: ['Preserve evidence', 'Verify containment', 'Notify success'],
    reported: { ...all, preserve: null, verify: null },
  },
  {
    name: 'evidence preservation fails',
    fail: { 'Preserve evidence': 'AWSError' },
    failures: [failure('Preserve evidence', 'AWSError')],
    notRun: ['Verify containment', 'Notify success'],
    reported: { ...all, preserve: null, verify: null },
  },
  {
    name: 'the record cannot be written: no IAM change, the network is contained, evidence is preserved',
    fail: { 'Record pre-isolation state': 'AWSError' },
    failures: [failure('Record pre-isolation state', 'AWSError')],
    notRun: ['Disassociate profile', 'Verify containment', 'Notify success'],
    reported: { ...all, incident: null, disassociate: null, attach: null, revoke: null, verify: null },
  },
  {
    name: 'network and IAM branches fail: both failures are reported, network first',
    fail: { 'Ensure isolation security group': 'ConfigError', 'Attach isolation profile': 'ProfileNotReady' },
    failures: [failure('Ensure isolation security group', 'ConfigError'), failure('Attach isolation profile', 'ProfileNotReady')],
    notRun: ['Apply isolation security group', 'Revoke credentials', 'Verify containment', 'Notify success'],
    reported: { ...all, groups: null, apply: null, attach: null, revoke: null, verify: null },
  },
  {
    name: 'network and evidence branches fail: both failures are reported, in branch order',
    fail: { 'Apply isolation security group': 'AWSError', 'Preserve evidence': 'AWSError' },
    failures: [failure('Apply isolation security group', 'AWSError'), failure('Preserve evidence', 'AWSError')],
    notRun: ['Verify containment', 'Notify success'],
    reported: { ...all, apply: null, preserve: null, verify: null },
  },
  {
    name: 'IAM and evidence branches fail: both failures are reported, in branch order',
    fail: { 'Disassociate profile': 'AWSError', 'Preserve evidence': 'AWSError' },
    failures: [failure('Disassociate profile', 'AWSError'), failure('Preserve evidence', 'AWSError')],
    notRun: ['Verify containment', 'Notify success'],
    reported: { ...all, disassociate: null, attach: null, revoke: null, preserve: null, verify: null },
  },
  {
    name: 'all three branches fail: every failure is reported, in branch order',
    fail: { 'Apply isolation security group': 'AWSError', 'Record pre-isolation state': 'AWSError', 'Preserve evidence': 'AWSError' },
    failures: [failure('Apply isolation security group', 'AWSError'), failure('Record pre-isolation state', 'AWSError'), failure('Preserve evidence', 'AWSError')],
    notRun: ['Disassociate profile', 'Verify containment', 'Notify success'],
    reported: { ...all, apply: null, incident: null, disassociate: null, attach: null, revoke: null, preserve: null, verify: null },
  },
  {
    name: 'the read-back finds the instance not contained (NotContained): the volumes are still snapshotted (issue 12 case 2)',
    fail: { 'Verify containment': 'NotContained' },
    failures: [failure('Verify containment', 'NotContained')],
    notRun: ['Notify success'],
    reported: { ...all, verify: null },
  },
  {
    name: 'snapshot fails after containment',
    fail: { 'Snapshot volumes': 'AWSError' },
    failures: [failure('Snapshot volumes', 'AWSError')],
    notRun: ['Notify success'],
    reported: { ...all, snapshot: null },
  },
  {
    name: 'Snapshot volumes times out (States.Timeout): still recorded and notified (issue 12 case 8)',
    fail: { 'Snapshot volumes': 'States.Timeout' },
    failures: [failure('Snapshot volumes', 'States.Timeout')],
    notRun: ['Notify success'],
    reported: { ...all, snapshot: null },
  },
  {
    name: 'containment fails and then the snapshot fails too: the containment failure is reported',
    fail: { 'Attach isolation profile': 'AWSError', 'Snapshot volumes': 'AWSError' },
    failures: [failure('Attach isolation profile', 'AWSError')],
    notRun: ['Verify containment', 'Notify success'],
    reported: { ...all, attach: null, revoke: null, verify: null, snapshot: null },
  },
  {
    name: 'the read-back fails and then the snapshot fails too: the read-back failure is reported',
    fail: { 'Verify containment': 'NotContained', 'Snapshot volumes': 'AWSError' },
    failures: [failure('Verify containment', 'NotContained')],
    notRun: ['Notify success'],
    reported: { ...all, verify: null, snapshot: null },
  },
  {
    name: 'the success notification fails: the outcome is recorded again, as FAILED',
    fail: { 'Notify success': 'AWSError' },
    failures: [failure('Notify success', 'AWSError')],
    notRun: [],
    reported: { ...all, incident: recorded },
    recordedIncident: recorded,
    recordCalls: 2,
  },
];

for (const tc of failureCases) {
  test(`failure: ${tc.name}; the outcome is recorded, Notify failure reports it and the execution fails there`, async () => {
    const { calls, handlers } = setup(tc.fail);
    const res = await runIsolation(handlers);
    assert.ok(res.error, 'execution should fail');
    assert.equal(res.failed.Error, 'IsolationFailed');
    assert.equal(res.lastFailedState.state.name, 'Notify failure');
    for (const n of tc.notRun) assert.equal(calls.inputs[n], undefined, `${n} should not run`);
    const instanceId = tc.reported.record ? record.instanceId : null;
    if (tc.recorded === false) {
      assert.equal(calls.inputs['Record outcome'], undefined, 'no incident, nothing to record');
    } else {
      const rec = calls.inputs['Record outcome'];
      assert.equal(rec.length, tc.recordCalls ?? 1);
      assert.deepEqual(rec.at(-1), {
        phase: 'outcome', outcome: 'FAILED', ...common, instanceId, ...tc.reported, failures: tc.failures, redriveCount: 0,
      });
    }
    assert.equal(calls.published.length, 1);
    const reported = tc.recorded === false ? tc.reported : { ...tc.reported, incident: recorded };
    assert.deepEqual(calls.published[0], {
      outcome: 'FAILED', ...common, instanceId, ...reported, failures: tc.failures, redriveCount: 0, event,
    });
  });
}

test('the outcome cannot be recorded after a clean isolation: notified as the only failure, not recorded twice', async () => {
  const { calls, handlers } = setup({ 'Record outcome': 'AWSError' });
  const res = await runIsolation(handlers);
  assert.equal(res.failed?.Error, 'IsolationFailed');
  assert.equal(calls.inputs['Record outcome'].length, 1);
  assert.equal(calls.inputs['Notify success'], undefined);
  assert.equal(calls.published.length, 1);
  assert.deepEqual(calls.published[0].failures, [failure('Record outcome', 'AWSError')]);
});

test('the outcome cannot be recorded after a failed containment: the containment failure is notified, once', async () => {
  const { calls, handlers } = setup({ 'Record outcome': 'AWSError', 'Preserve evidence': 'AWSError' });
  const res = await runIsolation(handlers);
  assert.equal(res.failed?.Error, 'IsolationFailed');
  assert.equal(calls.inputs['Record outcome'].length, 1);
  assert.equal(calls.published.length, 1);
  assert.deepEqual(calls.published[0].failures, [failure('Preserve evidence', 'AWSError')]);
});

// A redrive restarts the execution at the state that failed ("Notify failure") with the input it had.
const redriveCases = [
  {
    fail: { 'Validate and record': (n) => (n === 1 ? 'InstanceNotIsolatable' : undefined) },
    resumesAt: 'Validate and record',
    reruns: ['Validate and record', 'Ensure isolation security group', 'Record pre-isolation state', 'Disassociate profile', 'Snapshot volumes', 'Record outcome'],
  },
  {
    fail: { 'Apply isolation security group': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Contain',
    reruns: ['Ensure isolation security group', 'Apply isolation security group', 'Record pre-isolation state', 'Disassociate profile', 'Attach isolation profile', 'Revoke credentials', 'Preserve evidence', 'Snapshot volumes', 'Record outcome'],
  },
  {
    fail: { 'Preserve evidence': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Contain',
    reruns: ['Record pre-isolation state', 'Queue instance settings', 'Preserve evidence', 'Snapshot volumes', 'Record outcome'],
  },
  {
    // SQS.AmazonSQSException is retried 8 times: the first run's nine attempts fail.
    fail: { 'Queue instance settings': (n) => (n <= 9 ? 'SQS.AmazonSQSException' : undefined) },
    resumesAt: 'Contain',
    reruns: ['Queue instance settings', 'Preserve evidence', 'Snapshot volumes', 'Record outcome'],
  },
  {
    fail: { 'Verify containment': (n) => (n === 1 ? 'NotContained' : undefined) },
    resumesAt: 'Verify containment',
    reruns: ['Verify containment', 'Snapshot volumes', 'Record outcome'],
    notRerun: ['Apply isolation security group', 'Record pre-isolation state', 'Preserve evidence'],
  },
  {
    fail: { 'Snapshot volumes': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Snapshot volumes',
    reruns: ['Snapshot volumes', 'Record outcome'],
  },
  {
    fail: { 'Record outcome': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Isolation complete?',
    reruns: ['Record outcome'],
    notRerun: ['Snapshot volumes'],
  },
  {
    fail: { 'Notify success': (n) => (n === 1 ? 'AWSError' : undefined) },
    resumesAt: 'Notify success',
    reruns: [],
    notRerun: ['Record outcome'],
  },
];

for (const tc of redriveCases) {
  test(`redrive resumes at ${tc.resumesAt} and completes the isolation`, async () => {
    const calls = await redriveResumes(tc, { setup, runMachine: runIsolation, tasks: TASKS, event });
    assert.deepEqual(calls.published[1].snapshot, snapshot);
  });
}

test('a redrive that fails again reports the new failure with the new redrive count', async () => {
  const { calls, handlers } = setup({ 'Attach isolation profile': 'AWSError' });
  const first = await runIsolation(handlers);
  const input = stateInput(first.events, 'Notify failure');
  const res = await runIsolation(handlers, { input, event, startAt: 'Notify failure', redriveCount: 1 });
  assert.equal(res.failed.Error, 'IsolationFailed');
  assert.equal(res.lastFailedState.state.name, 'Notify failure');
  assert.equal(calls.published.length, 2);
  assert.deepEqual(calls.published[1].failures, [failure('Attach isolation profile', 'AWSError', 1)]);
  assert.deepEqual(calls.inputs['Record outcome'].map((i) => i.redriveCount), [0, 1]);
});

test('a notify answer without a state to resume at ends in the Fail state', async () => {
  const { handlers } = setup({ 'Snapshot volumes': 'AWSError' });
  const first = await runIsolation(handlers);
  const input = stateInput(first.events, 'Notify failure');
  handlers['Notify failure'] = async () => ({ messageId: 'm-2' });
  const res = await runIsolation(handlers, { input, event, startAt: 'Notify failure', redriveCount: 1 });
  assert.equal(res.failed.Error, 'IsolationFailed');
  assert.notEqual(res.lastFailedState?.state.name, 'Notify failure');
  assert.deepEqual(res.entered.slice(-1), ['Isolation failed']);
});
