// The form that writes a tweet: text and one photo or video (POST /media,
// then PostTweet with its id). Home has one; every reply box is another,
// posting with replyToTweetId, and every quote box, posting with quoteTweetId
// under the tweet it quotes.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Tweet } from "../../../gen/chirp/tweet/v1/tweet_pb.js";
import { currentSession, describeError, tweets, uploadMedia } from "./api.js";
import { h, replace } from "./dom.js";
import { quotedCard } from "./quoted-card.js";
import { avatar, toast } from "./ui.js";

const MAX_TWEET_CHARS = 280;

export interface ComposerOptions {
  /** The tweet this answers; unset for a new tweet. */
  readonly replyTo?: Tweet;
  /** The tweet this quotes (shown in the box); unset for a new tweet. */
  readonly quote?: Tweet;
  readonly onPosted: (tweet: Tweet) => void;
  /** Shows a Cancel button that calls this. */
  readonly onCancel?: () => void;
}

// The home composer keeps the id "photo-input"; reply and quote boxes, of
// which a page may show several, number theirs so each label points at its
// own input.
let boxes = 0;

const WORDS = {
  tweet: { placeholder: "What's happening?", label: "Tweet text", post: "Post", gone: "" },
  reply: { placeholder: "Post your reply", label: "Reply text", post: "Post reply", gone: "The tweet you are replying to was deleted." },
  quote: { placeholder: "Add a comment", label: "Quote text", post: "Post quote", gone: "The tweet you are quoting was deleted." },
} as const;

export function composer(options: ComposerOptions): HTMLFormElement {
  const me = currentSession();
  const kind = options.replyTo !== undefined ? "reply" : options.quote !== undefined ? "quote" : "tweet";
  const words = WORDS[kind];
  const boxed = kind !== "tweet";
  const inputId = boxed ? `photo-input-${++boxes}` : "photo-input";
  const text = h("textarea", {
    name: "text",
    rows: boxed ? 2 : 3,
    placeholder: words.placeholder,
    "aria-label": words.label,
    maxlength: 1000,
  });
  const counter = h("span", { class: "counter" }, String(MAX_TWEET_CHARS));
  const file = h("input", { type: "file", accept: "image/*,video/mp4,video/webm", class: "visually-hidden", id: inputId, "aria-label": "Add a photo" });
  const preview = h("div", { class: "preview" });
  const post = h("button", { type: "submit", class: "primary", disabled: true }, words.post);
  let chosen: File | undefined;
  let previewUrl: string | undefined;

  const update = (): void => {
    const left = MAX_TWEET_CHARS - [...text.value].length;
    counter.textContent = String(left);
    counter.classList.toggle("over", left < 0);
    post.disabled = left < 0 || (text.value.trim() === "" && chosen === undefined);
  };
  const clearPhoto = (): void => {
    if (previewUrl !== undefined) URL.revokeObjectURL(previewUrl);
    previewUrl = undefined;
    chosen = undefined;
    file.value = "";
    preview.replaceChildren();
    update();
  };
  text.addEventListener("input", update);
  file.addEventListener("change", () => {
    const f = file.files?.[0];
    if (f === undefined) return clearPhoto();
    if (previewUrl !== undefined) URL.revokeObjectURL(previewUrl);
    chosen = f;
    previewUrl = URL.createObjectURL(f);
    replace(
      preview,
      f.type.startsWith("video/") ? h("video", { src: previewUrl, muted: true }) : h("img", { src: previewUrl, alt: "Photo to post" }),
      h("button", { type: "button", class: "remove", "aria-label": "Remove photo", onclick: clearPhoto }, "×"),
    );
    update();
  });

  const form = h(
    "form",
    { class: boxed ? `composer reply-composer ${kind}-composer` : "composer card" },
    !boxed && avatar(me === undefined ? undefined : { id: me.userId, handle: me.handle, displayName: "" }),
    h(
      "div",
      { class: "composer-main" },
      text,
      preview,
      options.quote !== undefined && quotedCard(options.quote, { opens: false }),
      h(
        "div",
        { class: "composer-bar" },
        h("label", { for: inputId, class: "icon-button", title: "Add a photo or video" }, "+ Photo"),
        file,
        counter,
        options.onCancel !== undefined && h("button", { type: "button", class: "secondary", onclick: options.onCancel }, "Cancel"),
        post,
      ),
    ),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    post.disabled = true;
    post.textContent = "Posting…";
    try {
      const mediaIds: bigint[] = [];
      if (chosen !== undefined) mediaIds.push((await uploadMedia(chosen)).id);
      const res = await tweets.postTweet({ text: text.value, mediaIds, replyToTweetId: options.replyTo?.id ?? 0n, quoteTweetId: options.quote?.id ?? 0n });
      text.value = "";
      clearPhoto();
      if (res.tweet) options.onPosted(res.tweet);
    } catch (err) {
      const gone = boxed && ConnectError.from(err).code === Code.NotFound;
      toast(gone ? words.gone : describeError(err), "error");
    } finally {
      post.textContent = words.post;
      update();
    }
  });
  return form;
}
