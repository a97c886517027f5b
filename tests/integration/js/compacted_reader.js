// Reads partition 0 of a topic from the beginning to its end offset with a
// kafkajs consumer (no group commits) and prints RESULT [[offset, key, value]...].
// Used by test_compaction.py: a compacted topic has gaps in its offsets.
const { Kafka, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, topic, endStr] = process.argv.slice(2);
  const end = Number(endStr);
  const kafka = new Kafka({ clientId: "compacted-reader", brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: "compacted-reader-" + Date.now() });
  const out = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const timer = setTimeout(() => done(), 60000);
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      const off = Number(message.offset);
      out.push([off, message.key ? message.key.toString() : null, message.value ? message.value.toString() : null]);
      if (off + 1 >= end) done();
    },
  });
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  console.log("RESULT " + JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
