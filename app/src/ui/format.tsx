// Small display helpers shared by the views.
import type { ComponentChildren } from "preact";

import { shortAddress } from "../data/shaping.js";
import type { StatusBadge } from "../data/shaping.js";

export interface Labels {
  readonly labels: Readonly<Record<string, string>>;
  readonly explorerUrl: string;
  /** Product names by shipment reference (config.json "products"). */
  readonly products?: Readonly<Record<string, string>>;
}

/** "carrier (0x1234…abcd)" when the address has a label, else the short address; full address in the title. */
export function Party({ address, ctx }: { address: string; ctx: Labels }): preact.JSX.Element {
  const name = ctx.labels[address.toLowerCase()];
  return (
    <span class="party" title={address}>
      {name !== undefined ? (
        <>
          <strong>{name}</strong> <span class="addr">{shortAddress(address)}</span>
        </>
      ) : (
        <span class="addr">{shortAddress(address)}</span>
      )}
    </span>
  );
}

export function partyName(address: string, ctx: Labels): string {
  return ctx.labels[address.toLowerCase()] ?? shortAddress(address);
}

/**
 * A transaction: "tx 0x1234…abcd", a link to the explorer when one is configured, else the short hash with the full
 * hash in its title (never a bare "tx" that leads nowhere).
 */
export function TxLink({ hash, ctx, children }: { hash: string; ctx: Labels; children?: ComponentChildren }) {
  const text = (
    <>
      {children ?? "tx"} <code>{shortAddress(hash)}</code>
    </>
  );
  if (ctx.explorerUrl === "") {
    return (
      <span class="tx" title={`transaction ${hash}`}>
        {text}
      </span>
    );
  }
  return (
    <a class="tx" href={`${ctx.explorerUrl.replace(/\/$/, "")}/tx/${hash}`} target="_blank" rel="noreferrer">
      {text}
    </a>
  );
}

export function Badge({ badge }: { badge: StatusBadge | "breached" }) {
  return <span class={`badge badge-${badge.replace(" ", "-")}`}>{badge}</span>;
}

export { formatDate as formatTime } from "../data/words.js";
