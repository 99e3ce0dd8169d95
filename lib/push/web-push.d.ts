// The part of web-push (3.6, CommonJS, no types of its own) that Chirp uses:
// it encrypts a payload to a subscription (RFC 8291, aes128gcm) and signs the
// VAPID header (RFC 8292); lib/push/ sends the request itself
// (services/notification/push-sender.ts says why).
declare module "web-push" {
  interface PushSubscription {
    readonly endpoint: string;
    readonly keys: { readonly p256dh: string; readonly auth: string };
  }
  interface RequestOptions {
    readonly TTL?: number;
    readonly vapidDetails?: { readonly subject: string; readonly publicKey: string; readonly privateKey: string };
    readonly contentEncoding?: "aes128gcm" | "aesgcm";
    readonly urgency?: "very-low" | "low" | "normal" | "high";
    readonly topic?: string;
    readonly headers?: Record<string, string>;
  }
  interface RequestDetails {
    readonly method: string;
    readonly headers: Record<string, string | number>;
    readonly body: Buffer | null;
    readonly endpoint: string;
  }
  const webpush: {
    generateRequestDetails(subscription: PushSubscription, payload: string | Buffer | null, options?: RequestOptions): RequestDetails;
    generateVAPIDKeys(): { publicKey: string; privateKey: string };
  };
  export default webpush;
}
