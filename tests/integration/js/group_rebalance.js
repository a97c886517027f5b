// group_rebalance.js - kafkajs consumers rebalancing for test_groups_more.py.
//
// Usage: node group_rebalance.js <bootstrap> <topic> <group>
// The topic (4 partitions) must exist. A kafkajs producer keeps writing
// values v0, v1, ... round robin over the partitions while two consumers
// split the partitions, a third joins and the first leaves (disconnect sends
// LeaveGroup). Every record is committed (offset + 1) before it is counted;
// a record whose commit fails is not counted and is read again from the
// committed offset. Prints "RESULT <json>" with the assignments at each
// settled phase, every counted record and the number produced. Every wait
// has a deadline.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, groupId] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'samsa-js-rebalance', brokers: [bootstrap], logLevel: logLevel.NOTHING,
  retry: { retries: 8, initialRetryTime: 100 } });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const consumed = [];
const assigned = {};
const members = {};

async function startMember(name) {
  const c = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 300, rebalanceTimeout: 10000,
    maxWaitTimeInMs: 100, retry: { retries: 8, initialRetryTime: 100 } });
  c.on(c.events.GROUP_JOIN, (e) => { assigned[name] = (e.payload.memberAssignment[topic] || []).slice().sort(); });
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  await c.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      // a failed commit throws: kafkajs rejoins and the record comes back
      await c.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
      consumed.push([message.value.toString(), name, partition, Number(message.offset)]);
    },
  });
  members[name] = c;
}

async function leave(name) {
  await members[name].disconnect();
  delete assigned[name];
}

async function settle(names, sizes, ms = 45000) {
  const want = sizes.slice().sort().join(',');
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const snap = {};
    for (const n of names) snap[n] = assigned[n] || [];
    const parts = names.flatMap((n) => snap[n]).sort();
    if (parts.join(',') === '0,1,2,3' && names.map((n) => snap[n].length).sort().join(',') === want) return snap;
    await sleep(50);
  }
  throw new Error(`no convergence: ${JSON.stringify(assigned)}`);
}

async function main() {
  const producer = kafka.producer();
  await producer.connect();
  let produced = 0;
  let producing = true;
  const producerDone = (async () => {
    while (producing && produced < 3000) {
      const batch = [];
      for (let k = 0; k < 4; k++, produced++) batch.push({ value: `v${produced}`, partition: produced % 4 });
      await producer.send({ topic, acks: -1, messages: batch });
      await sleep(15);
    }
  })();

  await startMember('c1');
  await startMember('c2');
  const phases = [await settle(['c1', 'c2'], [2, 2])];
  await sleep(500);
  await startMember('c3');
  phases.push(await settle(['c1', 'c2', 'c3'], [2, 1, 1]));
  await sleep(500);
  await leave('c1');
  phases.push(await settle(['c2', 'c3'], [2, 2]));
  await sleep(500);
  producing = false;
  await producerDone;
  await producer.disconnect();
  const end = Date.now() + 30000;
  while (consumed.length < produced && Date.now() < end) await sleep(50);
  await sleep(300);
  await leave('c2');
  await leave('c3');
  console.log('RESULT ' + JSON.stringify({ phases, consumed, produced }));
}

const deadline = setTimeout(() => { console.error('timed out'); process.exit(1); }, 110000);
main().then(() => { clearTimeout(deadline); process.exit(0); })
  .catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1); });
