// The dashboard shell: routing (#/, #/shipment/<id>, #/new), wallet connection, polling for new blocks.
import { BrowserProvider } from "ethers";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";

import { ChainReader } from "../data/chain.js";
import type { ShipmentView } from "../data/chain.js";
import type { AppConfig } from "../data/config.js";
import type { ShipmentRow } from "../data/shaping.js";
import type { Deployment } from "../../../sdk/index.js";
import { LiveAlerts } from "./alerts.js";
import { CreateShipment } from "./create.js";
import type { Labels } from "./format.js";
import { ShipmentList } from "./list.js";
import { ShipmentPage } from "./shipment.js";
import { connectWallet, hasWallet } from "./wallet.js";
import type { WalletConnection } from "./wallet.js";

type Route = { page: "list" } | { page: "shipment"; id: bigint } | { page: "new" };

function parseRoute(hash: string): Route {
  const m = /^#\/shipment\/(\d+)$/.exec(hash);
  if (m?.[1] !== undefined) return { page: "shipment", id: BigInt(m[1]) };
  if (hash === "#/new") return { page: "new" };
  return { page: "list" };
}

/** Timings of the last shipment page load (ms since navigation start of that page), read by the browser test. */
export interface PagePerf {
  shipmentId: string;
  readings: number;
  fetchMs: number;
  renderMs: number;
  totalMs: number;
}

declare global {
  interface Window {
    __coldchainPerf?: PagePerf[];
  }
}

export function App({ config, deployment }: { config: AppConfig; deployment: Deployment }) {
  const reader = useMemo(() => {
    if (config.rpcUrl !== "") return ChainReader.overRpc(deployment, new URL(config.rpcUrl, location.href).toString());
    if (window.ethereum !== undefined) return new ChainReader(deployment, new BrowserProvider(window.ethereum));
    return undefined;
  }, [config, deployment]);
  const ctx: Labels = { labels: config.labels, explorerUrl: config.explorerUrl, products: config.products };
  const [route, setRoute] = useState<Route>(parseRoute(location.hash));
  const [block, setBlock] = useState<number | undefined>(undefined);
  const [now, setNow] = useState(Math.floor(Date.now() / 1000));
  const [wallet, setWallet] = useState<WalletConnection | undefined>(undefined);
  const [walletError, setWalletError] = useState<string | undefined>(undefined);
  const [rows, setRows] = useState<ShipmentRow[] | undefined>(undefined);
  const [listError, setListError] = useState<string | undefined>(undefined);
  const [view, setView] = useState<ShipmentView | undefined>(undefined);
  const [viewError, setViewError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const pageStart = useRef(performance.now());
  const fetchedAt = useRef(0);

  useEffect(() => {
    const onHash = () => {
      pageStart.current = performance.now();
      setView(undefined);
      setViewError(undefined);
      setRoute(parseRoute(location.hash));
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  // New blocks: poll eth_blockNumber.
  useEffect(() => {
    if (reader === undefined) return;
    let stopped = false;
    const poll = async () => {
      try {
        const n = await reader.blockNumber();
        if (!stopped) setBlock((b) => (b === n ? b : n));
      } catch {
        // keep polling; a transient RPC failure shows as a stale block number
      }
    };
    void poll();
    const timer = setInterval(() => void poll(), config.pollMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [reader, config.pollMs]);

  useEffect(() => {
    if (reader === undefined || block === undefined) return;
    reader.latestTimestamp().then(setNow, () => undefined);
  }, [reader, block]);

  // The list, reloaded on every new block.
  useEffect(() => {
    if (reader === undefined || block === undefined || route.page !== "list") return;
    let stale = false;
    reader
      .shipmentIds()
      .then((ids) => reader.rows(ids))
      .then(
        (r) => {
          if (stale) return;
          setRows(r);
          setListError(undefined);
        },
        (e: unknown) => !stale && setListError(`could not read the shipments: ${(e as Error).message}`),
      );
    return () => {
      stale = true;
    };
  }, [reader, block, route, tick]);

  // The open shipment, reloaded on every new block.
  useEffect(() => {
    if (reader === undefined || block === undefined || route.page !== "shipment") return;
    let stale = false;
    reader.shipment(route.id).then(
      (v) => {
        if (stale) return;
        fetchedAt.current = performance.now();
        setView(v);
        setViewError(undefined);
      },
      (e: unknown) => !stale && setViewError((e as Error).message),
    );
    return () => {
      stale = true;
    };
  }, [reader, block, route, tick]);

  const onDrawn = useCallback(() => {
    if (view === undefined) return;
    const end = performance.now();
    const perf: PagePerf = {
      shipmentId: view.state.shipmentId.toString(),
      readings: view.history.readings.length,
      fetchMs: Math.round(fetchedAt.current - pageStart.current),
      renderMs: Math.round(end - fetchedAt.current),
      totalMs: Math.round(end - pageStart.current),
    };
    (window.__coldchainPerf ??= []).push(perf);
  }, [view]);

  const connect = () => {
    setWalletError(undefined);
    connectWallet().then(
      (w) => {
        if (w.chainId !== deployment.chainId) {
          setWalletError(
            `the wallet is on chain ${w.chainId} but the deployment is on chain ${deployment.chainId}: switch network in the wallet`,
          );
        }
        setWallet(w);
      },
      (e: unknown) => setWalletError((e as Error).message),
    );
  };

  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          Coldchain
        </a>
        <span class="net" title={`ColdChain ${deployment.contracts.ColdChain.address}`}>
          {deployment.network} · chain {deployment.chainId} · block <span data-testid="block">{block ?? "…"}</span>
        </span>
        <nav aria-label="Main">
          <a href="#/">Shipments</a> <a href="#/new">New shipment</a>
        </nav>
        {wallet !== undefined ? (
          <span class="wallet" data-testid="wallet-account" title={wallet.account}>
            {config.labels[wallet.account.toLowerCase()] ?? wallet.account.slice(0, 8) + "…"}
          </span>
        ) : hasWallet() ? (
          <button type="button" onClick={connect}>
            Connect wallet
          </button>
        ) : (
          <span class="muted">read-only (no wallet)</span>
        )}
      </header>
      <main id="main">
        {walletError !== undefined ? (
          <p class="error" role="alert">
            {walletError}
          </p>
        ) : null}
        {route.page === "list" ? <LiveAlerts alertsUrl={config.alertsUrl} ctx={ctx} /> : null}
        {reader === undefined ? (
          <p class="error" role="alert">
            No RPC URL configured and no wallet found: open the app with <code>?rpc=http://…</code> or put
            <code>rpcUrl</code> in config.json.
          </p>
        ) : route.page === "list" ? (
          <ShipmentList rows={rows} error={listError} now={now} ctx={ctx} account={wallet?.account} />
        ) : route.page === "new" ? (
          <CreateShipment reader={reader} wallet={wallet} ctx={ctx} />
        ) : viewError !== undefined ? (
          <p class="error" role="alert">
            {viewError}
          </p>
        ) : view === undefined || view.state.shipmentId !== route.id ? (
          <p role="status">Loading shipment #{route.id.toString()}…</p>
        ) : (
          <ShipmentPage
            view={view}
            now={now}
            reader={reader}
            wallet={wallet}
            ctx={ctx}
            onChanged={() => setTick((t) => t + 1)}
            onDrawn={onDrawn}
          />
        )}
      </main>
    </>
  );
}
