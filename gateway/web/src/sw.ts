// The service worker (/sw.js): shows each Web Push notification the server
// sends (services/notification/push.ts's payload, decrypted by the browser),
// and opens the notifications page when one is clicked. Typed by hand: the
// web app's tsconfig has the DOM's types, not a worker's.
interface Payload {
  readonly id: string;
  readonly kind: "follow" | "like" | "repost" | "reply" | "quote" | "mention";
  readonly actor: { readonly handle: string; readonly displayName: string };
  readonly tweet?: { readonly text: string };
}
interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface PushEvent extends ExtendableEvent {
  readonly data: { json(): unknown } | null;
}
interface NotificationEvent extends ExtendableEvent {
  readonly notification: Notification;
}
interface WindowClient {
  readonly url: string;
  focus(): Promise<WindowClient>;
  navigate(url: string): Promise<WindowClient | null>;
}
interface Worker {
  readonly registration: ServiceWorkerRegistration;
  readonly clients: { matchAll(o: { type: "window" }): Promise<WindowClient[]>; openWindow(url: string): Promise<unknown> };
  skipWaiting(): Promise<void>;
  addEventListener(type: "push", fn: (e: PushEvent) => void): void;
  addEventListener(type: "notificationclick", fn: (e: NotificationEvent) => void): void;
  addEventListener(type: "install", fn: (e: ExtendableEvent) => void): void;
}
const worker = self as unknown as Worker;

const VERB: Record<Payload["kind"], string> = {
  follow: "followed you",
  like: "liked your tweet",
  repost: "reposted your tweet",
  reply: "replied to your tweet",
  quote: "quoted your tweet",
  mention: "mentioned you",
};

const PAGE = "/#/notifications";

worker.addEventListener("install", (e) => e.waitUntil(worker.skipWaiting()));

worker.addEventListener("push", (e) => {
  let p: Payload | undefined;
  try {
    p = e.data?.json() as Payload | undefined;
  } catch {
    p = undefined;
  }
  const title = p === undefined ? "Chirp" : `${p.actor.displayName || `@${p.actor.handle}`} ${VERB[p.kind] ?? "notified you"}`;
  e.waitUntil(
    worker.registration.showNotification(title, {
      body: p?.tweet?.text ?? (p === undefined ? "You have a new notification." : `@${p.actor.handle}`),
      // One per notification: a repeated push replaces it instead of showing it twice.
      tag: p === undefined ? "chirp" : `chirp-${p.id}`,
      icon: "/icon.svg",
      data: { url: PAGE },
    }),
  );
});

worker.addEventListener("notificationclick", (e) => {
  e.notification.close();
  e.waitUntil(
    worker.clients.matchAll({ type: "window" }).then(async (open) => {
      const client = open[0];
      if (client === undefined) return worker.clients.openWindow(PAGE);
      await client.navigate(new URL(PAGE, client.url).href);
      return client.focus();
    }),
  );
});
