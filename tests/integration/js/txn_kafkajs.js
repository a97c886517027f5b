// txn_kafkajs.js - kafkajs transactions with sendOffsets, for test_transactions_eos.py.
//
// Usage: node txn_kafkajs.js <bootstrap> <input topic> <output topic> <count>
// The input topic holds <count> records "in-<n>" (the test wrote them). A consumer (group
// "js-eos", autoCommit off, read_committed) and a transactional producer copy them to the output
// topic as "out-<n>": per batch, a transaction sends the copies and the consumed offsets
// (transaction.sendOffsets) and commits; the first transaction is aborted instead and its batch
// copied again by a later one. Then a read_committed consumer reads the output back. Prints one
// line "RESULT <json>" (values read, transactions committed/aborted, group offsets) and exits 0;
// any failure exits 1. Every wait has a deadline.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, input, output, countArg] = process.argv.slice(2);
const count = parseInt(countArg, 10);

function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const kafka = new Kafka({ clientId: 'samsa-js-eos', brokers: [bootstrap], logLevel: logLevel.ERROR,
    retry: { retries: 8 } });
  const producer = kafka.producer({ transactionalId: 'js-eos-tid', idempotent: true, maxInFlightRequests: 1 });
  await withDeadline(producer.connect(), 30000, 'producer connect');
  const consumer = kafka.consumer({ groupId: 'js-eos', readUncommitted: false });
  await withDeadline(consumer.connect(), 30000, 'consumer connect');
  await consumer.subscribe({ topic: input, fromBeginning: true });

  let committed = 0;
  let aborted = 0;
  let copied = 0;
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      if (batch.messages.length === 0) return;
      const txn = await producer.transaction();
      const abortThis = aborted === 0;
      try {
        await txn.send({ topic: output, messages: batch.messages.map((m) => ({
          partition: batch.partition, key: m.key, value: 'out-' + m.value.toString().slice(3) })) });
        const next = (BigInt(batch.lastOffset()) + 1n).toString();
        await txn.sendOffsets({ consumerGroupId: 'js-eos',
          topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] });
        if (abortThis) {
          await txn.abort();
          aborted += 1;
          // read the batch again from the committed offset
          consumer.seek({ topic: batch.topic, partition: batch.partition, offset: batch.firstOffset() });
          return;
        }
        await txn.commit();
      } catch (e) {
        await txn.abort().catch(() => {});
        throw e;
      }
      committed += 1;
      copied += batch.messages.length;
      for (const m of batch.messages) resolveOffset(m.offset);
      await heartbeat();
      if (copied >= count) done();
    },
  });
  await withDeadline(finished, 120000, 'copy everything');
  await consumer.disconnect();
  await producer.disconnect();

  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchOffsets({ groupId: 'js-eos', topics: [input] });
  await admin.disconnect();

  const reader = kafka.consumer({ groupId: 'js-eos-reader', readUncommitted: false });
  await reader.connect();
  await reader.subscribe({ topic: output, fromBeginning: true });
  const values = [];
  let gotAll;
  const all = new Promise((resolve) => { gotAll = resolve; });
  await reader.run({ eachMessage: async ({ message }) => {
    values.push(message.value.toString());
    if (values.length >= count) gotAll();
  } });
  await withDeadline(all, 60000, 'read the output back');
  // anything beyond count (a duplicate) would arrive right after: give it a moment
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await reader.disconnect();
  console.log('RESULT ' + JSON.stringify({ values, committed, aborted, offsets }));
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`txn_kafkajs failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
