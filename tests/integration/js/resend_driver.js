// resend_driver.js - one idempotent kafkajs sendBatch() over two topics whose partitions are led
// by two brokers, for test_cluster_kafkajs.py's test of kafkajs's re-send after a partial success.
//
// Usage: node resend_driver.js <bootstrap> <topic X> <topic Y> <journal>
// Sends "x-warm" to X-0 alone, then "x-1" to X-0 and "y-1" to Y-0 in one sendBatch (acks=-1), and
// journals X's sends and answers as torture_producer.js does (send_answers.js), so torture.py's
// Journal reads them. Prints one JSON line: { y: [Y-0's answers], error: text or null }.
'use strict';

const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');
const { journalAnswers } = require('./send_answers');

const [bootstrap, topicX, topicY, journalPath] = process.argv.slice(2);
const journal = fs.openSync(journalPath, 'a');
const log = (line) => fs.writeSync(journal, line + '\n');
const retry = { retries: 40, initialRetryTime: 100, maxRetryTime: 1000, factor: 0.2, multiplier: 1.5 };

async function main() {
  const kafka = new Kafka({ clientId: 'resend-driver', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING,
    connectionTimeout: 3000, requestTimeout: 5000, retry });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry });
  await producer.connect();
  const out = { y: [], error: null };
  try {
    log('S x-warm 0 js-0');
    const warm = await producer.send({ topic: topicX, acks: -1, messages: [{ partition: 0, value: 'x-warm' }] });
    journalAnswers([{ topic: topicX, partition: 0, value: 'x-warm' }], warm, log, Date.now() / 1000);
    log('S x-1 0 js-0');
    const res = await producer.sendBatch({ acks: -1, timeout: 5000, topicMessages: [
      { topic: topicX, messages: [{ partition: 0, value: 'x-1' }] },
      { topic: topicY, messages: [{ partition: 0, value: 'y-1' }] }] });
    journalAnswers([{ topic: topicX, partition: 0, value: 'x-1' }], res, log, Date.now() / 1000);
    out.y = res.filter((r) => r.topicName === topicY);
  } catch (e) {
    out.error = String((e && (e.type || e.name)) || e);
    log(`F x-1 ${out.error.replace(/\s+/g, '_')}`);
  }
  fs.closeSync(journal);
  process.stdout.write(JSON.stringify(out) + '\n');
  await producer.disconnect().catch(() => {});
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`resend_driver failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
