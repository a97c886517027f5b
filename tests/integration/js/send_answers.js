// send_answers.js - the journal lines for what one kafkajs send() answered (torture_producer.js
// and resend_driver.js; their journals are read by tests/integration/torture.py's Journal).
'use strict';

// sent: [{ topic, partition, value }] in the send; res: what send() or sendBatch() resolved with;
// log(line) appends one journal line; t: the answer's time (seconds since the epoch).
// Writes, per message:
//   A <value> <partition> <offset> <t>   acknowledged there (its lowest acknowledged offset)
//   C <value> <partition> <offset>       kafkajs wrote it once more, acknowledged there (below),
//                                        written before the A line so no reader sees one alone
//   F <value> no-answer-for-partition    resolved without an answer for it: outcome unknown
// Returns true when the producer must be replaced (see torture_producer.js).
function journalAnswers(sent, res, log, t) {
  let replace = false;
  for (const m of sent) {
    const answers = res.filter((x) => x.topicName === m.topic && x.partition === m.partition);
    const ok = answers.filter((x) => x.errorCode === 0).map((x) => Number(x.baseOffset)).sort((a, b) => a - b);
    if (ok.length === 0) {
      // kafkajs 2.x can resolve a send without some partitions' answers when their leader
      // moved during its retries. It does not advance those partitions' sequence numbers, so
      // its next batch there would reuse the sequence of a batch the old leader may have
      // written (and replicated): the broker rightly answers it as that batch's duplicate,
      // acknowledging a value that is not in the log. Seen in a CI run (seed 1592165578).
      log(`F ${m.value} no-answer-for-partition`);
      replace = true;
      continue;
    }
    if (ok.length !== answers.length) replace = true;
    // kafkajs 2.x (producer/sendMessages.js) keeps the answers of brokers that succeeded and
    // retries the rest, but builds the retry from fresh metadata: when a failed broker's
    // partitions move to a broker that had none of this send, that broker is sent every
    // partition it now leads, the already written ones included, as new batches with the
    // next sequence numbers. The broker must append those (Kafka does), and the send
    // resolves with both answers. Seen in a CI run (seed 1285469847).
    for (const off of ok.slice(1)) log(`C ${m.value} ${m.partition} ${off}`);
    log(`A ${m.value} ${m.partition} ${ok[0]} ${t.toFixed(3)}`);
  }
  return replace;
}

module.exports = { journalAnswers };
