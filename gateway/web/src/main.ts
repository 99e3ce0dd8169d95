// The app shell and its hash router: #/ (home), #/login, #/signup,
// #/u/<handle>, #/tweet/<id> (a thread), #/search?q=<query>, #/notifications. Hash routes keep
// every page at `/`, so the gateway serves one document and never confuses a
// page with an RPC path.
import { currentSession, onSessionChange, setSession, users } from "./api.js";
import { h, replace } from "./dom.js";
import { startLive, type LiveEvent } from "./live.js";
import { notificationsView, unreadBadge, type NotificationsView } from "./notifications.js";
import { profileHref, toast } from "./ui.js";
import { authView, homeView, profileView, searchForm, searchView, threadView, trendsBox, type View } from "./views.js";

const view = h("main", { id: "view" });
const liveState = h("span", { id: "live-state", class: "live-state", dataset: { state: "offline" }, title: "Live updates" });
const nav = h("nav", { class: "nav", "aria-label": "Main" });
const homeBadge = h("span", { class: "badge", hidden: true });
const unread = unreadBadge();
const trends = trendsBox();
const shell = h(
  "div",
  { class: "shell" },
  h("header", { class: "topbar" }, h("a", { href: "#/", class: "brand" }, h("img", { src: "/icon.svg", alt: "", width: 28, height: 28 }), "Chirp"), nav, liveState),
  view,
  h("aside", { class: "sidebar" }, searchForm(), trends.el),
);
document.getElementById("app")!.replaceWith(shell);

let current: View | undefined;
/** The notifications page, while it is the one shown. */
let inbox: NotificationsView | undefined;
let stopLive: (() => void) | undefined;

function renderNav(): void {
  const me = currentSession();
  const route = location.hash || "#/";
  const link = (href: string, label: string, ...extra: Node[]): HTMLElement =>
    h("a", { href, class: "nav-link", "aria-current": route === href ? "page" : undefined }, label, ...extra);
  replace(
    nav,
    ...(me === undefined
      ? [link("#/search", "Search"), link("#/login", "Log in"), link("#/signup", "Sign up")]
      : [
          link("#/", "Home", homeBadge),
          link("#/notifications", "Notifications", unread.el),
          link("#/search", "Search"),
          link(profileHref(me.handle), "Profile"),
          h("button", { type: "button", class: "nav-link link-button", onclick: () => logOut() }, "Log out"),
        ]),
  );
}

/** Ends the session on the server too (its token is refused everywhere from then on), then forgets it here whatever the answer. */
function logOut(): void {
  void users
    .logOut({})
    .catch(() => {})
    .finally(() => {
      setSession(undefined);
      location.hash = "#/login";
    });
}

function route(): void {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path = "/", queryString = ""] = hash.split("?");
  const query = new URLSearchParams(queryString);
  const me = currentSession();
  current?.close?.();
  inbox = undefined;
  let next: View;
  const profile = /^\/u\/([^/]+)$/.exec(path);
  const thread = /^\/tweet\/(\d{1,20})$/.exec(path);
  if (path === "/login" || path === "/signup") next = authView(path === "/login" ? "login" : "signup");
  else if (profile !== null) next = profileView(decodeURIComponent(profile[1]!));
  else if (thread !== null) next = threadView(BigInt(thread[1]!));
  else if (path === "/search") next = searchView(query.get("q") ?? "");
  else if (me === undefined) next = authView("login");
  else if (path === "/notifications") next = inbox = notificationsView(unread);
  else {
    next = homeView();
    homeBadge.hidden = true;
  }
  current = next;
  replace(view, next.el);
  document.title = `${next.title} · Chirp`;
  renderNav();
  trends.refresh();
  if (me !== undefined && inbox === undefined) void unread.refresh();
  scrollTo(0, 0);
}

function onLive(event: LiveEvent): void {
  switch (event.case) {
    case "homeTweet":
      if (event.value.tweet === undefined) return;
      if (current?.onHomeTweet) current.onHomeTweet(event.value.tweet);
      else homeBadge.hidden = false;
      return;
    case "mention":
      toast(`@${event.value.tweet?.author?.handle ?? "someone"} mentioned you`);
      return;
    case "like":
      toast(`@${event.value.liker?.handle ?? "someone"} liked your tweet`);
      return;
    case "follow":
      toast(`@${event.value.follower?.handle ?? "someone"} followed you`);
      return;
    case "notification":
      // The inbox's own event: the page shows it, or the badge counts it (read
      // again rather than added to: the row is committed before its event is
      // sent, and a count read in flight could otherwise undo the addition).
      if (inbox !== undefined) inbox.onNotification(event.value);
      else void unread.refresh();
      return;
    default:
      // Kinds this page does not know yet are skipped.
      return;
  }
}

function syncLive(): void {
  stopLive?.();
  stopLive = undefined;
  liveState.dataset.state = "offline";
  liveState.hidden = currentSession() === undefined;
  if (currentSession() === undefined) return;
  stopLive = startLive({
    onEvent: onLive,
    onReconnect: () => {
      current?.onReconnect?.();
      // Notifications may have come while the stream was down.
      if (inbox === undefined) void unread.refresh();
    },
    onState: (state) => {
      liveState.dataset.state = state;
      liveState.title = state === "live" ? "Live updates on" : state === "connecting" ? "Connecting…" : "Live updates off (reconnecting)";
    },
  });
}

onSessionChange((s) => {
  syncLive();
  if (s === undefined && location.hash !== "#/signup") location.hash = "#/login";
  renderNav();
});
addEventListener("hashchange", route);
route();
syncLive();
