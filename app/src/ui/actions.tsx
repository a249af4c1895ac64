// What the connected account may do with a shipment, and why not when it may not (roles read first).
import { useEffect, useState } from "preact/hooks";

import { ChainWriter, describeError } from "../data/chain.js";
import type { ChainReader, ShipmentView } from "../data/chain.js";
import { assertHandoverSigner, encodeHandover, readHandover } from "../data/handover.js";
import {
  DECISION_REASON_CODES,
  DECISION_REASONS,
  MAX_DECISION_NOTE_BYTES,
  reasonCodeForBreach,
} from "../../../sdk/index.js";
import { partyName } from "./format.js";
import type { Labels } from "./format.js";
import type { WalletConnection } from "./wallet.js";

export interface ActionsProps {
  readonly view: ShipmentView;
  readonly reader: ChainReader;
  readonly wallet: WalletConnection | undefined;
  readonly ctx: Labels;
  /** Called after a transaction is mined (reload). */
  readonly onDone: () => void;
}

const same = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();

export function Actions({ view, reader, wallet, ctx, onDone }: ActionsProps) {
  const { state } = view;
  const id = state.shipmentId;
  const [qa, setQa] = useState<boolean | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ kind: "ok" | "error"; text: string } | undefined>(undefined);
  const [to, setTo] = useState(state.receiver);
  const [pasted, setPasted] = useState("");
  const [signed, setSigned] = useState("");
  // Suggest the documented code that names the shipment's first breach.
  const first = state.condition.firstBreach;
  const [reason, setReason] = useState<string>(first === undefined ? "OTHER" : reasonCodeForBreach(first));
  // Free text recorded with the decision (on chain, readable: the DecisionNoted event); empty: none.
  const [note, setNote] = useState("");
  const account = wallet?.account;

  useEffect(() => {
    setQa(undefined);
    if (account === undefined) return;
    reader.hasRole("QA_ROLE", account).then(setQa, () => setQa(false));
  }, [account, reader]);

  if (wallet === undefined) {
    return (
      <section class="actions" aria-labelledby="actions-title">
        <h2 id="actions-title">Actions</h2>
        <p>Read-only: connect a wallet (button at the top) to hand over, accept, release or reject.</p>
      </section>
    );
  }
  const w = wallet;
  const writer = new ChainWriter(reader.deployment, w.signer);
  const run = async (what: string, fn: () => Promise<string | undefined>) => {
    setBusy(true);
    setMessage(undefined);
    try {
      const tx = await fn();
      setMessage({ kind: "ok", text: tx === undefined ? `${what}: done` : `${what}: confirmed in ${tx}` });
      onDone();
    } catch (error) {
      setMessage({ kind: "error", text: `${what} failed: ${describeError(error, writer.suite)}` });
    } finally {
      setBusy(false);
    }
  };

  const open = state.status === "Created" || state.status === "InTransit";
  const isCustodian = same(account, state.custodian);
  const offeredToMe = same(account, state.pendingOffer?.to);
  const mayDecide = same(account, state.receiver) || qa === true;
  const who = partyName(state.custodian, ctx);

  return (
    <section class="actions" aria-labelledby="actions-title" data-testid="actions">
      <h2 id="actions-title">Actions</h2>
      <p class="muted">
        Connected as <code>{w.account}</code>
        {qa === true ? " (QA role)" : ""}.
      </p>
      {message !== undefined ? (
        <p class={message.kind === "ok" ? "ok" : "error"} role={message.kind === "ok" ? "status" : "alert"}>
          {message.text}
        </p>
      ) : null}

      {open && isCustodian && state.status === "Created" ? (
        <button type="button" disabled={busy} onClick={() => void run("Start", () => writer.start(id))}>
          Start shipment
        </button>
      ) : null}

      {open && isCustodian ? (
        <>
          <form
            class="stack"
            onSubmit={(e) => {
              e.preventDefault();
              void run("Offer custody", async () => writer.offer(id, to.trim(), await reader.latestTimestamp()));
            }}
          >
            <label>
              Hand over to (address){" "}
              <input
                required
                value={to}
                list="known-parties"
                pattern="^0x[0-9a-fA-F]{40}$"
                onInput={(e) => setTo((e.target as HTMLInputElement).value)}
              />
            </label>
            <datalist id="known-parties">
              {Object.entries(ctx.labels).map(([a, n]) => (
                <option key={a} value={a}>
                  {n}
                </option>
              ))}
            </datalist>
            <button type="submit" disabled={busy}>
              Offer custody (valid 1 h)
            </button>
          </form>
          {state.pendingOffer !== undefined ? (
            <button
              type="button"
              class="secondary"
              disabled={busy}
              onClick={() => void run("Cancel offer", () => writer.cancelOffer(id))}
            >
              Cancel the offer to {partyName(state.pendingOffer.to, ctx)}
            </button>
          ) : null}
          <form
            class="stack"
            onSubmit={(e) => {
              e.preventDefault();
              void run("Signed handover", async () => {
                // Refuses a handover for another chain or deployment, another shipment, or signed by someone else.
                const h = readHandover(pasted, reader.deployment);
                if (h.acceptance.shipmentId !== id) {
                  throw new Error(
                    `this signed handover is for shipment #${h.acceptance.shipmentId}, not #${id}; open that shipment`,
                  );
                }
                if ((await reader.provider.getCode(h.acceptance.custodian)) === "0x") assertHandoverSigner(h);
                return await writer.transferWithSignature(h);
              });
            }}
          >
            <label>
              Paste a signed handover from the next custodian
              <textarea rows={3} value={pasted} onInput={(e) => setPasted((e.target as HTMLTextAreaElement).value)} />
            </label>
            <button type="submit" disabled={busy || pasted.trim() === ""}>
              Hand over with signature
            </button>
          </form>
        </>
      ) : null}

      {open && !isCustodian ? (
        <p class="why">
          Only the current custodian ({who}) can hand over; you are not. You can accept an offer made to you, or sign a
          handover acceptance for the custodian to submit.
        </p>
      ) : null}

      {offeredToMe ? (
        <button type="button" disabled={busy} onClick={() => void run("Accept custody", () => writer.accept(id))}>
          Accept custody
        </button>
      ) : null}

      {open && !isCustodian ? (
        <div class="stack">
          <button
            type="button"
            class="secondary"
            disabled={busy}
            onClick={() =>
              void run("Sign acceptance", async () => {
                const nonce = await reader.handoverNonce(id);
                const deadline = BigInt((await reader.latestTimestamp()) + 3600);
                setSigned(encodeHandover(await writer.signAcceptance(id, nonce, deadline)));
                return undefined;
              })
            }
          >
            Sign a handover acceptance (valid 1 h)
          </button>
          {signed !== "" ? (
            <label>
              Give this to {who}:
              <textarea readOnly rows={3} value={signed} />
            </label>
          ) : null}
        </div>
      ) : null}

      {state.status === "Delivered" ? (
        mayDecide ? (
          <div class="stack">
            <label>
              Note with the decision (optional, at most {MAX_DECISION_NOTE_BYTES} bytes, public on chain){" "}
              <input
                type="text"
                name="decision-note"
                value={note}
                maxLength={MAX_DECISION_NOTE_BYTES}
                onInput={(e) => setNote((e.target as HTMLInputElement).value)}
              />
            </label>
            <button type="button" disabled={busy} onClick={() => void run("Release", () => writer.release(id, note))}>
              Release
            </button>
            <form
              class="stack"
              onSubmit={(e) => {
                e.preventDefault();
                void run("Reject", () => writer.reject(id, reason, note));
              }}
            >
              <label>
                Rejection reason{" "}
                <select value={reason} onChange={(e) => setReason((e.target as HTMLSelectElement).value)}>
                  {DECISION_REASON_CODES.map((code) => (
                    <option key={code} value={code}>
                      {DECISION_REASONS[code]} ({code})
                    </option>
                  ))}
                </select>
              </label>
              <button type="submit" class="danger" disabled={busy}>
                Reject
              </button>
            </form>
          </div>
        ) : (
          <p class="why">
            Release or reject needs the receiver ({partyName(state.receiver, ctx)}) or an account with QA_ROLE
            {qa === undefined ? " (checking…)" : ""}; {w.account} is neither.
          </p>
        )
      ) : null}

      {!open && state.status !== "Delivered" ? <p>This shipment is closed ({state.status}).</p> : null}
    </section>
  );
}
