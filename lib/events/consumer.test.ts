import { describe, expect, it } from "vitest";
import { ConsumerConfigError, filterSubjectFor } from "./consumer.js";
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
