/**
 * Issue 15 defect 8: OpenBao's error text reaches a person as one readable line. OpenBao (through
 * go-multierror) answers `{"errors":["1 error occurred:\n\t* permission denied\n\n"]}`; the
 * message must say "permission denied; check the policy …", never losing an error's words.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { oneLineError } from "../../../src/openbao/errors.ts";
import { errorForStatus, openBaoErrors } from "../../../src/openbao/http.ts";

const address = "https://bao-0.bao.openbao.svc:8200";

describe("OpenBao error text in messages", () => {
  test("a 403 with OpenBao's exact multierror body is one line: the error, then the fix", () => {
    const body = '{"errors":["1 error occurred:\\n\\t* permission denied\\n\\n"]}\n';
    const err = errorForStatus(403, body, address, "sys/storage/raft/snapshot", "SnapshotFailed");
    assert.equal(err.code, "PermissionDenied");
    assert.equal(
      err.message,
      `${address} denied sys/storage/raft/snapshot (403): permission denied; check the policy attached to the backup/restore role`,
    );
  });

  test("several errors keep every one, in order, without the count", () => {
    const body = JSON.stringify({
      errors: ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"],
    });
    assert.equal(openBaoErrors(body), "permission denied; invalid token");
    const err = errorForStatus(500, body, address, "sys/storage/raft/snapshot", "SnapshotFailed");
    assert.equal(
      err.message,
      `${address} answered sys/storage/raft/snapshot with 500: permission denied; invalid token`,
    );
  });

  test("plain error strings are kept as they are; several are joined with '; '", () => {
    assert.equal(openBaoErrors('{"errors":["permission denied"]}'), "permission denied");
    assert.equal(
      openBaoErrors('{"errors":["missing client token","role \\"backup\\" not found"]}'),
      'missing client token; role "backup" not found',
    );
  });

  test("no message has a line break or a tab, whatever OpenBao sends", () => {
    const bodies = [
      '{"errors":["1 error occurred:\\n\\t* permission denied\\n\\n"]}',
      '{"errors":["error performing token check:\\n\\tfailed to look up namespace\\n"]}',
      '{"errors":["1 error occurred:\\n\\t* 1 error occurred:\\n\\t* nested\\n\\n\\n\\n"]}',
      "upstream connect error\r\nor disconnect/reset before headers\n",
    ];
    for (const body of bodies) {
      for (const status of [403, 400, 500, 503]) {
        const message = errorForStatus(status, body, address, "sys/leader", "BadResponse").message;
        assert.doesNotMatch(message, /[\r\n\t]/, JSON.stringify(message));
        assert.doesNotMatch(message, /error(s)? occurred/, JSON.stringify(message));
      }
    }
    assert.equal(
      openBaoErrors('{"errors":["error performing token check:\\n\\tfailed to look up namespace\\n"]}'),
      "error performing token check: failed to look up namespace",
    );
    assert.equal(
      openBaoErrors('{"errors":["1 error occurred:\\n\\t* 1 error occurred:\\n\\t* nested\\n\\n\\n\\n"]}'),
      "nested",
    );
  });

  test("oneLineError: the multierror list becomes '; '-separated, other whitespace one space", () => {
    assert.equal(oneLineError("1 error occurred:\n\t* permission denied\n\n"), "permission denied");
    assert.equal(oneLineError("3 errors occurred:\n\t* a\n\t* b\n\t* c\n\n"), "a; b; c");
    assert.equal(oneLineError("  spaced\n\n out  "), "spaced out");
    assert.equal(oneLineError("rate * limit"), "rate * limit");
    assert.equal(oneLineError(""), "");
  });
});
