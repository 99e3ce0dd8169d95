// The public API as an end-to-end test uses it: Connect JSON calls to the
// gateway, and accounts made through SignUp.

export interface Account {
  readonly id: bigint;
  readonly handle: string;
  readonly token: string;
}

export interface Answer<T> {
  readonly status: number;
  /** The Connect error code; undefined on success. */
  readonly code: string | undefined;
  readonly body: T;
}

export interface GatewayApi {
  /** One call; a string body is sent as is (for malformed JSON). */
  call<T = Record<string, unknown>>(method: string, body: unknown, token?: string): Promise<Answer<T>>;
  /** A call that must succeed. */
  ok<T = Record<string, unknown>>(method: string, body: unknown, token?: string): Promise<T>;
  /** A fresh account with a unique handle. */
  signUp(): Promise<Account>;
  signUpMany(n: number): Promise<Account[]>;
}

export const TEST_PASSWORD = "correct horse battery";

/**
 * `gatewayUrl` is read at each call (the mesh starts in beforeAll);
 * `handlePrefix` keeps handles of different test files apart.
 */
export function gatewayApi(gatewayUrl: () => string, handlePrefix: string): GatewayApi {
  let signUps = 0;
  const api: GatewayApi = {
    async call<T>(method: string, body: unknown, token?: string): Promise<Answer<T>> {
      const res = await fetch(`${gatewayUrl()}/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      const json = (await res.json()) as T & { code?: string };
      return { status: res.status, code: res.status === 200 ? undefined : json.code, body: json };
    },
    async ok<T>(method: string, body: unknown, token?: string): Promise<T> {
      const answer = await api.call<T>(method, body, token);
      if (answer.status !== 200) throw new Error(`${method}: ${answer.status} ${JSON.stringify(answer.body)}`);
      return answer.body;
    },
    async signUp() {
      const handle = `${handlePrefix}${process.pid % 10_000}_${signUps++}`;
      const { user, token } = await api.ok<{ user: { id: string }; token: string }>("chirp.user.v1.UserService/SignUp", {
        handle,
        displayName: handle,
        email: `${handle}@example.com`,
        password: TEST_PASSWORD,
      });
      return { id: BigInt(user.id), handle, token };
    },
    async signUpMany(n) {
      const made: Account[] = [];
      // A few at a time: password hashing is deliberately slow.
      for (let i = 0; i < n; i += 8) made.push(...(await Promise.all(Array.from({ length: Math.min(8, n - i) }, () => api.signUp()))));
      return made;
    },
  };
  return api;
}
