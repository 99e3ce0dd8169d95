import { createTokenSigner, type TokenSigner } from "../../lib/auth/token.js";
import type { ServiceContext } from "../../lib/service-context.js";
import { loadUserConfig, type UserConfig } from "./config.js";
import { createPasswordHasher, type PasswordHasher } from "./passwords.js";
import { createUserStore, type UserStore } from "./store.js";

/** The shared service context plus what accounts need: the store, the hasher and the token signer. */
export interface UserContext extends ServiceContext {
  readonly users: UserConfig;
  readonly store: UserStore;
  readonly passwords: PasswordHasher;
  /** Signs session tokens; this process alone holds the private key. */
  readonly tokens: TokenSigner;
}

export async function createUserContext(shared: ServiceContext): Promise<UserContext & { close(): Promise<void> }> {
  const users = loadUserConfig(shared.env);
  const tokens = createTokenSigner(users.tokenPrivateKey);
  const passwords = await createPasswordHasher(users.passwordHash);
  shared.log.info({ argon2id: users.passwordHash, token_ttl_s: users.tokenTtlSeconds, token_kid: tokens.kid }, "accounts configured");
  return { ...shared, users, tokens, passwords, store: createUserStore(shared.router), close: async () => {} };
}
