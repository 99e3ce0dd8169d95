// Every relative link in the repository's Markdown resolves: the file or
// folder exists, and a `#fragment` names a heading of the target page, as
// GitHub renders it. Links to other sites are not followed.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Folders that hold no documentation of ours. */
const SKIP = new Set(["node_modules", ".git", ".data", "test-output", "gen"]);

function markdownFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : markdownFiles(join(dir, entry.name));
    return entry.name.endsWith(".md") ? [join(dir, entry.name)] : [];
  });
}

/** The lines outside fenced code blocks, each with its line number. */
function proseLines(text: string): Array<{ line: string; n: number }> {
  const out: Array<{ line: string; n: number }> = [];
  let fence: string | undefined;
  text.split("\n").forEach((line, i) => {
    const marker = /^\s*(```|~~~)/.exec(line)?.[1];
    if (marker !== undefined && (fence === undefined || fence === marker)) {
      fence = fence === undefined ? marker : undefined;
      return;
    }
    if (fence === undefined) out.push({ line, n: i + 1 });
  });
  return out;
}

/** A heading's anchor as GitHub makes it: the rendered text, lower-cased, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
    .replace(/`([^`]*)`/g, "$1") // code spans: their content
    .replace(/\*+/g, ""); // emphasis
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a page offers: its headings' slugs, repeats numbered as GitHub numbers them. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { line } of proseLines(text)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (m === null) continue;
    const base = slug(m[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The link targets on a line: inline links and images, and reference definitions. Code spans hold none. */
function targetsOn(line: string): string[] {
  const prose = line.replace(/`[^`]*`/g, "");
  const inline = [...prose.matchAll(/!?\[(?:[^\]]|\][^(])*?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const reference = /^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(prose)?.[1];
  return reference === undefined ? inline : [...inline, reference];
}

interface Broken {
  readonly where: string;
  readonly target: string;
  readonly why: string;
}

function brokenLinks(files: readonly string[]): { broken: Broken[]; checked: number } {
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (file: string): Set<string> => {
    let a = anchorCache.get(file);
    if (a === undefined) anchorCache.set(file, (a = anchorsOf(readFileSync(file, "utf8"))));
    return a;
  };
  const broken: Broken[] = [];
  let checked = 0;
  for (const file of files) {
    for (const { line, n } of proseLines(readFileSync(file, "utf8"))) {
      for (const target of targetsOn(line)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
        checked++;
        const where = `${relative(ROOT, file)}:${n}`;
        const hash = target.indexOf("#");
        const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
        const fragment = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
        const dest = path === "" ? file : resolve(dirname(file), path);
        if (!existsSync(dest)) {
          broken.push({ where, target, why: "no such file or folder" });
          continue;
        }
        if (fragment === undefined || fragment === "") continue;
        if (statSync(dest).isDirectory() || !dest.endsWith(".md")) {
          broken.push({ where, target, why: "a fragment on something that is not a Markdown page" });
        } else if (!anchors(dest).has(fragment)) {
          broken.push({ where, target, why: `no heading with the anchor #${fragment}` });
        }
      }
    }
  }
  return { broken, checked };
}

describe("markdown links", () => {
  it("makes anchors as GitHub does", () => {
    expect(slug("Media: `POST /media` and `GET /media/<id>`")).toBe("media-post-media-and-get-mediaid");
    expect(slug("rpc-overhead: CPU per unary call, grpc-js vs connect-node")).toBe("rpc-overhead-cpu-per-unary-call-grpc-js-vs-connect-node");
    expect(slug("Measured (2026-11-21, 2 × Intel Xeon)")).toBe("measured-2026-11-21-2--intel-xeon");
    expect(slug("events/: the outbox, the relay and consumers")).toBe("events-the-outbox-the-relay-and-consumers");
    expect(slug("`chirp_x40` and **bold** [a link](x.md)")).toBe("chirp_x40-and-bold-a-link");
    expect([...anchorsOf("# A\n## Reads\n```\n# not a heading\n```\n## Reads\n")]).toEqual(["a", "reads", "reads-1"]);
  });

  it("finds the documentation and its links", () => {
    const files = markdownFiles();
    expect(files.map((f) => relative(ROOT, f))).toEqual(expect.arrayContaining(["README.md", join("docs", "architecture.md")]));
    expect(brokenLinks(files).checked).toBeGreaterThan(100);
  });

  it("every relative link and anchor resolves", () => {
    expect(brokenLinks(markdownFiles()).broken).toEqual([]);
  });
});
