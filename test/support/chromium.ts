/**
 * Chromium for the browser tests: Debian's `chromium` package driven by playwright-core (no browser download).
 * `.ci/run` installs it; without it the browser tests say so and skip.
 */
import { existsSync } from "node:fs";

import { chromium } from "playwright-core";
import type { Browser, BrowserContext } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Headless in a container: no sandbox, no GPU, no QUIC, no background traffic or first-run pages. */
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The viewport the dashboard's screenshots are taken at. */
export const DESKTOP = { width: 1280, height: 900 } as const;

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

/** A browser to open pages in (a fresh profile per context). */
export async function launchChromium(): Promise<Browser> {
  return await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/** A browser with its own profile folder (local storage kept across reloads), at the desktop viewport. */
export async function launchChromiumProfile(profileDir: string): Promise<BrowserContext> {
  return await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: DESKTOP,
  });
}
