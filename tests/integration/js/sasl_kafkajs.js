// sasl_kafkajs.js - kafkajs over SASL_PLAINTEXT for test_sasl.py.
//
// Usage: node sasl_kafkajs.js <bootstrap> <mechanism> <user> <password> <topic> <count>
// mechanism: plain, scram-sha-256 or scram-sha-512 (kafkajs's names).
// Creates the topic, produces <count> records, reads them back with a
// consumer group and prints "RESULT <json>"; an authentication failure
// prints "RESULT {"error": <name>, "message": ...}". Every wait has a deadline.
'use strict';

const { Kafka, logLevel, Partitioners } = require('kafkajs');

const [bootstrap, mechanism, username, password, topic, countArg] = process.argv.slice(2);
const count = parseInt(countArg || '10', 10);

function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const kafka = new Kafka({
    clientId: 'samsa-sasl-test',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    sasl: { mechanism, username, password },
    retry: { retries: 1 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (e) {
    console.log('RESULT ' + JSON.stringify({ error: e.name, message: e.message }));
    return;
  }
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) messages.push({ value: `v-${i}` });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `${topic}-g`, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got = [];
  const done = new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value.toString());
        if (got.length >= count) resolve();
      },
    });
  });
  await withDeadline(done, 60000, `consume ${count} records`);
  await consumer.disconnect();
  console.log('RESULT ' + JSON.stringify({ consumed: got }));
}

withDeadline(main(), 120000, 'the whole run').then(
  () => process.exit(0),
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
