import type { Tweet } from "../../../gen/chirp/tweet/v1/tweet_pb.js";
import { describeError } from "./api.js";
import { h } from "./dom.js";
import { tweetCard, type CardOptions } from "./tweet-card.js";

export interface Page {
  readonly tweets: readonly Tweet[];
  readonly nextPageToken: string;
}

export interface FeedOptions {
  /** How each tweet is shown. */
  readonly card?: CardOptions;
  /** A page already read (with what came around it): shown at once, and the next one loaded from its token. */
  readonly first?: Page;
  /** A button under the list that loads the next page, for whoever does not scroll (keyboards). */
  readonly moreLabel?: string;
}

export interface Feed {
  readonly el: HTMLElement;
  /** Puts a tweet at the top (a live one), unless it is shown already. */
  prepend(tweet: Tweet): void;
  /** Reads the newest page again and puts what is new at the top (after a reconnect). */
  refreshTop(): Promise<void>;
  /** Stops loading (the view is gone). */
  close(): void;
}

/**
 * A list of tweets that loads the next page when its end scrolls into view
 * (infinite scroll), in the order the pages come, never showing a tweet twice.
 */
export function createFeed(load: (pageToken: string) => Promise<Page>, empty: string, options: FeedOptions = {}): Feed {
  const list = h("div", { class: "feed-list" });
  const status = h("div", { class: "feed-status" });
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const el = h("section", { class: "feed", "aria-busy": "false" }, list, status, sentinel);
  const shown = new Set<string>();
  let next: string | undefined = "";
  let loading = false;
  let closed = false;

  const add = (tweet: Tweet, where: "top" | "end"): void => {
    const id = String(tweet.id);
    if (shown.has(id)) return;
    shown.add(id);
    const card = tweetCard(tweet, options.card);
    if (where === "top") {
      card.classList.add("fresh");
      list.prepend(card);
    } else list.append(card);
  };

  const show = (page: Page): void => {
    for (const t of page.tweets) add(t, "end");
    next = page.nextPageToken === "" ? undefined : page.nextPageToken;
    if (next === undefined) status.textContent = shown.size === 0 ? empty : "";
    else if (options.moreLabel !== undefined) status.replaceChildren(h("button", { type: "button", class: "secondary more", onclick: () => void more() }, options.moreLabel));
    else status.textContent = "";
  };

  const more = async (): Promise<void> => {
    if (loading || closed || next === undefined) return;
    loading = true;
    el.setAttribute("aria-busy", "true");
    status.textContent = "Loading…";
    try {
      const page = await load(next);
      if (closed) return;
      show(page);
    } catch (err) {
      status.replaceChildren(describeError(err), " ", h("button", { type: "button", class: "link-button", onclick: () => void more() }, "Retry"));
      next = next ?? "";
      loading = false;
      el.setAttribute("aria-busy", "false");
      return;
    }
    loading = false;
    el.setAttribute("aria-busy", "false");
    // A short first page may leave the end in view: keep going.
    if (next !== undefined && sentinel.getBoundingClientRect().top < innerHeight + 600) void more();
  };

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) void more();
  }, { rootMargin: "600px 0px" });
  observer.observe(sentinel);
  // With a first page the list is not on the page yet: the observer asks for more once it is.
  if (options.first !== undefined) show(options.first);
  else void more();

  return {
    el,
    prepend(tweet) {
      add(tweet, "top");
      if (status.textContent === empty) status.textContent = "";
    },
    async refreshTop() {
      try {
        const page = await load("");
        for (const t of [...page.tweets].reverse()) add(t, "top");
      } catch {
        // The next scroll or event will try again.
      }
    },
    close() {
      closed = true;
      observer.disconnect();
    },
  };
}
