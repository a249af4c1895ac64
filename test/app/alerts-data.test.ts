// The Live alerts panel's data (app/src/data/alerts.ts): parsing a stream event, the bounded newest-first list,
// and the alertsUrl setting of config.json / ?alerts=.
import { expect } from "chai";

import { MAX_ALERTS, addAlert, parseAlert, streamUrl } from "../../app/src/data/alerts.js";
import type { LiveAlert } from "../../app/src/data/alerts.js";
import { resolveConfig } from "../../app/src/data/config.js";

const PAYLOAD = {
  type: "coldchain.alert/1",
  id: "1-1000-1796611195-excursion_started",
  kind: "excursion_started",
  oracleId: "oracle-1",
  chainId: 31337,
  shipmentId: "1",
  deviceId: "1000",
  custodian: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
  tempCentiC: 950,
  tempC: 9.5,
  flags: 0,
  observedAt: "2026-12-07T02:39:55.000Z",
  observedAtUnix: 1796611195,
  limits: { minCentiC: 200, maxCentiC: 800, freezeCentiC: -50, minC: 2, maxC: 8, freezeC: -0.5 },
  raisedAt: "2026-12-07T02:55:18.951Z",
};

const alert = (id: string, observedAtUnix: number): LiveAlert => ({
  ...parseAlert(JSON.stringify(PAYLOAD)),
  id,
  observedAtUnix,
});

describe("dashboard live alerts data", () => {
  it("parses the documented payload", () => {
    expect(parseAlert(JSON.stringify(PAYLOAD))).to.deep.equal({
      id: PAYLOAD.id,
      kind: "excursion_started",
      shipmentId: "1",
      deviceId: "1000",
      custodian: PAYLOAD.custodian,
      tempCentiC: 950,
      observedAtUnix: 1796611195,
      oracleId: "oracle-1",
    });
  });

  it("refuses what is not an alert, naming the field", () => {
    expect(() => parseAlert("{")).to.throw("alert: not JSON");
    expect(() => parseAlert(JSON.stringify({ ...PAYLOAD, type: "x" }))).to.throw(/unknown type "x"/);
    expect(() => parseAlert(JSON.stringify({ ...PAYLOAD, kind: "meltdown" }))).to.throw(/unknown kind "meltdown"/);
    expect(() => parseAlert(JSON.stringify({ ...PAYLOAD, shipmentId: "0x1" }))).to.throw(/"shipmentId"/);
    expect(() => parseAlert(JSON.stringify({ ...PAYLOAD, tempCentiC: 9.5 }))).to.throw(
      /"tempCentiC" is not an integer/,
    );
  });

  it("keeps the newest first, each id once, at most MAX_ALERTS", () => {
    let list: LiveAlert[] = [];
    list = addAlert(list, alert("a", 100));
    list = addAlert(list, alert("b", 200));
    list = addAlert(list, alert("c", 150)); // replayed late: placed by observation time
    list = addAlert(list, alert("b", 200)); // at-least-once delivery: a second copy
    expect(list.map((a) => a.id)).to.deep.equal(["b", "c", "a"]);
    for (let i = 0; i < MAX_ALERTS + 10; i++) list = addAlert(list, alert(`n${i}`, 1000 + i));
    expect(list).to.have.length(MAX_ALERTS);
    expect(list[0]?.id).to.equal(`n${MAX_ALERTS + 9}`);
  });

  it("asks the oracle for its recent alerts on the first connection", () => {
    expect(streamUrl("http://127.0.0.1:9464/alerts", "http://app/")).to.equal(
      "http://127.0.0.1:9464/alerts?lastEventId=0",
    );
    expect(streamUrl("/alerts?lastEventId=7", "http://app/x/")).to.equal("http://app/alerts?lastEventId=7");
  });

  it("reads alertsUrl from config.json, overridden (or turned off) by ?alerts=", () => {
    expect(resolveConfig({}, "").alertsUrl).to.equal("");
    expect(resolveConfig({ alertsUrl: "http://o:1/alerts" }, "").alertsUrl).to.equal("http://o:1/alerts");
    expect(resolveConfig({ alertsUrl: "http://o:1/alerts" }, "?alerts=http://p:2/alerts").alertsUrl).to.equal(
      "http://p:2/alerts",
    );
    expect(resolveConfig({ alertsUrl: "http://o:1/alerts" }, "?alerts=").alertsUrl).to.equal("");
    expect(() => resolveConfig({ alertsUrl: 1 }, "")).to.throw('config.json: "alertsUrl" must be a string');
  });
});
