// Create a shipment from a preset (an existing rule profile), with the SHIPPER_ROLE check explained; a logger whose
// owner has not approved the shipper is refused with the owner's fix (see ChainWriter.createShipment).
import { useEffect, useState } from "preact/hooks";

import { ChainWriter, describeError } from "../data/chain.js";
import type { ChainReader, ProfileEntry } from "../data/chain.js";
import { formatDuration, formatRange } from "../data/words.js";
import type { Labels } from "./format.js";
import type { WalletConnection } from "./wallet.js";

export function CreateShipment({
  reader,
  wallet,
  ctx,
}: {
  reader: ChainReader;
  wallet: WalletConnection | undefined;
  ctx: Labels;
}) {
  const [profiles, setProfiles] = useState<ProfileEntry[] | undefined>(undefined);
  const [shipper, setShipper] = useState<boolean | undefined>(undefined);
  const [profileId, setProfileId] = useState(0);
  const [receiver, setReceiver] = useState("");
  const [devices, setDevices] = useState("");
  const [reference, setReference] = useState("");
  const [message, setMessage] = useState<{ kind: "ok" | "error"; text: string } | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const account = wallet?.account;

  useEffect(() => {
    reader.profiles().then(
      (list) => {
        setProfiles(list);
        if (list[0] !== undefined) setProfileId(list[0].profileId);
      },
      (e: unknown) => setMessage({ kind: "error", text: `could not read the profiles: ${String(e)}` }),
    );
  }, [reader]);
  useEffect(() => {
    setShipper(undefined);
    if (account !== undefined) reader.hasRole("SHIPPER_ROLE", account).then(setShipper, () => setShipper(false));
  }, [reader, account]);

  return (
    <section aria-labelledby="create-title">
      <p>
        <a href="#/">← All shipments</a>
      </p>
      <h1 id="create-title">New shipment</h1>
      {wallet === undefined ? (
        <p class="why">Connect a wallet holding SHIPPER_ROLE to create a shipment.</p>
      ) : shipper === false ? (
        <p class="why" role="alert">
          {wallet.account} lacks SHIPPER_ROLE on ColdChain {reader.deployment.contracts.ColdChain.address}: ask the
          suite's admin to grant it (
          <code>
            npm run cli -- role grant --network {reader.deployment.network} --contract ColdChain --role SHIPPER_ROLE
            --to {wallet.account}
          </code>
          ) or switch account.
        </p>
      ) : null}
      {message !== undefined ? (
        <p class={message.kind === "ok" ? "ok" : "error"} role={message.kind === "ok" ? "status" : "alert"}>
          {message.text}
        </p>
      ) : null}
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (wallet === undefined) return;
          const writer = new ChainWriter(reader.deployment, wallet.signer);
          setBusy(true);
          setMessage(undefined);
          let deviceIds: bigint[];
          try {
            deviceIds = devices
              .split(/[\s,]+/)
              .filter((d) => d !== "")
              .map((d) => BigInt(d));
          } catch {
            setMessage({ kind: "error", text: "device ids must be whole numbers separated by commas" });
            setBusy(false);
            return;
          }
          writer
            .createShipment({ receiver: receiver.trim(), owner: receiver.trim(), profileId, deviceIds, reference })
            .then(
              ({ shipmentId, tx }) => {
                setMessage({ kind: "ok", text: `shipment #${shipmentId} created in ${tx}` });
                location.hash = `#/shipment/${shipmentId}`;
              },
              (error: unknown) =>
                setMessage({ kind: "error", text: `create failed: ${describeError(error, writer.suite)}` }),
            )
            .finally(() => setBusy(false));
        }}
      >
        <label>
          Preset (rule profile){" "}
          <select value={profileId} onChange={(e) => setProfileId(Number((e.target as HTMLSelectElement).value))}>
            {(profiles ?? []).map(({ profileId: id, profile: p }) => (
              <option key={id} value={id}>
                #{id}: {formatRange(p.minCentiC, p.maxCentiC)}, single excursion{" "}
                {p.maxSingleExcursionSeconds === 0
                  ? "off"
                  : `a breach at ${formatDuration(p.maxSingleExcursionSeconds)}`}
              </option>
            ))}
          </select>
        </label>
        <label>
          Receiver (address, also the owner){" "}
          <input
            required
            list="create-parties"
            pattern="^0x[0-9a-fA-F]{40}$"
            value={receiver}
            onInput={(e) => setReceiver((e.target as HTMLInputElement).value)}
          />
        </label>
        <datalist id="create-parties">
          {Object.entries(ctx.labels).map(([a, n]) => (
            <option key={a} value={a}>
              {n}
            </option>
          ))}
        </datalist>
        <label>
          Logger device ids (comma-separated, registered, free, and yours or their owner approved you){" "}
          <input required value={devices} onInput={(e) => setDevices((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Reference (e.g. an SSCC; up to 31 characters are stored as text, a longer one only as its hash){" "}
          <input value={reference} onInput={(e) => setReference((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" disabled={busy || wallet === undefined || shipper !== true || profiles === undefined}>
          Create shipment
        </button>
      </form>
    </section>
  );
}
