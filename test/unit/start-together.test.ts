/**
 * The test fixtures' parallel start (test/servers/process.ts `startTogether`): when one server
 * fails to start, the ones that did are stopped before the failure is thrown, so a failed
 * `before` leaves nothing running to hold the test process until its timeout.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { startTogether } from "../servers/process.ts";

const server = (log: string[], name: string) => ({
  name,
  async stop() {
    log.push(`stopped ${name}`);
  },
});

test("all started: the values in order, nothing stopped", async () => {
  const log: string[] = [];
  const [a, b, none] = await startTogether([
    Promise.resolve(server(log, "a")),
    Promise.resolve(server(log, "b")),
    Promise.resolve(undefined),
  ]);
  assert.equal(a.name, "a");
  assert.equal(b.name, "b");
  assert.equal(none, undefined);
  assert.deepEqual(log, []);
});

test("one failed: the others (also inside an array) are stopped, then its error is thrown", async () => {
  const log: string[] = [];
  const failure = new Error("port taken");
  await assert.rejects(
    startTogether([
      Promise.resolve(server(log, "kube")),
      Promise.reject(failure),
      Promise.resolve([server(log, "s3"), server(log, "gcs")]),
    ]),
    (err) => err === failure,
  );
  assert.deepEqual(log.sort(), ["stopped gcs", "stopped kube", "stopped s3"]);
});
