// The "Live alerts" panel: an oracle's alert stream (GET /alerts, Server-Sent Events), newest first, each linked to
// its shipment. The connection state is said in words; without a configured alerts URL the panel says how to set one.
import { useEffect, useState } from "preact/hooks";

import { formatCelsius, formatDateTime } from "../../../sdk/index.js";
import { ALERT_KIND_WORDS, MAX_ALERTS, addAlert, parseAlert, streamUrl } from "../data/alerts.js";
import type { LiveAlert } from "../data/alerts.js";
import { Party } from "./format.js";
import type { Labels } from "./format.js";

/** Where the stream is: words shown to the user (and read by the browser test). */
export type StreamState = "not configured" | "connecting" | "connected" | "reconnecting" | "closed";

const STATE_TEXT: Readonly<Record<StreamState, string>> = {
  "not configured": "not configured",
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting… (the oracle does not answer; retrying)",
  closed: "disconnected (the oracle refused the stream; reload the page to try again)",
};

export function LiveAlerts({ alertsUrl, ctx }: { alertsUrl: string; ctx: Labels }) {
  const [state, setState] = useState<StreamState>(alertsUrl === "" ? "not configured" : "connecting");
  const [alerts, setAlerts] = useState<LiveAlert[]>([]);
  const [bad, setBad] = useState<string | undefined>(undefined);

  useEffect(() => {
    if (alertsUrl === "") return;
    let source: EventSource;
    try {
      source = new EventSource(streamUrl(alertsUrl, location.href));
    } catch (error) {
      setBad(`alerts URL "${alertsUrl}": ${(error as Error).message}`);
      setState("closed");
      return;
    }
    setState("connecting");
    source.onopen = () => setState("connected");
    // EventSource retries by itself (sending Last-Event-ID) unless the answer was not an event stream.
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    source.addEventListener("alert", (event) => {
      try {
        const alert = parseAlert((event as MessageEvent<string>).data);
        setAlerts((list) => addAlert(list, alert));
      } catch (error) {
        setBad((error as Error).message);
      }
    });
    return () => source.close();
  }, [alertsUrl]);

  return (
    <section class="live-alerts" aria-labelledby="live-alerts-title" data-testid="live-alerts">
      <h2 id="live-alerts-title">Live alerts</h2>
      <p class="muted">
        Stream: <span data-testid="alerts-state">{STATE_TEXT[state]}</span>
        {state === "connected" ? " · advisory: the chain's verdict stays the authority" : null}
      </p>
      {state === "not configured" ? (
        <p class="muted">
          To see an oracle's alerts as they happen, turn them on in the oracle (<code>alerts.enabled</code>) and put its
          stream in the dashboard's config.json as <code>"alertsUrl": "http://&lt;oracle&gt;:&lt;port&gt;/alerts"</code>{" "}
          or open the dashboard with <code>?alerts=…</code>.
        </p>
      ) : alerts.length === 0 ? (
        <p class="muted">No alerts yet.</p>
      ) : (
        <div class="table-wrap">
          <table data-testid="alerts">
            <caption class="sr-only">Newest first, the last {MAX_ALERTS} at most</caption>
            <thead>
              <tr>
                <th scope="col">Observed</th>
                <th scope="col">Alert</th>
                <th scope="col">Shipment</th>
                <th scope="col">Logger</th>
                <th scope="col">Custodian</th>
                <th scope="col">Temperature</th>
              </tr>
            </thead>
            <tbody>
              {alerts.map((a) => (
                <tr key={a.id} data-testid={`alert-${a.id}`}>
                  <td>{formatDateTime(a.observedAtUnix)}</td>
                  <td>
                    <strong>{ALERT_KIND_WORDS[a.kind]}</strong>
                  </td>
                  <td>
                    <a href={`#/shipment/${a.shipmentId}`}>Shipment #{a.shipmentId}</a>
                  </td>
                  <td>logger {a.deviceId}</td>
                  <td>
                    <Party address={a.custodian} ctx={ctx} />
                  </td>
                  <td>{formatCelsius(a.tempCentiC)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {bad !== undefined ? (
        <p class="error" role="alert">
          An alert could not be read: {bad}
        </p>
      ) : null}
    </section>
  );
}
