import { randomBytes } from "node:crypto";
import { argon2id, hash, needsRehash, verify } from "argon2";
import type { PasswordHashParams } from "./config.js";

/**
 * Password hashing with argon2id. Only the PHC string is stored
 * (`$argon2id$v=19$m=19456,p=1,t=2$<salt>$<hash>`): it carries its own salt
 * and parameters, so raising the cost later leaves old hashes verifiable, and
 * they are re-hashed at the next log-in (needsRehash).
 *
 * Passwords are NFKC-normalised first (NIST SP 800-63B 5.1.1.2), so the same
 * password typed on two keyboards that compose accents differently matches.
 */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /**
   * Whether `password` matches `phc`. With no stored hash (an unknown handle)
   * it verifies against a dummy hash made with the same parameters and
   * answers false: the caller spends the same time either way, so response
   * time does not tell which handles exist.
   */
  verify(phc: string | undefined, password: string): Promise<boolean>;
  /** True when `phc` was made with other parameters than the current ones. */
  needsRehash(phc: string): boolean;
}

export async function createPasswordHasher(params: PasswordHashParams): Promise<PasswordHasher> {
  const options = { type: argon2id, memoryCost: params.memoryKib, timeCost: params.timeCost, parallelism: params.parallelism } as const;
  const normalise = (password: string): string => password.normalize("NFKC");
  // A password nobody knows, hashed once at start.
  const dummy = await hash(randomBytes(32).toString("base64url"), options);
  return {
    hash: (password) => hash(normalise(password), options),
    async verify(phc, password) {
      if (phc === undefined) {
        await verify(dummy, normalise(password));
        return false;
      }
      return verify(phc, normalise(password));
    },
    needsRehash: (phc) =>
      !phc.startsWith("$argon2id$") ||
      needsRehash(phc, { memoryCost: params.memoryKib, timeCost: params.timeCost, parallelism: params.parallelism }),
  };
}
