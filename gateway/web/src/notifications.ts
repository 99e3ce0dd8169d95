// The notifications page (#/notifications) and the unread badge in the nav.
// The page shows the grouped view ("a, b and 3 others liked your tweet"),
// newest first, with a button for older ones; opening it marks everything it
// shows as read (MarkRead up to the newest id on it, so one that arrives
// meanwhile stays unread). New ones arrive live (StreamEvents) and go on top.
import { NotificationKind, type Notification } from "../../../gen/chirp/notification/v1/notification_pb.js";
import { describeError, notifications } from "./api.js";
import { pushToggle } from "./push.js";
import { h, replace } from "./dom.js";
import { ago, avatar, profileHref, threadHref } from "./ui.js";

/** The unread count next to "Notifications" in the nav: read from the service, bumped by live events. */
export interface UnreadBadge {
  readonly el: HTMLElement;
  /** Reads the count again. */
  refresh(): Promise<void>;
  set(count: number): void;
}

export function unreadBadge(): UnreadBadge {
  const el = h("span", { class: "count-badge", hidden: true, "aria-label": "unread notifications", dataset: { count: "0" } });
  let asked = 0;
  const set = (count: number): void => {
    el.dataset.count = String(count);
    el.textContent = count > 999 ? "999+" : String(count);
    el.hidden = count === 0;
  };
  return {
    el,
    set,
    async refresh() {
      const mine = ++asked;
      try {
        const { count } = await notifications.getUnreadCount({});
        if (mine === asked) set(count);
      } catch {
        // The badge keeps what it had; the next event or page view asks again.
      }
    },
  };
}

const VERB: Partial<Record<NotificationKind, string>> = {
  [NotificationKind.FOLLOW]: "followed you",
  [NotificationKind.LIKE]: "liked your tweet",
  [NotificationKind.REPOST]: "reposted your tweet",
  [NotificationKind.REPLY]: "replied to your tweet",
  [NotificationKind.QUOTE]: "quoted your tweet",
  [NotificationKind.MENTION]: "mentioned you",
};

/** "@a", "@a and @b", "@a, @b and 3 others". */
function who(n: Notification): Node[] {
  const names = (n.actors.length > 0 ? n.actors : n.actor === undefined ? [] : [n.actor]).slice(0, 2);
  const links = names.map((u) => h("a", { href: profileHref(u.handle), class: "actor" }, u.displayName || `@${u.handle}`));
  const others = Math.max(n.actorCount, names.length) - names.length;
  const parts: Node[] = [];
  links.forEach((l, i) => {
    if (i > 0) parts.push(document.createTextNode(others > 0 ? ", " : " and "));
    parts.push(l);
  });
  if (others > 0) parts.push(document.createTextNode(` and ${others} other${others === 1 ? "" : "s"}`));
  return parts;
}

export function notificationCard(n: Notification): HTMLElement {
  const tweetText = n.tweet?.text ?? "";
  return h(
    "article",
    { class: `notification${n.read ? "" : " unread"}`, dataset: { kind: NotificationKind[n.kind]?.toLowerCase() ?? "unknown", id: String(n.id) } },
    avatar(n.actor),
    h(
      "div",
      { class: "notification-body" },
      h("p", {}, ...who(n), ` ${VERB[n.kind] ?? "did something"}`, h("span", { class: "muted" }, ` · ${ago(n.createTime)}`)),
      n.tweet !== undefined && h("a", { href: threadHref(n.tweet.id), class: "notification-tweet muted" }, tweetText.length > 140 ? `${tweetText.slice(0, 140)}…` : tweetText || "View tweet"),
    ),
  );
}

export interface NotificationsView {
  readonly el: HTMLElement;
  readonly title: string;
  close(): void;
  /** A live notification: on top, and read at once since it is in view. */
  onNotification(n: Notification): void;
  onReconnect(): void;
}

export function notificationsView(badge: UnreadBadge): NotificationsView {
  const list = h("div", { class: "notification-list" });
  const status = h("div", { class: "feed-status" });
  const el = h("div", { class: "view notifications" }, h("h1", { class: "view-title" }, "Notifications"), pushToggle(), h("section", { class: "card feed", "aria-busy": "true" }, list, status));
  const shown = new Set<string>();
  let next: string | undefined = "";
  let closed = false;
  let newest = 0n;

  const markRead = async (): Promise<void> => {
    if (newest === 0n) return;
    try {
      await notifications.markRead({ upToId: newest });
      await badge.refresh();
    } catch {
      // Stays unread; the next visit marks it.
    }
  };

  const add = (n: Notification, where: "top" | "end"): void => {
    const key = String(n.id);
    if (shown.has(key)) return;
    shown.add(key);
    if (n.id > newest) newest = n.id;
    const card = notificationCard(n);
    if (where === "top") {
      card.classList.add("fresh");
      list.prepend(card);
    } else list.append(card);
  };

  const load = async (): Promise<void> => {
    if (next === undefined || closed) return;
    el.querySelector(".feed")?.setAttribute("aria-busy", "true");
    status.textContent = "Loading…";
    try {
      const page = await notifications.listNotifications({ pageSize: 20, pageToken: next, grouped: true });
      if (closed) return;
      for (const n of page.notifications) add(n, "end");
      next = page.nextPageToken === "" ? undefined : page.nextPageToken;
      if (next !== undefined) replace(status, h("button", { type: "button", class: "secondary more", onclick: () => void load() }, "Show older"));
      else status.textContent = shown.size === 0 ? "Nothing yet. Likes, follows, replies and mentions show up here." : "";
      await markRead();
    } catch (err) {
      replace(status, describeError(err), " ", h("button", { type: "button", class: "link-button", onclick: () => void load() }, "Retry"));
    } finally {
      el.querySelector(".feed")?.setAttribute("aria-busy", "false");
    }
  };
  void load();

  return {
    el,
    title: "Notifications",
    close: () => void (closed = true),
    onNotification(n) {
      add(n, "top");
      if (status.textContent?.startsWith("Nothing yet") === true) status.textContent = "";
      void markRead();
    },
    onReconnect() {
      // Anything may have been missed: read the newest page again (grouped entries already shown stay as they were).
      void (async () => {
        try {
          const page = await notifications.listNotifications({ pageSize: 20, grouped: true });
          for (const n of [...page.notifications].reverse()) add(n, "top");
          await markRead();
        } catch {
          // The next event tries again.
        }
      })();
    },
  };
}
