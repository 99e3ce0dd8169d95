import type { Tweet } from "../../../gen/chirp/tweet/v1/tweet_pb.js";
import { MediaKind } from "../../../gen/chirp/media/v1/media_pb.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { currentSession, describeError, tweets } from "./api.js";
import { append, h } from "./dom.js";
import { ago, avatar, count, profileHref, searchHref, toast } from "./ui.js";

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

function likeButton(tweet: Tweet): HTMLButtonElement {
  const label = (): string => `${tweet.likedByViewer ? "♥" : "♡"} ${count(tweet.likeCount)}`;
  const button = h("button", { type: "button", class: "like", "aria-pressed": String(tweet.likedByViewer), "aria-label": "Like" }, label());
  button.addEventListener("click", async () => {
    if (currentSession() === undefined) {
      location.hash = "#/login";
      return;
    }
    button.disabled = true;
    const liking = !tweet.likedByViewer;
    try {
      const res = liking ? await tweets.likeTweet({ tweetId: tweet.id }) : await tweets.unlikeTweet({ tweetId: tweet.id });
      tweet.likedByViewer = liking;
      tweet.likeCount = res.likeCount;
      button.textContent = label();
      button.setAttribute("aria-pressed", String(liking));
    } catch (err) {
      toast(describeError(err), "error");
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export function tweetCard(tweet: Tweet): HTMLElement {
  const author = tweet.author;
  const handle = author?.handle ?? "";
  const time = h("time", {}, ago(tweet.createTime));
  if (tweet.createTime) {
    const d = timestampDate(tweet.createTime);
    time.dateTime = d.toISOString();
    time.title = d.toLocaleString();
  }
  const media = tweet.media.filter((m) => m.url !== "");
  return h(
    "article",
    { class: "tweet", dataset: { id: String(tweet.id) } },
    h("a", { href: profileHref(handle), class: "tweet-avatar", tabindex: "-1" }, avatar(author)),
    h(
      "div",
      { class: "tweet-body" },
      h(
        "header",
        {},
        h("a", { href: profileHref(handle), class: "name" }, author?.displayName || handle),
        " ",
        h("span", { class: "handle" }, `@${handle}`),
        h("span", { class: "dot" }, " · "),
        time,
      ),
      tweetText(tweet.text),
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
      h("footer", {}, likeButton(tweet)),
    ),
  );
}
