/**
 * Leader discovery's pure parts: which member is the leader, and the hint that turns "no
 * leader" into "sealed: unseal it" when that is what every member said.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chooseLeader, sealedHint } from "../../../src/openbao/leader.ts";

describe("chooseLeader", () => {
  const members = ["https://a:8200", "https://b:8200"];
  test("a member that says it is the leader wins", () => {
    assert.equal(chooseLeader(members, new Map([["https://b:8200", { is_self: true }]])), "https://b:8200");
  });
  test("a leader_address outside the member list is ignored", () => {
    const answers = new Map([["https://a:8200", { leader_address: "https://evil:8200" }]]);
    assert.equal(chooseLeader(members, answers), undefined);
  });
});

describe("sealedHint", () => {
  const sealed = (m: string) => `${m} answered sys/leader with 503: Vault is sealed`;
  test("every member sealed: says so and names the fix", () => {
    assert.match(sealedHint([sealed("https://a"), sealed("https://b")], 2), /every member is sealed: unseal OpenBao/);
  });
  test("some members sealed: counts them", () => {
    assert.equal(sealedHint([sealed("https://a"), "https://b: standby"], 2), "; 1 of 2 member(s) sealed");
  });
  test("nothing sealed: no hint", () => {
    assert.equal(sealedHint(["https://a: standby", "cannot reach OpenBao at https://b (ECONNREFUSED)"], 2), "");
  });
});
