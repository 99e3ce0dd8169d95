import { describe, expect, it } from "vitest";
import { ConsumerConfigError, filterSubjectFor, pullWindow } from "./consumer.js";
import { EVENTS } from "./subjects.js";

describe("filterSubjectFor", () => {
  it("is the subject itself for one subject", () => {
    expect(filterSubjectFor([EVENTS.userFollowed.subject])).toBe("chirp.graph.v1.user_followed");
  });

  it("is the domain's wildcard for events of one domain", () => {
    expect(filterSubjectFor([EVENTS.userFollowed.subject, EVENTS.userUnfollowed.subject])).toBe("chirp.graph.v1.*");
  });

  it("widens token by token across domains", () => {
    expect(filterSubjectFor([EVENTS.tweetCreated.subject, EVENTS.userFollowed.subject])).toBe("chirp.*.v1.*");
    expect(filterSubjectFor([EVENTS.tweetCreated.subject, EVENTS.tweetDeleted.subject, EVENTS.mediaUploaded.subject])).toBe("chirp.*.v1.*");
  });

  it("refuses an empty list", () => {
    expect(() => filterSubjectFor([])).toThrow(ConsumerConfigError);
  });
});

// How far consume() pulls ahead; against a nats-server in
// test/integration/consumer-pull.test.ts.
describe("pullWindow", () => {
  it("pulls a few events ahead of the handlers, asking again when one is left", () => {
    expect(pullWindow(8)).toEqual({ max_messages: 16, threshold_messages: 1 });
    expect(pullWindow(1)).toEqual({ max_messages: 5, threshold_messages: 1 });
    expect(pullWindow(64)).toEqual({ max_messages: 80, threshold_messages: 1 });
  });

  it("holds none ahead for long handlers (pullAhead 0): nats.js's own refill, as many as run", () => {
    expect(pullWindow(2, 0)).toEqual({ max_messages: 2 });
  });
});
