// Signing checked against AWS's published examples: the S3 API reference's
// "GET Object" header-signing example and the general SigV4 test suite's
// get-vanilla case. Both use AWS's documented example credentials.
import { describe, expect, it } from "vitest";
import { EMPTY_SHA256, amzDate, signRequest, uriEncode } from "./sigv4.js";

describe("SigV4", () => {
  it("matches the S3 reference's GET Object example (Range, empty payload hash)", () => {
    const signed = signRequest(
      {
        method: "GET",
        url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"),
        headers: { Range: "bytes=0-9", "x-amz-content-sha256": EMPTY_SHA256 },
        payloadHash: EMPTY_SHA256,
        date: new Date("2013-05-24T00:00:00Z"),
      },
      { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "s3" },
    );
    expect(signed.canonicalRequest).toBe(
      [
        "GET",
        "/test.txt",
        "",
        "host:examplebucket.s3.amazonaws.com",
        "range:bytes=0-9",
        `x-amz-content-sha256:${EMPTY_SHA256}`,
        "x-amz-date:20130524T000000Z",
        "",
        "host;range;x-amz-content-sha256;x-amz-date",
        EMPTY_SHA256,
      ].join("\n"),
    );
    expect(signed.stringToSign.split("\n")).toEqual([
      "AWS4-HMAC-SHA256",
      "20130524T000000Z",
      "20130524/us-east-1/s3/aws4_request",
      "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
    ]);
    expect(signed.signature).toBe("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    expect(signed.headers["authorization"]).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
  });

  it("matches the test suite's get-vanilla case", () => {
    const signed = signRequest(
      { method: "GET", url: new URL("https://example.amazonaws.com/"), headers: {}, payloadHash: EMPTY_SHA256, date: new Date("2015-08-30T12:36:00Z") },
      { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service" },
    );
    expect(signed.signature).toBe("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  });

  it("encodes as RFC 3986 wants and formats the date", () => {
    expect(uriEncode("a b/c~d*é", true)).toBe("a%20b/c~d%2A%C3%A9");
    expect(uriEncode("a/b")).toBe("a%2Fb");
    expect(amzDate(new Date("2013-05-24T01:02:03.456Z"))).toBe("20130524T010203Z");
  });
});
