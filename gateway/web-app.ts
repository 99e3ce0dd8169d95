// The web app at `/`: gateway/web/ holds its sources (index.html, app.css,
// icon.svg and the TypeScript under src/), and esbuild bundles them into
// memory when the gateway starts, so no built file is ever committed or goes
// stale. A build is kept in the temp directory with the hash of every file it
// read (esbuild's metafile), and a later start whose inputs all hash the same
// uses it instead of building again (0.3-0.7 s and a core's worth of esbuild
// threads on a loaded 2-core machine; the test suite starts a gateway ~60 times).
//
//   GET|HEAD /                   index.html: no-cache (revalidated by ETag), strict CSP
//   GET|HEAD /assets/<name>      the bundle and stylesheet, named by content hash: cached for a year
//   GET|HEAD /icon.svg           the icon: cached for a day
//   GET|HEAD /sw.js              the service worker that shows Web Push notifications: no-cache, at the root for scope /
//
// Everything else is left to the caller (RPCs, /media, 404).
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build, version as esbuildVersion } from "esbuild";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

const WEB_DIR = fileURLToPath(new URL("./web/", import.meta.url));

/**
 * The page may load its own script, style and images, and talk to its own
 * origin (Connect calls, /media); nothing inline, nothing from elsewhere, no
 * plugins, no framing. `blob:` images are the photo previews made in the page.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

interface Asset {
  readonly body: Buffer;
  /** Gzipped body, when that is smaller. */
  readonly gzip: Buffer | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly etag: string;
}

export interface WebApp {
  /** Serves `path` if it is the app's; false otherwise. */
  handle(req: Request, res: Response, path: string): boolean;
  readonly buildMs: number;
  /** Bytes of the bundle and stylesheet, uncompressed. */
  readonly bytes: number;
}

export async function buildWebApp(): Promise<WebApp> {
  const started = performance.now();
  const outputFiles = await bundle();
  const assets = new Map<string, Asset>();
  let script = "";
  let style = "";
  let bytes = 0;
  for (const file of outputFiles) {
    const name = file.path.slice(file.path.lastIndexOf("/") + 1);
    const isJs = name.endsWith(".js");
    const type = isJs ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8";
    if (name.startsWith("sw.")) {
      // A service worker's URL must stay put (browsers check it for updates), and its scope is its folder.
      assets.set("/sw.js", asset(Buffer.from(file.contents), { "content-type": type, "cache-control": "no-cache" }));
      continue;
    }
    if (isJs) script = name;
    else style = name;
    bytes += file.contents.length;
    assets.set(`/assets/${name}`, asset(Buffer.from(file.contents), { "content-type": type, "cache-control": "public, max-age=31536000, immutable" }));
  }
  const html = readFileSync(`${WEB_DIR}index.html`, "utf8").replace("{{script}}", `/assets/${script}`).replace("{{style}}", `/assets/${style}`);
  const page = asset(Buffer.from(html), {
    "content-type": "text/html; charset=utf-8",
    // Always revalidated, so a new bundle (a new name) is picked up at once.
    "cache-control": "no-cache",
    "content-security-policy": CONTENT_SECURITY_POLICY,
  });
  assets.set("/", page);
  assets.set("/index.html", page);
  assets.set(
    "/icon.svg",
    asset(readFileSync(`${WEB_DIR}icon.svg`), { "content-type": "image/svg+xml", "cache-control": "public, max-age=86400" }),
  );
  const buildMs = Math.round(performance.now() - started);

  return {
    buildMs,
    bytes,
    handle(req, res, path) {
      const found = assets.get(path);
      if (found === undefined) return false;
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
        res.end("method not allowed\n");
        return true;
      }
      serve(req, res, found);
      return true;
    },
  };
}

interface BuiltFile {
  readonly path: string;
  readonly contents: Uint8Array;
}

/** A kept build: what it read, each with its content hash, and what it made. */
interface CachedBuild {
  readonly key: string;
  readonly inputs: Readonly<Record<string, string>>;
  readonly outputs: ReadonlyArray<{ readonly path: string; readonly base64: string }>;
}

/** Changes whenever the build's options below change, so an older kept build is not used. */
const BUILD_OPTIONS_KEY = `esbuild ${esbuildVersion}; es2022 chrome110 firefox115 safari16; minify; v1`;
/** One kept build per checkout (the path of its web/ folder picks the file). */
const CACHE_FILE = join(tmpdir(), `chirp-web-app-${createHash("sha256").update(WEB_DIR).digest("hex").slice(0, 16)}.json`);

/** The bundle and stylesheet: the kept build when every file it read is unchanged, else a new build (then kept). */
async function bundle(): Promise<BuiltFile[]> {
  const kept = await readKeptBuild();
  if (kept !== undefined) return kept;
  const buildStarted = Date.now();
  const result = await build({
    entryPoints: { app: `${WEB_DIR}src/main.ts`, style: `${WEB_DIR}app.css`, sw: `${WEB_DIR}src/sw.ts` },
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022", "chrome110", "firefox115", "safari16"],
    write: false,
    outdir: "/assets",
    entryNames: "[name].[hash]",
    legalComments: "none",
    logLevel: "silent",
    metafile: true,
    absWorkingDir: process.cwd(),
  });
  // esbuild names inputs relative to absWorkingDir. Their hashes are taken
  // after the build read them, so the build is kept only if none was changed
  // since it started (a file saved while it ran might differ from what it read).
  const inputs = Object.keys(result.metafile.inputs).map((input) => resolve(process.cwd(), input));
  const hashed = await hashFiles(inputs, buildStarted - 2000);
  if (hashed !== undefined) {
    const entry: CachedBuild = {
      key: BUILD_OPTIONS_KEY,
      inputs: hashed,
      outputs: result.outputFiles.map((f) => ({ path: f.path, base64: Buffer.from(f.contents).toString("base64") })),
    };
    // Written whole under another name, then renamed: a gateway starting at the same moment reads the old file or the new one.
    const temp = `${CACHE_FILE}.${randomBytes(6).toString("hex")}`;
    await writeFile(temp, JSON.stringify(entry))
      .then(() => rename(temp, CACHE_FILE))
      .catch(() => {});
  }
  return result.outputFiles;
}

async function readKeptBuild(): Promise<BuiltFile[] | undefined> {
  let entry: CachedBuild;
  try {
    entry = JSON.parse(await readFile(CACHE_FILE, "utf8")) as CachedBuild;
  } catch {
    return undefined;
  }
  if (entry.key !== BUILD_OPTIONS_KEY) return undefined;
  const now = await hashFiles(Object.keys(entry.inputs));
  if (now === undefined || Object.entries(entry.inputs).some(([path, hash]) => now[path] !== hash)) return undefined;
  return entry.outputs.map((o) => ({ path: o.path, contents: Buffer.from(o.base64, "base64") }));
}

/** Each file's sha256; undefined when one cannot be read (moved, deleted) or was modified after `changedBefore` (ms). */
async function hashFiles(paths: readonly string[], changedBefore = Number.POSITIVE_INFINITY): Promise<Record<string, string> | undefined> {
  try {
    const hashes = await Promise.all(
      paths.map(async (p) => {
        if (Number.isFinite(changedBefore) && (await stat(p)).mtimeMs >= changedBefore) throw new Error(`${p} changed during the build`);
        return [p, createHash("sha256").update(await readFile(p)).digest("hex")] as const;
      }),
    );
    return Object.fromEntries(hashes);
  } catch {
    return undefined;
  }
}

function asset(body: Buffer, headers: Record<string, string>): Asset {
  const gz = gzipSync(body, { level: 9 });
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  return { body, gzip: gz.length < body.length ? gz : undefined, headers: { ...SECURITY_HEADERS, ...headers }, etag };
}

function serve(req: Request, res: Response, found: Asset): void {
  const acceptsGzip = found.gzip !== undefined && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  const headers: Record<string, string> = { ...found.headers, etag: found.etag, vary: "Accept-Encoding, Origin" };
  const inm = req.headers["if-none-match"];
  if (typeof inm === "string" && inm.split(",").some((t) => t.trim().replace(/^W\//, "") === found.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const body = acceptsGzip ? found.gzip! : found.body;
  if (acceptsGzip) headers["content-encoding"] = "gzip";
  headers["content-length"] = String(body.length);
  res.writeHead(200, headers);
  if (req.method === "HEAD") res.end();
  else res.end(body);
}
