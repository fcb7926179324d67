/** The bare-SDK Azure baseline stages as many blocks at once as the executor (bench/measure.ts). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { azureBufferCount } from "../../../bench/measure.ts";

test("Azure buffer count: the fewest buffers that stage exactly `concurrency` blocks (uploadStream runs ceil(3m/4))", () => {
  const inFlight = (m: number): number => Math.ceil((m * 3) / 4);
  for (let c = 1; c <= 16; c++) {
    const m = azureBufferCount(c);
    assert.equal(inFlight(m), c, `concurrency ${c}`);
    assert.ok(m === 1 || inFlight(m - 1) < c, `concurrency ${c}: ${m} buffers is more than needed`);
  }
  assert.equal(azureBufferCount(3), 3);
});
