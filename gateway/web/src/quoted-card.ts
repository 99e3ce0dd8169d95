// The tweet a quote embeds: a bordered card with its author, time, text and
// first photo's thumbnail, under the quote's own text and in the box that
// writes one. The backend hydrates it one level deep and leaves it out once
// it was deleted, when only its id is left.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { MediaKind } from "../../../gen/chirp/media/v1/media_pb.js";
import type { Tweet } from "../../../gen/chirp/tweet/v1/tweet_pb.js";
import { h } from "./dom.js";
import { ago, avatar, threadHref } from "./ui.js";

/**
 * `quoted` undefined: "This tweet was deleted". With `opens`, the card is one
 * link to the quoted tweet's thread; its text is plain (no links inside a
 * link, as on other sites), and it is left as a plain card where following it
 * would lose what is being written.
 */
export function quotedCard(quoted: Tweet | undefined, options: { opens: boolean }): HTMLElement {
  if (quoted === undefined) return h("div", { class: "quoted deleted" }, "This tweet was deleted");
  const handle = quoted.author?.handle ?? "";
  const time = h("time", {}, ago(quoted.createTime));
  if (quoted.createTime) time.dateTime = timestampDate(quoted.createTime).toISOString();
  const photo = quoted.media.find((m) => m.kind !== MediaKind.VIDEO && m.url !== "");
  const video = photo === undefined && quoted.media.some((m) => m.kind === MediaKind.VIDEO && m.url !== "");
  const children = [
    h("span", { class: "visually-hidden" }, "Quoted tweet: "),
    h(
      "span",
      { class: "quoted-head" },
      avatar(quoted.author),
      h("span", { class: "name" }, quoted.author?.displayName || handle),
      " ",
      h("span", { class: "handle" }, `@${handle}`),
      h("span", { class: "dot" }, " · "),
      time,
    ),
    h(
      "span",
      { class: "quoted-main" },
      quoted.text !== "" && h("span", { class: "quoted-text" }, quoted.text),
      video && h("span", { class: "quoted-video muted" }, "▶ Video"),
      photo !== undefined &&
        h("img", {
          src: photo.thumbnailUrl || photo.url,
          alt: "Photo",
          loading: "lazy",
          class: "quoted-photo",
          ...(photo.width > 0 && photo.height > 0 ? { width: photo.width, height: photo.height } : {}),
        }),
    ),
  ];
  return options.opens
    ? h("a", { href: threadHref(quoted.id), class: "quoted", dataset: { id: String(quoted.id) } }, ...children)
    : h("div", { class: "quoted", dataset: { id: String(quoted.id) } }, ...children);
}
