// kafkajs_driver.js - drives kafkajs against a broker for test_kafkajs.py.
//
// Usage: node kafkajs_driver.js <bootstrap> <topic> <count>
// Creates the topic (3 partitions) with the admin client, produces <count>
// keyed records with headers, consumes them back in a consumer group,
// reads offsets with the admin client, deletes the topic, and prints one
// line "RESULT <json>" with everything the test checks. Any failure prints
// the error on stderr and exits 1. Every wait has a deadline.
'use strict';

const { Kafka, logLevel, Partitioners } = require('kafkajs');

const [bootstrap, topic, countArg] = process.argv.slice(2);
const count = parseInt(countArg || '30', 10);
const groupId = `${topic}-group`;

function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const kafka = new Kafka({
    clientId: 'samsa-kafkajs-test',
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 5 },
  });
  const result = {};

  const admin = kafka.admin();
  await admin.connect();
  result.created = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  // kafkajs answers false (no exception) when the topic already exists
  result.createdAgain = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  result.partitions = md.topics[0].partitions.map((p) => p.partitionId).sort();
  result.listed = (await admin.listTopics()).includes(topic);

  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push({ key: `key-${i % 7}`, value: `value-${i}`, headers: { seq: `${i}`, origin: 'kafkajs' } });
  }
  const sent = await producer.send({ topic, acks: -1, messages });
  result.sent = sent.map((r) => ({ partition: r.partition, errorCode: r.errorCode, baseOffset: r.baseOffset }));
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got = [];
  const done = new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers = {};
        for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v.toString();
        got.push({
          partition,
          offset: Number(message.offset),
          key: message.key.toString(),
          value: message.value.toString(),
          headers,
        });
        if (got.length >= count) resolve();
      },
    });
  });
  await withDeadline(done, 60000, `consume ${count} records`);
  await consumer.disconnect(); // commits the consumed offsets
  result.consumed = got;

  result.topicOffsets = (await admin.fetchTopicOffsets(topic))
    .map((p) => ({ partition: p.partition, low: Number(p.low), high: Number(p.high), offset: Number(p.offset) }))
    .sort((a, b) => a.partition - b.partition);
  const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
  result.committed = committed[0].partitions
    .map((p) => ({ partition: p.partition, offset: Number(p.offset) }))
    .sort((a, b) => a.partition - b.partition);
  result.byTimestamp = (await admin.fetchTopicOffsetsByTimestamp(topic, 0))
    .map((p) => ({ partition: p.partition, offset: Number(p.offset) }))
    .sort((a, b) => a.partition - b.partition);

  await admin.deleteTopics({ topics: [topic] });
  result.listedAfterDelete = (await admin.listTopics()).includes(topic);
  await admin.disconnect();

  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

withDeadline(main(), 120000, 'kafkajs driver')
  .then(() => process.exit(0))
  .catch((err) => {
    process.stderr.write(`kafkajs driver failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
