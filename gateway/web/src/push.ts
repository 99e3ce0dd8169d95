// Web Push in the browser: the "Push notifications" switch on the
// notifications page. Turning it on registers the service worker (/sw.js),
// asks for permission, subscribes with the server's VAPID key
// (GetPushConfig) and hands the subscription to RegisterPush; the worker
// (sw.ts) shows each notification the server pushes.
import { notifications } from "./api.js";
import { h } from "./dom.js";

type PushState = "unsupported" | "denied" | "on" | "off" | "failed";

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const b64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function sameKey(a: ArrayBuffer | null | undefined, b: Uint8Array): boolean {
  if (a === null || a === undefined || a.byteLength !== b.length) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}

const supported = (): boolean => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

/** Subscribes this browser (asking for permission first) and registers it with the server. */
export async function enablePush(): Promise<PushState> {
  if (!supported()) return "unsupported";
  const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  if ((await Notification.requestPermission()) !== "granted") return "denied";
  const { vapidPublicKey } = await notifications.getPushConfig({});
  const key = keyBytes(vapidPublicKey);
  await navigator.serviceWorker.ready;
  let subscription = await registration.pushManager.getSubscription();
  // A subscription made with another key (the server's key changed) cannot be pushed to.
  if (subscription !== null && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const json = subscription.toJSON();
  await notifications.registerPush({ endpoint: subscription.endpoint, p256dh: json.keys?.p256dh ?? "", auth: json.keys?.auth ?? "" });
  return "on";
}

/** Unsubscribes this browser and tells the server. */
export async function disablePush(): Promise<PushState> {
  if (!supported()) return "unsupported";
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = await registration?.pushManager.getSubscription();
  if (subscription !== null && subscription !== undefined) {
    await notifications.unregisterPush({ endpoint: subscription.endpoint });
    await subscription.unsubscribe();
  }
  return "off";
}

async function currentState(): Promise<PushState> {
  if (!supported()) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  const registration = await navigator.serviceWorker.getRegistration("/");
  return (await registration?.pushManager.getSubscription()) ? "on" : "off";
}

const LABEL: Record<PushState, string> = {
  unsupported: "Push notifications are not supported by this browser.",
  denied: "Push notifications are blocked for this site in the browser's settings.",
  on: "Push notifications are on in this browser.",
  off: "Get push notifications in this browser, even when Chirp is closed.",
  failed: "Could not turn on push notifications here (the browser's push service is out of reach).",
};

/** The switch on the notifications page. */
export function pushToggle(): HTMLElement {
  const text = h("span", { class: "muted push-status" });
  const button = h("button", { type: "button", class: "button push-toggle" });
  const el = h("div", { class: "push-settings" }, text, " ", button);
  const show = (state: PushState): void => {
    el.dataset.state = state;
    text.textContent = LABEL[state];
    button.hidden = state === "unsupported" || state === "denied";
    button.textContent = state === "on" ? "Turn off" : "Turn on";
  };
  button.addEventListener("click", () => {
    const on = el.dataset.state === "on";
    button.disabled = true;
    (on ? disablePush() : enablePush())
      .catch((): PushState => "failed")
      .then(show)
      .finally(() => (button.disabled = false));
  });
  void currentState().then(show, () => show("unsupported"));
  return el;
}
