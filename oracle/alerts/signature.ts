/**
 * Webhook signatures: `X-Coldchain-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the raw
 * request body as sent. A receiver recomputes the HMAC over the timestamp and the exact bytes it received, compares
 * in constant time, and refuses a timestamp too far from its clock (replays). {@link verifyAlertSignature} does all
 * three; docs/operations.md shows the same check in a few lines for receivers outside this repository.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-coldchain-signature";
export const ALERT_ID_HEADER = "x-coldchain-alert-id";

/** The signature header's value for `body` sent at `timestamp` (unix seconds). */
export function signAlert(secret: string, timestamp: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return `t=${timestamp},v1=${mac}`;
}

/**
 * Whether `header` is a valid signature of `body` under `secret`, made within `toleranceSeconds` of `now` (unix
 * seconds).
 */
export function verifyAlertSignature(
  secret: string,
  header: string | undefined,
  body: string,
  now: number = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): boolean {
  if (header === undefined) return false;
  const parts = new Map(
    header.split(",").map((part) => {
      const i = part.indexOf("=");
      return [part.slice(0, i).trim(), part.slice(i + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get("t"));
  const v1 = parts.get("v1");
  if (!Number.isSafeInteger(t) || v1 === undefined || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(now - t) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(v1, "hex"));
}
