import { Code, ConnectError } from "@connectrpc/connect";
import type { Tweet } from "../../../gen/chirp/tweet/v1/tweet_pb.js";
import type { User } from "../../../gen/chirp/user/v1/user_pb.js";
import { currentSession, describeError, graph, search, setSession, startSession, timelines, tweets, users } from "./api.js";
import { composer } from "./composer.js";
import { append, h, replace } from "./dom.js";
import { createFeed, type Feed } from "./feed.js";
import { tombstoneCard, tweetCard } from "./tweet-card.js";
import { avatar, count, searchHref, threadHref, toast } from "./ui.js";

/** What a view leaves behind for the router: its element, and what to stop when it goes. */
export interface View {
  readonly el: HTMLElement;
  readonly title: string;
  close?(): void;
  /** A live tweet for the home timeline. */
  onHomeTweet?(tweet: Tweet): void;
  onReconnect?(): void;
}

// --- sign up / log in ---------------------------------------------------------

export function authView(mode: "login" | "signup"): View {
  const error = h("p", { class: "form-error", role: "alert" });
  const field = (label: string, input: HTMLInputElement): HTMLElement => h("label", { class: "field" }, h("span", {}, label), input);
  const handle = h("input", { name: "handle", autocomplete: "username", required: true, maxlength: 15, pattern: "[A-Za-z0-9_]{1,15}", autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", required: true, autocomplete: mode === "login" ? "current-password" : "new-password", minlength: mode === "signup" ? 8 : undefined });
  const displayName = h("input", { name: "displayName", autocomplete: "name", maxlength: 50 });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, mode === "login" ? "Log in" : "Create account");
  const form = h(
    "form",
    { class: "card auth-form", novalidate: false },
    h("h1", {}, mode === "login" ? "Log in to Chirp" : "Join Chirp"),
    field("Handle", handle),
    mode === "signup" && field("Name", displayName),
    mode === "signup" && field("Email", email),
    field("Password", password),
    error,
    submit,
    h(
      "p",
      { class: "muted" },
      mode === "login" ? "New here? " : "Have an account? ",
      h("a", { href: mode === "login" ? "#/signup" : "#/login" }, mode === "login" ? "Create an account" : "Log in"),
    ),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const res =
        mode === "login"
          ? await users.logIn({ handle: handle.value.trim(), password: password.value })
          : await users.signUp({
              handle: handle.value.trim(),
              displayName: displayName.value.trim() || handle.value.trim(),
              email: email.value.trim(),
              password: password.value,
            });
      startSession(res.user, res.token);
      location.hash = "#/";
    } catch (err) {
      const e = ConnectError.from(err);
      error.textContent = e.code === Code.Unauthenticated && mode === "login" ? "Wrong handle or password." : describeError(err);
    } finally {
      submit.disabled = false;
    }
  });
  return { el: h("div", { class: "view auth" }, form), title: mode === "login" ? "Log in" : "Sign up" };
}

// --- home: compose and the home timeline -------------------------------------------

export function homeView(): View {
  // A quote posted from a card here is the person's own tweet: it goes on top at once, as from the composer.
  const feed: Feed = createFeed(async (pageToken) => timelines.getHomeTimeline({ pageToken, pageSize: 20 }), "Your timeline is empty. Follow people to see their tweets here.", {
    card: { onQuoted: (t) => feed.prepend(t) },
  });
  const el = h("div", { class: "view home" }, h("h1", { class: "view-title" }, "Home"), composer({ onPosted: (t) => feed.prepend(t) }), feed.el);
  return {
    el,
    title: "Home",
    close: () => feed.close(),
    onHomeTweet: (t) => feed.prepend(t),
    onReconnect: () => void feed.refreshTop(),
  };
}

// --- profiles -----------------------------------------------------------------

/** Who the signed-in user follows, read once (ListFollowing, up to 2000) and kept up to date by this page. */
let following: { owner: bigint; ids: Set<bigint>; complete: boolean } | undefined;

async function followingIds(): Promise<{ ids: Set<bigint>; complete: boolean }> {
  const me = currentSession();
  if (me === undefined) return { ids: new Set(), complete: true };
  if (following?.owner === me.userId) return following;
  const ids = new Set<bigint>();
  let pageToken = "";
  let pages = 0;
  do {
    const page = await graph.listFollowing({ userId: me.userId, pageSize: 100, pageToken });
    for (const u of page.users) ids.add(u.id);
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && ++pages < 20);
  following = { owner: me.userId, ids, complete: pageToken === "" };
  return following;
}

/** Whom the signed-in user blocks and mutes (their first 2,000 each), loaded once per session and kept up to date here. */
let relationsOf: { owner: bigint; blocked: Set<bigint>; muted: Set<bigint> } | undefined;

async function relationIds(): Promise<{ blocked: Set<bigint>; muted: Set<bigint> }> {
  const me = currentSession();
  if (me === undefined) return { blocked: new Set(), muted: new Set() };
  if (relationsOf?.owner === me.userId) return relationsOf;
  const all = async (list: (req: { pageSize: number; pageToken: string }) => Promise<{ users: User[]; nextPageToken: string }>): Promise<Set<bigint>> => {
    const ids = new Set<bigint>();
    let pageToken = "";
    let pages = 0;
    do {
      const page = await list({ pageSize: 100, pageToken });
      for (const u of page.users) ids.add(u.id);
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && ++pages < 20);
    return ids;
  };
  const [blocked, muted] = await Promise.all([all((r) => graph.listBlocked(r)), all((r) => graph.listMuted(r))]);
  relationsOf = { owner: me.userId, blocked, muted };
  return relationsOf;
}

function stat(n: number, label: string): HTMLElement {
  return h("span", { class: "stat", dataset: { stat: label.toLowerCase() } }, h("strong", {}, count(n)), ` ${label}`);
}

export function profileView(handle: string): View {
  const head = h("div", { class: "profile-head card" }, h("p", { class: "muted" }, "Loading…"));
  const el = h("div", { class: "view profile" }, head);
  let feed: Feed | undefined;
  let closed = false;

  const render = (user: User, follows: boolean | undefined, rel?: { blocked: boolean; muted: boolean }): void => {
    const me = currentSession();
    const mine = me?.userId === user.id;
    const counts = h("p", { class: "counts" }, stat(user.tweetCount, "Tweets"), stat(user.followingCount, "Following"), stat(user.followerCount, "Followers"));
    let action: HTMLElement | false = false;
    if (me !== undefined && !mine) {
      const button = h("button", { type: "button", class: follows ? "secondary follow" : "primary follow", "aria-pressed": String(follows === true) }, follows ? "Unfollow" : "Follow");
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          if (follows) await graph.unfollow({ userId: user.id });
          else await graph.follow({ userId: user.id });
          const set = await followingIds();
          if (follows) set.ids.delete(user.id);
          else set.ids.add(user.id);
          const fresh = (await users.getUser({ lookup: { case: "userId", value: user.id } })).user ?? user;
          if (!closed) render(fresh, !follows, rel);
        } catch (err) {
          toast(describeError(err), "error");
          button.disabled = false;
        }
      });
      action = button;
    }
    // Block and Mute (and their undoing); a block also ends the follows both ways.
    const toggle = (kind: "block" | "mute", on: boolean): HTMLElement => {
      const label = kind === "block" ? (on ? "Unblock" : "Block") : on ? "Unmute" : "Mute";
      const button = h("button", { type: "button", class: `secondary ${kind}`, "aria-pressed": String(on) }, label);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          const req = { userId: user.id };
          if (kind === "block") await (on ? graph.unblock(req) : graph.block(req));
          else await (on ? graph.unmute(req) : graph.mute(req));
          const ids = await relationIds();
          const set = kind === "block" ? ids.blocked : ids.muted;
          if (on) set.delete(user.id);
          else set.add(user.id);
          let nowFollows = follows;
          if (kind === "block" && !on) {
            (await followingIds()).ids.delete(user.id);
            nowFollows = false;
          }
          const fresh = (await users.getUser({ lookup: { case: "userId", value: user.id } })).user ?? user;
          const next = { blocked: rel?.blocked ?? false, muted: rel?.muted ?? false, [kind === "block" ? "blocked" : "muted"]: !on };
          if (!closed) render(fresh, nowFollows, next);
          toast(`${label === "Block" ? "Blocked" : label === "Unblock" ? "Unblocked" : label === "Mute" ? "Muted" : "Unmuted"} @${user.handle}`);
        } catch (err) {
          toast(describeError(err), "error");
          button.disabled = false;
        }
      });
      return button;
    };
    const relationActions = me !== undefined && !mine && rel !== undefined && h("span", { class: "relation-actions" }, toggle("mute", rel.muted), toggle("block", rel.blocked));
    // One's own profile: deleting the account (the password confirms it; every session ends).
    const deleteAction = mine && h("button", { type: "button", class: "secondary delete-account", onclick: () => void deleteAccount() }, "Delete account");
    replace(
      head,
      h("div", { class: "profile-top" }, avatar(user, "l"), h("span", { class: "profile-actions" }, action, relationActions, deleteAction)),
      h("h1", { class: "profile-name" }, user.displayName || user.handle),
      h("p", { class: "handle" }, `@${user.handle}`),
      user.bio !== "" && h("p", { class: "bio" }, user.bio),
      counts,
    );
  };

  void (async () => {
    try {
      const user = (await users.getUser({ lookup: { case: "handle", value: handle } })).user;
      if (user === undefined || closed) return;
      const me = currentSession();
      let follows: boolean | undefined;
      let rel: { blocked: boolean; muted: boolean } | undefined;
      if (me !== undefined && me.userId !== user.id) {
        try {
          follows = (await followingIds()).ids.has(user.id);
        } catch {
          follows = undefined;
        }
        try {
          const ids = await relationIds();
          rel = { blocked: ids.blocked.has(user.id), muted: ids.muted.has(user.id) };
        } catch {
          rel = undefined;
        }
      }
      if (closed) return;
      render(user, follows, rel);
      feed = createFeed(async (pageToken) => timelines.getUserTimeline({ userId: user.id, pageToken, pageSize: 20 }), "No tweets yet.");
      append(el, feed.el);
    } catch (err) {
      replace(head, h("p", {}, ConnectError.from(err).code === Code.NotFound ? `@${handle} does not exist.` : describeError(err)));
    }
  })();

  return {
    el,
    title: `@${handle}`,
    close: () => {
      closed = true;
      feed?.close();
    },
  };
}

// --- threads -------------------------------------------------------------------

const REPLIES_PAGE = 20;

/**
 * A tweet in its conversation: the tweets it answers (root first, a deleted
 * one as "This tweet was deleted"), the tweet itself with a reply box, and its
 * replies, oldest first, paged as they scroll into view.
 */
export function threadView(tweetId: bigint): View {
  const chain = h("section", { class: "thread-chain", "aria-label": "Conversation" }, h("p", { class: "muted" }, "Loading…"));
  const el = h("div", { class: "view thread" }, h("h1", { class: "view-title" }, "Thread"), chain);
  let feed: Feed | undefined;
  let closed = false;

  const replies = async (pageToken: string) => {
    const res = await tweets.getThread({ tweetId, pageToken, pageSize: REPLIES_PAGE });
    return { tweets: res.replies, nextPageToken: res.nextPageToken };
  };

  void (async () => {
    try {
      const res = await tweets.getThread({ tweetId, pageSize: REPLIES_PAGE });
      if (closed || res.tweet === undefined) return;
      const first = res.ancestors[0];
      // At most 100 ancestors come back; the 100th says whom it answers.
      const earlier = first !== undefined && first.replyToTweetId !== 0n && h("a", { href: threadHref(first.replyToTweetId), class: "earlier" }, "Earlier in the thread");
      const focus = tweetCard(res.tweet, { focus: true, inThread: true, onReplied: (reply) => feed?.prepend(reply) });
      replace(chain, earlier, ...res.ancestors.map((t) => (t.authorId === 0n ? tombstoneCard(t.id) : tweetCard(t, { inThread: true }))), focus);
      feed = createFeed(replies, "No replies yet.", {
        first: { tweets: res.replies, nextPageToken: res.nextPageToken },
        card: { inThread: true },
        moreLabel: "More replies",
      });
      append(el, h("h2", { class: "visually-hidden" }, "Replies"), feed.el);
      // A long conversation above: start at the tweet, as it is what was asked for.
      if (res.ancestors.length > 0) focus.scrollIntoView({ block: "start" });
      const who = res.tweet.author?.handle;
      if (who !== undefined) document.title = `@${who}: ${[...res.tweet.text].slice(0, 50).join("")} · Chirp`;
    } catch (err) {
      replace(chain, h("p", {}, ConnectError.from(err).code === Code.NotFound ? "This tweet was deleted, or never existed." : describeError(err)));
    }
  })();

  return {
    el,
    title: "Thread",
    close: () => {
      closed = true;
      feed?.close();
    },
  };
}

// --- search and trends -------------------------------------------------------------

export function searchForm(initial = ""): HTMLFormElement {
  const input = h("input", { type: "search", name: "q", placeholder: "Search Chirp", "aria-label": "Search", value: initial, maxlength: 256, enterkeyhint: "search" });
  const form = h("form", { class: "search-form", role: "search" }, input);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim() !== "") location.hash = searchHref(input.value.trim());
  });
  return form;
}

export function trendsBox(): { el: HTMLElement; refresh(): void; close(): void } {
  const list = h("ol", { class: "trends-list" });
  const el = h("section", { class: "trends card", "aria-label": "Trends" }, h("h2", {}, "Trends"), list);
  const refresh = async (): Promise<void> => {
    try {
      const { trends } = await search.getTrends({ limit: 10 });
      if (trends.length === 0) return replace(list, h("li", { class: "muted" }, "Nothing trending right now."));
      replace(
        list,
        ...trends.map((t) => {
          const tag = `#${t.hashtag.replace(/^#/, "")}`;
          return h("li", {}, h("a", { href: searchHref(tag) }, tag), h("span", { class: "muted" }, ` ${count(t.tweetCount)} ${t.tweetCount === 1 ? "tweet" : "tweets"}`));
        }),
      );
    } catch (err) {
      replace(list, h("li", { class: "muted" }, describeError(err)));
    }
  };
  let last = 0;
  const maybeRefresh = (): void => {
    // Often enough to follow a conversation, never more than every 10 s.
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    void refresh();
  };
  maybeRefresh();
  const timer = setInterval(maybeRefresh, 60_000);
  return { el, refresh: maybeRefresh, close: () => clearInterval(timer) };
}

export function searchView(query: string): View {
  const el = h("div", { class: "view search" }, h("h1", { class: "view-title" }, "Search"), searchForm(query));
  let feed: Feed | undefined;
  const trends = trendsBox();
  if (query !== "") {
    feed = createFeed(async (pageToken) => {
      const res = await search.searchTweets({ query, pageToken, pageSize: 20 });
      if (res.partial) toast("Some results are missing: part of the index is not reachable.");
      return res;
    }, `No tweets match ${query}.`);
    append(el, h("p", { class: "muted results-for" }, "Results for ", h("strong", {}, query)), feed.el);
  } else {
    append(el, h("div", { class: "search-trends" }, trends.el));
  }
  return {
    el,
    title: query === "" ? "Search" : `${query} - Search`,
    close: () => {
      feed?.close();
      trends.close();
    },
  };
}

/** Asks for the password, deletes the caller's account, and forgets the session here. */
async function deleteAccount(): Promise<void> {
  const password = prompt("Delete your account, your tweets, likes, follows and media for good? Enter your password to confirm.");
  if (password === null || password === "") return;
  try {
    await users.deleteAccount({ password });
    setSession(undefined);
    location.hash = "#/signup";
    toast("Your account is deleted");
  } catch (err) {
    toast(describeError(err), "error");
  }
}
