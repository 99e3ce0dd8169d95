import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { User } from "../../../gen/chirp/user/v1/user_pb.js";
import { h } from "./dom.js";

const toasts = (): HTMLElement => {
  let el = document.getElementById("toasts");
  if (el === null) {
    el = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(el);
  }
  return el;
};

/** A short message at the bottom of the screen for a few seconds. */
export function toast(message: string, kind: "info" | "error" = "info"): void {
  const el = h("div", { class: `toast ${kind}` }, message);
  toasts().append(el);
  setTimeout(() => el.remove(), kind === "error" ? 6000 : 4000);
}

/** A round badge with the person's initial, coloured by their id. */
export function avatar(user: Pick<User, "id" | "displayName" | "handle"> | undefined, size: "s" | "l" = "s"): HTMLElement {
  const name = user?.displayName || user?.handle || "?";
  const hue = user === undefined ? 0 : Number(user.id % 360n);
  const el = h("span", { class: `avatar ${size}`, "aria-hidden": "true" }, [...name][0]!.toUpperCase());
  el.style.setProperty("--hue", String(hue));
  return el;
}

export function profileHref(handle: string): string {
  return `#/u/${encodeURIComponent(handle)}`;
}

export function threadHref(tweetId: bigint): string {
  return `#/tweet/${tweetId}`;
}

export function searchHref(query: string): string {
  return `#/search?q=${encodeURIComponent(query)}`;
}

/** "now", "5m", "3h", "Mar 4", "Mar 4, 2025". */
export function ago(ts: Timestamp | undefined, now = Date.now()): string {
  if (ts === undefined) return "";
  const d = timestampDate(ts);
  const s = Math.max(0, (now - d.getTime()) / 1000);
  if (s < 45) return "now";
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86400) return `${Math.round(s / 3600)}h`;
  const sameYear = d.getFullYear() === new Date(now).getFullYear();
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric", ...(sameYear ? {} : { year: "numeric" }) });
}

export function count(n: number): string {
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${Math.floor(n / 100) / 10}K`.replace(".0K", "K");
  return `${Math.floor(n / 100_000) / 10}M`.replace(".0M", "M");
}
