import assert from "node:assert/strict";
import { test } from "node:test";
import { redact } from "../../../src/util/redact.ts";

test("listed secrets, JWTs and OpenBao tokens never survive redaction", () => {
  const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
  const text = `key=AKIAEXAMPLESECRET jwt=${jwt} token=hvs.CAESIJ3x8Vd2h2c3Rva2VuLXZhbHVlLWhlcmU`;
  const out = redact(text, ["AKIAEXAMPLESECRET"]);
  assert.doesNotMatch(out, /AKIAEXAMPLESECRET|eyJhbGci|hvs\.CAES/);
  assert.equal(
    redact("nothing secret", ["abc"]),
    "nothing secret",
    "secrets shorter than 4 characters are not scrubbed",
  );
});
