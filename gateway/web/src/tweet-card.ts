import type { Tweet } from "../../../gen/chirp/tweet/v1/tweet_pb.js";
import type { User } from "../../../gen/chirp/user/v1/user_pb.js";
import { MediaKind } from "../../../gen/chirp/media/v1/media_pb.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { currentSession, describeError, tweets } from "./api.js";
import { composer } from "./composer.js";
import { append, h } from "./dom.js";
import { quotedCard } from "./quoted-card.js";
import { ago, avatar, count, profileHref, searchHref, threadHref, toast } from "./ui.js";

// #tags, @handles and links inside tweet text. Everything else is plain text.
const TOKENS = /(#[\p{L}\p{N}_]+|@[A-Za-z0-9_]{1,15}|https?:\/\/[^\s<>"]+)/gu;

/** The tweet's text as text nodes, with tags, mentions and links as anchors (their text set as text). */
export function tweetText(text: string): HTMLElement {
  const p = h("p", { class: "text" });
  let at = 0;
  for (const m of text.matchAll(TOKENS)) {
    const token = m[0];
    const start = m.index;
    append(p, text.slice(at, start));
    at = start + token.length;
    if (token.startsWith("#")) append(p, h("a", { href: searchHref(token), class: "tag" }, token));
    else if (token.startsWith("@")) append(p, h("a", { href: profileHref(token.slice(1)), class: "mention" }, token));
    else {
      const a = h("a", { class: "link", target: "_blank", rel: "noopener noreferrer nofollow" }, token);
      a.href = token; // only http(s) reaches here (TOKENS)
      append(p, a);
    }
  }
  append(p, text.slice(at));
  return p;
}

interface ToggleSpec {
  /** The accessible name (the button's text is a glyph and a count). */
  readonly name: string;
  readonly className: string;
  readonly glyph: (on: boolean) => string;
  readonly state: () => { readonly on: boolean; readonly count: number };
  /** Turns it on or off in the backend; resolves to the count it answers. */
  readonly send: (on: boolean) => Promise<number>;
  /** Keeps what the backend answered on the tweet. */
  readonly keep: (on: boolean, count: number) => void;
}

/** An action the viewer turns on and off (like, repost): pressed while on, showing the count the backend answers. */
function toggleButton(spec: ToggleSpec): HTMLButtonElement {
  const label = (): string => `${spec.glyph(spec.state().on)} ${count(spec.state().count)}`;
  const button = h("button", { type: "button", class: spec.className, "aria-pressed": String(spec.state().on), "aria-label": spec.name }, label());
  button.addEventListener("click", async () => {
    if (currentSession() === undefined) {
      location.hash = "#/login";
      return;
    }
    button.disabled = true;
    const on = !spec.state().on;
    try {
      spec.keep(on, await spec.send(on));
      button.textContent = label();
      button.setAttribute("aria-pressed", String(on));
    } catch (err) {
      toast(describeError(err), "error");
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

function likeButton(tweet: Tweet): HTMLButtonElement {
  return toggleButton({
    name: "Like",
    className: "like",
    glyph: (on) => (on ? "♥" : "♡"),
    state: () => ({ on: tweet.likedByViewer, count: tweet.likeCount }),
    send: async (on) => (on ? await tweets.likeTweet({ tweetId: tweet.id }) : await tweets.unlikeTweet({ tweetId: tweet.id })).likeCount,
    keep: (on, n) => {
      tweet.likedByViewer = on;
      tweet.likeCount = n;
    },
  });
}

function repostButton(tweet: Tweet): HTMLButtonElement {
  return toggleButton({
    name: "Repost",
    className: "repost",
    glyph: () => "↻",
    state: () => ({ on: tweet.repostedByViewer, count: tweet.repostCount }),
    send: async (on) => (on ? await tweets.repost({ tweetId: tweet.id }) : await tweets.unrepost({ tweetId: tweet.id })).repostCount,
    keep: (on, n) => {
      tweet.repostedByViewer = on;
      tweet.repostCount = n;
    },
  });
}

/** "↻ Bob reposted" over a timeline entry that is there because Bob reposted it; a link to his profile. */
function repostedBy(user: User): HTMLElement {
  return h(
    "p",
    { class: "reposted-by" },
    h("span", { class: "reposted-icon", "aria-hidden": "true" }, "↻"),
    h("a", { href: profileHref(user.handle) }, `${user.displayName || user.handle} reposted`),
  );
}

/** Who wrote a replied-to tweet, for "Replying to @x": "" when it was deleted, undefined when unknown. */
const parentAuthors = new Map<string, Promise<string | undefined>>();

function parentAuthor(id: bigint): Promise<string | undefined> {
  const key = String(id);
  let found = parentAuthors.get(key);
  if (found === undefined) {
    // Timelines hold no parent authors: one GetTweet per parent, once per page load.
    if (parentAuthors.size >= 500) parentAuthors.clear();
    found = tweets.getTweet({ tweetId: id }).then(
      (res) => res.tweet?.author?.handle,
      (err: unknown) => {
        if (ConnectError.from(err).code === Code.NotFound) return "";
        parentAuthors.delete(key); // a refusal (rate limit, outage) is not remembered
        return undefined;
      },
    );
    parentAuthors.set(key, found);
  }
  return found;
}

/** "Replying to @alice", a link to the thread of the tweet it answers. */
function replyingTo(parentId: bigint): HTMLElement {
  const link = h("a", { href: threadHref(parentId) }, "Replying to a tweet");
  void parentAuthor(parentId).then((handle) => {
    if (handle === "") link.replaceWith("Replying to a deleted tweet");
    else if (handle !== undefined) link.textContent = `Replying to @${handle}`;
  });
  return h("p", { class: "replying-to" }, link);
}

export interface CardOptions {
  /** The tweet a thread is about: larger, its full date, its reply box open below. */
  readonly focus?: boolean;
  /** Inside a thread, where the tweet it answers is in view: no "Replying to". */
  readonly inThread?: boolean;
  /** A reply the person posted from this card. */
  readonly onReplied?: (reply: Tweet) => void;
  /** A quote of this tweet the person posted from this card. */
  readonly onQuoted?: (quote: Tweet) => void;
}

/**
 * The box under a card that can be closed (a reply or a quote box; the
 * thread's own reply box stays): opening one closes the other.
 */
interface OpenBox {
  close?: () => void;
}

/** The reply action and its count; it opens a reply box under the tweet. */
function replyAction(tweet: Tweet, body: HTMLElement, slot: OpenBox, options: CardOptions): HTMLButtonElement {
  const label = (): string => `↩ ${count(tweet.replyCount)}`;
  const button = h("button", { type: "button", class: "reply", "aria-label": "Reply", "aria-expanded": "false" }, label());
  let box: HTMLFormElement | undefined;
  const close = (): void => {
    box?.remove();
    box = undefined;
    button.setAttribute("aria-expanded", "false");
    if (slot.close === close) slot.close = undefined;
  };
  const open = (): HTMLFormElement => {
    if (box === undefined) {
      if (!options.focus) {
        slot.close?.();
        slot.close = close;
      }
      box = composer({
        replyTo: tweet,
        onCancel: options.focus ? undefined : close,
        onPosted: (reply) => {
          tweet.replyCount += 1;
          button.textContent = label();
          if (!options.focus) {
            close();
            toast("Your reply was posted.");
          }
          options.onReplied?.(reply);
        },
      });
      body.append(box);
      button.setAttribute("aria-expanded", "true");
    }
    return box;
  };
  button.addEventListener("click", () => {
    if (currentSession() === undefined) {
      location.hash = "#/login";
      return;
    }
    if (box !== undefined && !options.focus) return close();
    open().querySelector("textarea")?.focus();
  });
  // The thread's own tweet has its reply box open, unfocused (no keyboard popping up on a phone).
  if (options.focus && currentSession() !== undefined) open();
  return button;
}

/** The quote action and its count; it opens a box under the tweet's actions that shows the tweet and posts a quote of it. */
function quoteAction(tweet: Tweet, footer: HTMLElement, slot: OpenBox, options: CardOptions): HTMLButtonElement {
  const label = (): string => `❝ ${count(tweet.quoteCount)}`;
  const button = h("button", { type: "button", class: "quote", "aria-label": "Quote", "aria-expanded": "false" }, label());
  let box: HTMLFormElement | undefined;
  const close = (): void => {
    box?.remove();
    box = undefined;
    button.setAttribute("aria-expanded", "false");
    if (slot.close === close) slot.close = undefined;
  };
  button.addEventListener("click", () => {
    if (currentSession() === undefined) {
      location.hash = "#/login";
      return;
    }
    if (box !== undefined) return close();
    slot.close?.();
    box = composer({
      quote: tweet,
      onCancel: close,
      onPosted: (quote) => {
        tweet.quoteCount += 1;
        button.textContent = label();
        close();
        toast("Your quote was posted.");
        options.onQuoted?.(quote);
      },
    });
    slot.close = close;
    // Right under the actions: above the thread's own reply box, which stays open.
    footer.after(box);
    button.setAttribute("aria-expanded", "true");
    box.querySelector("textarea")?.focus();
  });
  return button;
}

/** A deleted tweet in a thread: only its id is left. */
export function tombstoneCard(id: bigint): HTMLElement {
  return h("article", { class: "tweet tombstone", dataset: { id: String(id) } }, h("p", {}, "This tweet was deleted"));
}

export function tweetCard(tweet: Tweet, options: CardOptions = {}): HTMLElement {
  const author = tweet.author;
  const handle = author?.handle ?? "";
  const thread = threadHref(tweet.id);
  const time = h("time", {}, options.focus ? "" : ago(tweet.createTime));
  if (tweet.createTime) {
    const d = timestampDate(tweet.createTime);
    time.dateTime = d.toISOString();
    time.title = d.toLocaleString();
    if (options.focus) time.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
  const text = tweetText(tweet.text);
  if (!options.focus) {
    // The text opens the thread, as on other sites; the time is the link for keyboards.
    text.classList.add("opens-thread");
    text.addEventListener("click", (e) => {
      if (e.target instanceof Element && e.target.closest("a") !== null) return;
      if ((getSelection()?.toString() ?? "") !== "") return; // selecting text, not opening
      location.hash = thread;
    });
  }
  const media = tweet.media.filter((m) => m.url !== "");
  const body = h("div", { class: "tweet-body" });
  const footer = h("footer", {});
  append(
    body,
    h(
      "header",
      {},
      h("a", { href: profileHref(handle), class: "name" }, author?.displayName || handle),
      " ",
      h("span", { class: "handle" }, `@${handle}`),
      h("span", { class: "dot" }, " · "),
      options.focus ? time : h("a", { href: thread, class: "permalink", title: "Open the thread" }, time),
    ),
    tweet.replyToTweetId !== 0n && !options.inThread && replyingTo(tweet.replyToTweetId),
    text,
    media.length > 0 &&
      h(
        "div",
        { class: `media n${Math.min(media.length, 4)}` },
        ...media.map((m) =>
          m.kind === MediaKind.VIDEO
            ? h("video", { src: m.url, controls: true, preload: "metadata", class: "photo" })
            : h(
                "a",
                { href: m.url, target: "_blank", rel: "noopener" },
                h("img", {
                  src: m.thumbnailUrl || m.url,
                  alt: "Photo",
                  loading: "lazy",
                  class: "photo",
                  ...(m.width > 0 && m.height > 0 ? { width: m.width, height: m.height } : {}),
                }),
              ),
        ),
      ),
    tweet.quoteTweetId !== 0n && quotedCard(tweet.quoteTweet, { opens: true }),
    footer,
  );
  const slot: OpenBox = {};
  append(footer, replyAction(tweet, body, slot, options), quoteAction(tweet, footer, slot, options), repostButton(tweet), likeButton(tweet));
  return h(
    "article",
    {
      class: `tweet${options.focus ? " focus" : ""}${tweet.repostedBy !== undefined ? " reposted" : ""}`,
      dataset: { id: String(tweet.id) },
      "aria-current": options.focus ? "true" : undefined,
    },
    tweet.repostedBy !== undefined && repostedBy(tweet.repostedBy),
    h("a", { href: profileHref(handle), class: "tweet-avatar", tabindex: "-1" }, avatar(author)),
    body,
  );
}
