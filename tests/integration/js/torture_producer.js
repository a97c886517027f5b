// torture_producer.js - an idempotent kafkajs producer for tests/integration/torture.py.
//
// Usage: node torture_producer.js <bootstrap> <topic> <partitions> <tag> <journal> <stopfile> <pause ms>
// Sends one record to every partition per send() (acks=-1, idempotent, one request in flight)
// until <stopfile> exists, values "<tag>-<generation>-<i>". Every step is appended to <journal>
// before the next one starts (synchronous writes, so the journal is the truth of what happened):
//   S <value> <partition> <producer>     before send() is called
//   A <value> <partition> <offset> <t>   the broker acknowledged it there (t: seconds since epoch)
//   C <value> <partition> <offset>       kafkajs wrote it once more, acknowledged there (send_answers.js)
//   F <value> <error>                    send() threw: outcome unknown
// After a failed send, or one that left a partition unanswered, the producer is replaced by a fresh
// one (a new producer id): the old one's sequence numbers would otherwise be reused for new values,
// and the broker would answer them as duplicates of whatever the failed send did write. Exits 0 after the stop file, 1 on a bug here.
'use strict';

const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');
const { journalAnswers } = require('./send_answers');

const [bootstrap, topic, partsArg, tag, journalPath, stopFile, pauseArg] = process.argv.slice(2);
const partitions = parseInt(partsArg, 10);
const pauseMs = parseInt(pauseArg || '20', 10);
const journal = fs.openSync(journalPath, 'a');

function log(line) {
  fs.writeSync(journal, line + '\n');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const kafka = new Kafka({
  clientId: `torture-${tag}`,
  brokers: bootstrap.split(','),
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3000,
  requestTimeout: 15000,
  retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000, factor: 0.2, multiplier: 1.5 },
});

async function newProducer() {
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000, factor: 0.2, multiplier: 1.5 } });
  await withDeadline(p.connect(), 30000, 'producer connect');
  return p;
}

async function main() {
  let generation = 0;
  let producer = null;
  let i = 0;
  let connectFailures = 0;
  while (!fs.existsSync(stopFile)) {
    if (producer === null) {
      try {
        producer = await newProducer();
      } catch (e) {
        connectFailures += 1;
        if (connectFailures > 200) throw e;
        await sleep(500);
        continue;
      }
    }
    const name = `${tag}-${generation}`;
    const messages = [];
    for (let p = 0; p < partitions; p++, i++) {
      const value = `${name}-${i}`;
      messages.push({ partition: p, value });
      log(`S ${value} ${p} ${name}`);
    }
    let replace = false;
    try {
      // The deadline is longer than kafkajs' own retries can take: it only guards against a hang.
      const res = await withDeadline(producer.send({ topic, acks: -1, timeout: 15000, messages }), 120000, 'send');
      replace = journalAnswers(messages.map((m) => ({ topic, ...m })), res, log, Date.now() / 1000);
    } catch (e) {
      const why = String((e && (e.type || e.name)) || e).replace(/\s+/g, '_');
      for (const m of messages) log(`F ${m.value} ${why}`);
      replace = true;
    }
    if (replace) {
      generation += 1;
      const old = producer;
      producer = null;
      try {
        await withDeadline(old.disconnect(), 10000, 'disconnect');
      } catch (_e) {
        // the fresh producer does not depend on the old one's goodbye
      }
    }
    if (pauseMs > 0) await sleep(pauseMs);
  }
  if (producer) await withDeadline(producer.disconnect(), 10000, 'disconnect').catch(() => {});
  log(`E generations ${generation + 1}`);
  fs.closeSync(journal);
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`torture_producer failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
