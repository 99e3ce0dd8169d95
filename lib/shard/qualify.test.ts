import { describe, expect, it } from "vitest";
import { createQualifier, qualifyKeyspace } from "./qualify.js";

const q = (sql: string): string => qualifyKeyspace(sql, "chirp", "chirp_x40");

describe("qualifyKeyspace", () => {
  it("turns the keyspace qualifier into the shard's database", () => {
    expect(q("SELECT u.id FROM chirp.users u JOIN chirp.tweets t ON t.author_id = u.id WHERE u.id = ?")).toBe(
      "SELECT u.id FROM chirp_x40.users u JOIN chirp_x40.tweets t ON t.author_id = u.id WHERE u.id = ?",
    );
    expect(q("INSERT INTO `chirp`.`likes` (user_id) VALUES (?)")).toBe("INSERT INTO `chirp_x40`.`likes` (user_id) VALUES (?)");
    expect(q("UPDATE chirp.users SET bio=? WHERE id=?")).toBe("UPDATE chirp_x40.users SET bio=? WHERE id=?");
  });

  it("leaves literals, comments, other identifiers and unqualified names alone", () => {
    for (const sql of [
      "SELECT id FROM (SELECT 'chirp.tweet.%' AS subject) s, chirp.users",
      'SELECT "chirp.users" FROM chirp.users',
      "SELECT 1 -- chirp.users\nFROM chirp.users",
      "SELECT 1 /* chirp.users */ FROM chirp.users",
      "SELECT mychirp.x, t.chirp.y, `not chirp`.z FROM chirp.users",
      "SELECT 'it''s chirp.' , 'a\\' chirp.b' FROM chirp.users",
    ]) {
      const out = q(sql);
      expect(out.match(/chirp_x40/g)).toHaveLength(1);
      expect(out.endsWith("chirp_x40.users")).toBe(true);
    }
    expect(q("SELECT * FROM users")).toBe("SELECT * FROM users");
    expect(q("SELECT 1")).toBe("SELECT 1");
  });

  it("is memoised per database", () => {
    const qualify = createQualifier("chirp", 2);
    expect(qualify("SELECT * FROM chirp.users", "chirp_x40")).toBe("SELECT * FROM chirp_x40.users");
    expect(qualify("SELECT * FROM chirp.users", "chirp_c0x")).toBe("SELECT * FROM chirp_c0x.users");
    expect(qualify("SELECT * FROM chirp.likes", "chirp_c0x")).toBe("SELECT * FROM chirp_c0x.likes");
    expect(qualify("SELECT * FROM chirp.users", "chirp_x40")).toBe("SELECT * FROM chirp_x40.users");
  });
});
